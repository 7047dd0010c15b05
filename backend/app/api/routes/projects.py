from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy.exc import IntegrityError

from app import crud
from app.api.deps import (
    CurrentAdmin,
    IfMatch,
    Limit,
    ProjectInScope,
    SessionDep,
    Skip,
    TenantFilter,
    etag,
    stale_or_gone,
)
from app.api.errors import StrictJSONRoute, responses
from app.models import (
    NAME_MAX,
    Project,
    ProjectCreate,
    ProjectPublic,
    ProjectsPublic,
    ProjectUpdate,
)

router = APIRouter(prefix="/projects", tags=["projects"], route_class=StrictJSONRoute)

NAME_TAKEN = "A project with this name already exists in the tenant"
ProjectSort = Literal["created_at", "-created_at", "name", "-name"]


@router.get("/", response_model=ProjectsPublic, responses=responses(401, 422))
async def read_projects(
    session: SessionDep,
    tenant_id: TenantFilter,
    q: Annotated[
        str | None,
        Query(max_length=NAME_MAX, pattern=r"^[^\x00]*$", description="Part of the name"),
    ] = None,
    sort: ProjectSort = "-created_at",
    skip: Skip = 0,
    limit: Limit = 100,
) -> ProjectsPublic:
    """The projects of the caller's tenant, filtered, sorted and paginated."""
    projects, count = await crud.list_projects(
        session=session, tenant_id=tenant_id, q=q, sort=sort, skip=skip, limit=limit
    )
    return ProjectsPublic.model_validate({"data": projects, "count": count})


@router.post(
    "/",
    response_model=ProjectPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 409, 422),
)
async def create_project(
    session: SessionDep, current_user: CurrentAdmin, project_in: ProjectCreate
) -> Project:
    """Admin or owner: create a project in the caller's tenant."""
    project = await crud.create_project(
        session=session, tenant_id=current_user.tenant_id, project_in=project_in
    )
    if project is None:
        raise HTTPException(status_code=409, detail=NAME_TAKEN)
    return project


@router.get("/{project_id}", response_model=ProjectPublic, responses=responses(401, 404))
async def read_project(project: ProjectInScope, response: Response) -> Project:
    """A project, with its version as `ETag`."""
    response.headers["ETag"] = etag(project.version)
    return project


@router.patch(
    "/{project_id}",
    response_model=ProjectPublic,
    responses=responses(401, 403, 404, 409, 412, 422),
)
async def update_project(
    session: SessionDep,
    project: ProjectInScope,
    _: CurrentAdmin,
    expected_version: IfMatch,
    project_in: ProjectUpdate,
    response: Response,
) -> Project:
    """Admin or owner: change a project; with `If-Match`, only if nobody changed it since."""
    try:
        updated = await crud.update_versioned(
            session=session,
            row=project,
            data=project_in.model_dump(exclude_unset=True),
            expected_version=expected_version,
        )
    except IntegrityError as exc:
        if crud.violated_constraint(exc) != "uq_project_tenant_id_name":
            raise
        raise HTTPException(status_code=409, detail=NAME_TAKEN) from None
    if updated is None:
        raise stale_or_gone(expected_version)
    response.headers["ETag"] = etag(updated.version)
    return updated


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 412),
)
async def delete_project(
    session: SessionDep, project: ProjectInScope, _: CurrentAdmin, expected_version: IfMatch
) -> None:
    """Admin or owner: delete a project and its tasks."""
    if not await crud.delete_versioned(
        session=session, row=project, expected_version=expected_version
    ):
        raise stale_or_gone(expected_version)
