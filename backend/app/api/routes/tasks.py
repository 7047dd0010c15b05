import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud
from app.api.deps import (
    CurrentAdmin,
    CurrentUser,
    IfMatch,
    Limit,
    SessionDep,
    Skip,
    TaskInScope,
    TenantFilter,
    etag,
    stale_or_gone,
)
from app.api.errors import StrictJSONRoute, invalid, responses
from app.models import NAME_MAX, Task, TaskCreate, TaskPublic, TasksPublic, TaskStatus, TaskUpdate

router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=StrictJSONRoute)

TaskSort = Literal["created_at", "-created_at", "title", "-title", "due_date", "-due_date"]
PROJECT_NOT_FOUND = "Project not found"
ASSIGNEE_INVALID = "Assignee must be an active user of the tenant"
# The composite foreign keys refuse a project or assignee of another tenant (or none).
FOREIGN_KEYS = {
    "fk_task_tenant_id_project_id_project": ("project_id", PROJECT_NOT_FOUND),
    "fk_task_tenant_id_assignee_id_user": ("assignee_id", ASSIGNEE_INVALID),
}


async def check_assignee(session: AsyncSession, tenant_id: uuid.UUID, data: dict[str, Any]) -> None:
    """422 unless the assignee named in `data` is an active user of the task's tenant; they
    stay so until the write commits, in the same transaction.

    The project needs no query: the foreign key `(tenant_id, project_id)` checks it on write.
    """
    assignee_id = data.get("assignee_id")
    if assignee_id is not None and not await crud.is_active_user_of_tenant(
        session=session, tenant_id=tenant_id, user_id=assignee_id
    ):
        raise invalid("assignee_id", ASSIGNEE_INVALID)


def invalid_reference(exc: IntegrityError) -> Exception:
    """A 422 for a project or assignee the foreign keys refused; anything else stays."""
    refused = FOREIGN_KEYS.get(crud.violated_constraint(exc) or "")
    return invalid(*refused) if refused else exc


@router.get("/", response_model=TasksPublic, responses=responses(401, 422))
async def read_tasks(
    session: SessionDep,
    current_user: CurrentUser,
    tenant_id: TenantFilter,
    project_id: uuid.UUID | None = None,
    status: TaskStatus | None = None,
    assignee_id: Annotated[
        uuid.UUID | Literal["me"] | None, Query(description="A user id, or `me` for the caller")
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=NAME_MAX, pattern=r"^[^\x00]*$", description="Part of the title"),
    ] = None,
    sort: TaskSort = "-created_at",
    skip: Skip = 0,
    limit: Limit = 100,
) -> TasksPublic:
    """The tasks of the caller's tenant, filtered, sorted and paginated."""
    tasks, count = await crud.list_tasks(
        session=session,
        tenant_id=tenant_id,
        project_id=project_id,
        status=status,
        assignee_id=current_user.id if assignee_id == "me" else assignee_id,
        q=q,
        sort=sort,
        skip=skip,
        limit=limit,
    )
    return TasksPublic.model_validate({"data": tasks, "count": count})


@router.post(
    "/",
    response_model=TaskPublic,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 422),
)
async def create_task(session: SessionDep, current_user: CurrentUser, task_in: TaskCreate) -> Task:
    """Create a task in a project of the caller's tenant."""
    tenant_id = current_user.tenant_id
    await check_assignee(session, tenant_id, task_in.model_dump(include={"assignee_id"}))
    try:
        return await crud.create_task(session=session, tenant_id=tenant_id, task_in=task_in)
    except IntegrityError as exc:
        raise invalid_reference(exc) from None


@router.get("/{task_id}", response_model=TaskPublic, responses=responses(401, 404))
async def read_task(task: TaskInScope, response: Response) -> Task:
    """A task, with its version as `ETag`."""
    response.headers["ETag"] = etag(task.version)
    return task


@router.patch("/{task_id}", response_model=TaskPublic, responses=responses(401, 404, 412, 422))
async def update_task(
    session: SessionDep,
    task: TaskInScope,
    expected_version: IfMatch,
    task_in: TaskUpdate,
    response: Response,
) -> Task:
    """Change a task; with `If-Match`, only if nobody changed it since."""
    changes = task_in.model_dump(exclude_unset=True)
    await check_assignee(session, task.tenant_id, changes)
    try:
        updated = await crud.update_versioned(
            session=session, row=task, data=changes, expected_version=expected_version
        )
    except IntegrityError as exc:
        raise invalid_reference(exc) from None
    if updated is None:
        raise stale_or_gone(expected_version)
    response.headers["ETag"] = etag(updated.version)
    return updated


@router.delete(
    "/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 403, 404, 412)
)
async def delete_task(
    session: SessionDep, task: TaskInScope, _: CurrentAdmin, expected_version: IfMatch
) -> None:
    """Admin or owner: delete a task."""
    if not await crud.delete_versioned(
        session=session, row=task, expected_version=expected_version
    ):
        raise stale_or_gone(expected_version)
