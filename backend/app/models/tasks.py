"""Tasks."""

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from app.models.common import (
    DESCRIPTION_MAX,
    NAME_MAX,
    PatchModel,
    TaskStatus,
    one_of,
    timestamp_field,
)


class TaskBase(SQLModel):
    title: str = Field(min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    status: TaskStatus = TaskStatus.todo
    assignee_id: uuid.UUID | None = None
    due_date: date | None = None


class TaskCreate(TaskBase):
    project_id: uuid.UUID


class TaskUpdate(PatchModel):
    nullable_fields = frozenset({"description", "assignee_id", "due_date"})

    project_id: uuid.UUID | None = None
    title: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    status: TaskStatus | None = None
    assignee_id: uuid.UUID | None = None
    due_date: date | None = None


class Task(TaskBase, table=True):
    __table_args__ = (
        # Composite keys: the database itself refuses a task pointing into another tenant.
        sa.ForeignKeyConstraint(
            ["tenant_id", "project_id"], ["project.tenant_id", "project.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "assignee_id"],
            ["user.tenant_id", "user.id"],
            ondelete="SET NULL (assignee_id)",
        ),
        one_of("status", TaskStatus, "status"),
        # What a composite key from a table hanging off a task points at (project and user
        # have theirs): `(tenant_id, task_id) -> task (tenant_id, id)`.
        sa.UniqueConstraint("tenant_id", "id"),
        sa.Index("ix_task_tenant_id_created_at", "tenant_id", "created_at"),
        # Serves the board view: one project's tasks of one status, newest first.
        sa.Index(
            "ix_task_tenant_id_project_id_status_created_at",
            "tenant_id",
            "project_id",
            "status",
            "created_at",
        ),
        sa.Index("ix_task_tenant_id_assignee_id", "tenant_id", "assignee_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenant.id", ondelete="CASCADE")
    project_id: uuid.UUID
    title: str = Field(max_length=NAME_MAX)
    description: str | None = Field(default=None, sa_type=sa.Text)
    status: TaskStatus = Field(default=TaskStatus.todo, sa_type=sa.String(16))
    assignee_id: uuid.UUID | None = None
    due_date: date | None = None
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class TaskPublic(TaskBase):
    # Every field is in every response: mark them required in the OpenAPI schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]
    id: uuid.UUID
    tenant_id: uuid.UUID
    project_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    version: int


class TasksPublic(SQLModel):
    data: list[TaskPublic]
    count: int
