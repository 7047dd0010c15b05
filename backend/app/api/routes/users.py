from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud
from app.api.deps import (
    CrossTenantSessionDep,
    CurrentAdmin,
    CurrentUser,
    Limit,
    SessionDep,
    Skip,
    TenantFilter,
    UserInScope,
    forbidden,
)
from app.api.errors import StrictJSONRoute, invalid, responses
from app.api.throttle import throttle_attempt
from app.core.config import settings
from app.core.security import hash_password, verify_password
from app.models import (
    Message,
    Role,
    UpdatePassword,
    User,
    UserCreate,
    UserPublic,
    UserRegister,
    UsersPublic,
    UserUpdate,
    UserUpdateMe,
)

router = APIRouter(prefix="/users", tags=["users"], route_class=StrictJSONRoute)

EMAIL_TAKEN = "A user with this email already exists"
LAST_OWNER = "A tenant must keep at least one active owner"


def ensure_can_manage(actor: User, target: User, new_role: Role | None = None) -> None:
    """The role matrix for changing or deleting another user (403 when not allowed)."""
    if actor.is_superuser:
        return
    if target.is_superuser:
        raise forbidden("Only a superuser may change a superuser")
    if actor.role == Role.owner:
        return
    if actor.role == Role.admin and target.role == Role.member and new_role != Role.owner:
        return
    raise forbidden()


async def ensure_an_owner_remains(session: AsyncSession, target: User) -> None:
    """409 if `target` is the last active owner of its tenant (the owners stay locked)."""
    if target.role == Role.owner and target.is_active:
        owners = await crud.lock_active_owner_ids(session=session, tenant_id=target.tenant_id)
        if owners <= {target.id}:
            await session.rollback()
            raise HTTPException(status_code=409, detail=LAST_OWNER)


def loses_ownership(target: User, changes: dict[str, Any]) -> bool:
    demoted = changes.get("role", target.role) != Role.owner
    deactivated = changes.get("is_active", target.is_active) is False
    return demoted or deactivated


@router.post(
    "/signup",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(409, 422, 429),
)
async def register_user(
    session: CrossTenantSessionDep, request: Request, user_in: UserRegister
) -> User:
    """Open signup: creates a new tenant whose owner is the new user."""
    await throttle_attempt(
        session,
        request,
        "signup",
        user_in.email,
        settings.SIGNUP_MAX_PER_EMAIL,
        settings.SIGNUP_MAX_PER_ADDRESS,
    )
    created = await crud.create_tenant_with_owner(
        session=session,
        tenant_name=user_in.tenant_name,
        owner_in=UserCreate.model_validate(user_in),
    )
    if created is None:
        raise HTTPException(status_code=409, detail=EMAIL_TAKEN)
    return created[1]


@router.get("/me", response_model=UserPublic, responses=responses(401))
async def read_user_me(current_user: CurrentUser) -> User:
    """The caller's own user."""
    return current_user


@router.patch("/me", response_model=UserPublic, responses=responses(401, 409, 422))
async def update_user_me(
    session: SessionDep, current_user: CurrentUser, user_in: UserUpdateMe
) -> User:
    """Change the caller's own name or email."""
    updated = await crud.update_user(
        session=session, user=current_user, data=user_in.model_dump(exclude_unset=True)
    )
    if updated is None:
        raise HTTPException(status_code=409, detail=EMAIL_TAKEN)
    return updated


@router.patch("/me/password", responses=responses(400, 401, 422))
async def update_password_me(
    session: SessionDep, current_user: CurrentUser, body: UpdatePassword
) -> Message:
    """Change the caller's password; every login of the user is revoked, this one included."""
    valid, _ = await verify_password(body.current_password, current_user.hashed_password)
    if not valid:
        raise HTTPException(status_code=400, detail="Incorrect password")
    if body.current_password == body.new_password:
        raise HTTPException(
            status_code=400, detail="New password cannot be the same as the current one"
        )
    hashed = await hash_password(body.new_password)
    await crud.set_password(session=session, user=current_user, hashed_password=hashed)
    return Message(message="Password updated successfully")


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 409))
async def delete_user_me(session: SessionDep, current_user: CurrentUser) -> None:
    """Delete the caller's own account (not the last owner's, nor a superuser's)."""
    if current_user.is_superuser:
        raise forbidden("Superusers are not allowed to delete themselves")
    await ensure_an_owner_remains(session, current_user)
    await crud.delete_user(session=session, user=current_user)


@router.get("/", response_model=UsersPublic, responses=responses(401, 422))
async def read_users(
    session: SessionDep,
    tenant_id: TenantFilter,
    skip: Skip = 0,
    limit: Limit = 100,
) -> UsersPublic:
    """The users of the caller's tenant (a superuser's cover every tenant)."""
    users, count = await crud.list_users(
        session=session,
        tenant_id=tenant_id,
        skip=skip,
        limit=limit,
    )
    return UsersPublic.model_validate({"data": users, "count": count})


@router.post(
    "/",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 409, 422),
)
async def create_user(session: SessionDep, current_user: CurrentAdmin, user_in: UserCreate) -> User:
    """Create a user: admins create members and admins, owners any role, superusers in any tenant."""
    tenant_id = user_in.tenant_id or current_user.tenant_id
    if current_user.is_superuser:
        if await crud.get_tenant(session=session, tenant_id=tenant_id) is None:
            raise invalid("tenant_id", "Tenant not found")
    elif tenant_id != current_user.tenant_id:
        raise invalid("tenant_id", "Tenant not found")
    elif user_in.role == Role.owner and current_user.role != Role.owner:
        raise forbidden("Only an owner may create an owner")
    user = await crud.create_user(session=session, tenant_id=tenant_id, user_in=user_in)
    if user is None:
        raise HTTPException(status_code=409, detail=EMAIL_TAKEN)
    return user


@router.get("/{user_id}", response_model=UserPublic, responses=responses(401, 404))
async def read_user(user: UserInScope) -> User:
    """A user of the caller's tenant."""
    return user


@router.patch("/{user_id}", response_model=UserPublic, responses=responses(401, 403, 404, 409, 422))
async def update_user(
    session: SessionDep, user: UserInScope, current_user: CurrentAdmin, user_in: UserUpdate
) -> User:
    """Change a user: owners and superusers change anyone, admins only members (never to owner)."""
    changes = user_in.model_dump(exclude_unset=True)
    ensure_can_manage(current_user, user, changes.get("role"))
    if loses_ownership(user, changes):
        await ensure_an_owner_remains(session, user)
    updated = await crud.update_user(session=session, user=user, data=changes)
    if updated is None:
        raise HTTPException(status_code=409, detail=EMAIL_TAKEN)
    return updated


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 404, 409)
)
async def delete_user(session: SessionDep, user: UserInScope, current_user: CurrentAdmin) -> None:
    """Delete a user; their tasks become unassigned. Nobody deletes themselves here."""
    if user.id == current_user.id:
        raise forbidden("Use DELETE /users/me to delete your own account")
    ensure_can_manage(current_user, user)
    await ensure_an_owner_remains(session, user)
    await crud.delete_user(session=session, user=user)
