"""Projects."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from app.models.common import DESCRIPTION_MAX, NAME_MAX, PatchModel, timestamp_field


class ProjectBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class ProjectCreate(ProjectBase):
    pass


class ProjectUpdate(PatchModel):
    nullable_fields = frozenset({"description"})

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class Project(ProjectBase, table=True):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "name"),
        sa.UniqueConstraint("tenant_id", "id"),
        sa.Index("ix_project_tenant_id_created_at", "tenant_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenant.id", ondelete="CASCADE")
    name: str = Field(max_length=NAME_MAX)
    description: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = timestamp_field()
    updated_at: datetime = timestamp_field()
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class ProjectPublic(ProjectBase):
    # Every field is in every response: mark them required in the OpenAPI schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]
    id: uuid.UUID
    tenant_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    version: int


class ProjectsPublic(SQLModel):
    data: list[ProjectPublic]
    count: int
