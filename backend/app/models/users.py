"""Users."""

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
    PatchModel,
    Role,
    one_of,
    timestamp_field,
)


class UserBase(SQLModel):
    email: Email = Field(max_length=NAME_MAX)
    full_name: str | None = Field(default=None, max_length=NAME_MAX)


class UserRegister(UserBase):
    """Open signup: the user becomes the owner of a new tenant."""

    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    tenant_name: str = Field(min_length=1, max_length=NAME_MAX)


class UserCreate(UserBase):
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    role: Role = Role.member
    is_active: bool = True
    tenant_id: uuid.UUID | None = None


class UserUpdateMe(PatchModel):
    nullable_fields = frozenset({"full_name"})

    email: Email | None = Field(default=None, max_length=NAME_MAX)
    full_name: str | None = Field(default=None, max_length=NAME_MAX)


class UserUpdate(UserUpdateMe):
    role: Role | None = None
    is_active: bool | None = None


class UpdatePassword(SQLModel):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new_password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)


class User(UserBase, table=True):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "id"),
        one_of("role", Role, "role"),
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: uuid.UUID = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    email: str = Field(max_length=NAME_MAX, unique=True)
    role: str = Field(default=Role.member, max_length=16)
    is_active: bool = True
    is_superuser: bool = False
    hashed_password: str = Field(max_length=512)
    created_at: datetime = timestamp_field()


class UserPublic(UserBase):
    # Every field is in every response: mark them required in the OpenAPI schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]
    id: uuid.UUID
    role: Role
    is_active: bool
    is_superuser: bool
    tenant_id: uuid.UUID
    created_at: datetime


class UsersPublic(SQLModel):
    data: list[UserPublic]
    count: int
