import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud
from app.api.deps import (
    CurrentOwner,
    CurrentSuperuser,
    CurrentUser,
    Limit,
    SessionDep,
    Skip,
    forbidden,
)
from app.api.errors import StrictJSONRoute, responses
from app.models import (
    Tenant,
    TenantCreate,
    TenantPublic,
    TenantsPublic,
    TenantUpdate,
    TenantUpdateMe,
    UserCreate,
)

router = APIRouter(prefix="/tenants", tags=["tenants"], route_class=StrictJSONRoute)

HOLDS_SUPERUSER = "A tenant that holds a superuser cannot be deleted"


async def load_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await crud.get_tenant(session=session, tenant_id=tenant_id)
    if tenant is None:
        raise HTTPException(status_code=404, detail="Tenant not found")
    return tenant


async def get_tenant_for_superuser(
    session: SessionDep, current_user: CurrentUser, tenant_id: Annotated[uuid.UUID, Path()]
) -> Tenant:
    """A superuser route by id: another tenant is invisible (404) before the role check (403)."""
    if not current_user.is_superuser:
        if tenant_id != current_user.tenant_id:
            raise HTTPException(status_code=404, detail="Tenant not found")
        raise forbidden()
    return await load_tenant(session, tenant_id)


TenantForSuperuser = Annotated[Tenant, Depends(get_tenant_for_superuser)]


async def delete_unless_superuser_inside(session: AsyncSession, tenant: Tenant) -> None:
    if await crud.tenant_has_superuser(session=session, tenant_id=tenant.id):
        raise HTTPException(status_code=409, detail=HOLDS_SUPERUSER)
    await crud.delete_tenant(session=session, tenant=tenant)


@router.get("/me", response_model=TenantPublic, responses=responses(401))
async def read_tenant_me(session: SessionDep, current_user: CurrentUser) -> Tenant:
    """The caller's tenant."""
    return await load_tenant(session, current_user.tenant_id)


@router.patch("/me", response_model=TenantPublic, responses=responses(401, 403, 422))
async def update_tenant_me(
    session: SessionDep, current_user: CurrentOwner, tenant_in: TenantUpdateMe
) -> Tenant:
    """Owner: rename the tenant or replace its settings object."""
    tenant = await load_tenant(session, current_user.tenant_id)
    return await crud.update_tenant(
        session=session, tenant=tenant, data=tenant_in.model_dump(exclude_unset=True)
    )


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 409))
async def delete_tenant_me(session: SessionDep, current_user: CurrentOwner) -> None:
    """Owner: delete the tenant with all its users, projects and tasks."""
    tenant = await load_tenant(session, current_user.tenant_id)
    await delete_unless_superuser_inside(session, tenant)


@router.get("/", response_model=TenantsPublic, responses=responses(401, 403, 422))
async def read_tenants(
    session: SessionDep,
    _: CurrentSuperuser,
    skip: Skip = 0,
    limit: Limit = 100,
) -> TenantsPublic:
    """Superuser: every tenant, newest first."""
    tenants, count = await crud.list_tenants(session=session, skip=skip, limit=limit)
    return TenantsPublic.model_validate({"data": tenants, "count": count})


@router.post(
    "/",
    response_model=TenantPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 409, 422),
)
async def create_tenant(
    session: SessionDep, _: CurrentSuperuser, tenant_in: TenantCreate
) -> Tenant:
    """Superuser: create a tenant together with its first owner."""
    owner_in = UserCreate(
        email=tenant_in.owner_email,
        password=tenant_in.owner_password,
        full_name=tenant_in.owner_full_name,
    )
    created = await crud.create_tenant_with_owner(
        session=session, tenant_name=tenant_in.name, owner_in=owner_in, plan=tenant_in.plan
    )
    if created is None:
        raise HTTPException(status_code=409, detail="A user with this email already exists")
    return created[0]


@router.get("/{tenant_id}", response_model=TenantPublic, responses=responses(401, 403, 404))
async def read_tenant(tenant: TenantForSuperuser) -> Tenant:
    """Superuser: a tenant by id."""
    return tenant


@router.patch("/{tenant_id}", response_model=TenantPublic, responses=responses(401, 403, 404, 422))
async def update_tenant(
    session: SessionDep, tenant: TenantForSuperuser, tenant_in: TenantUpdate
) -> Tenant:
    """Superuser: change a tenant's name, plan or settings."""
    return await crud.update_tenant(
        session=session, tenant=tenant, data=tenant_in.model_dump(exclude_unset=True)
    )


@router.delete(
    "/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 404, 409)
)
async def delete_tenant(session: SessionDep, tenant: TenantForSuperuser) -> None:
    """Superuser: delete a tenant with all its users, projects and tasks."""
    await delete_unless_superuser_inside(session, tenant)
