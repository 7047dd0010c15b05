"""Invitations: a single-use link that lets someone join a tenant with a given role."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from app.models.common import (
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    Email,
    Role,
    one_of,
    timestamp_field,
)


class InvitationBase(SQLModel):
    email: Email = Field(max_length=NAME_MAX)


class InvitationCreate(InvitationBase):
    role: Role = Role.member


class Invitation(InvitationBase, table=True):
    """The link's token is stored as its SHA-256; `accepted_at` marks it spent."""

    __table_args__ = (
        one_of("role", Role, "role"),
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    email: str = Field(max_length=NAME_MAX)
    role: str = Field(default=Role.member, max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    invited_by_id: uuid.UUID | None = Field(
        default=None, foreign_key="user.id", ondelete="SET NULL", index=True
    )
    created_at: datetime = timestamp_field()
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    accepted_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class InvitationPublic(InvitationBase):
    # Every field is in every response: mark them required in the OpenAPI schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]
    id: uuid.UUID
    role: Role
    tenant_id: uuid.UUID
    invited_by_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class InvitationsPublic(SQLModel):
    data: list[InvitationPublic]
    count: int


class InvitationAccept(SQLModel):
    token: str = Field(min_length=1, max_length=512)
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    full_name: str | None = Field(default=None, max_length=NAME_MAX)
