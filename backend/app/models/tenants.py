"""Tenants."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.common import (
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    Email,
    PatchModel,
    Plan,
    one_of,
    timestamp_field,
)


class TenantBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX)


class TenantCreate(TenantBase):
    """A tenant and its first owner, created together by a superuser."""

    plan: Plan = Plan.free
    owner_email: Email = Field(max_length=NAME_MAX)
    owner_password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    owner_full_name: str | None = Field(default=None, max_length=NAME_MAX)


class TenantUpdateMe(PatchModel):
    """What an owner may change on their own tenant."""

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    settings: dict[str, Any] | None = None


class TenantUpdate(TenantUpdateMe):
    """What a superuser may change on any tenant."""

    plan: Plan | None = None


class Tenant(TenantBase, table=True):
    __table_args__ = (one_of("plan", Plan, "plan"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    slug: str = Field(max_length=NAME_MAX + 16, unique=True)
    plan: str = Field(default=Plan.free, max_length=16)
    settings: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONB, sa_column_kwargs={"server_default": "{}"}
    )
    created_at: datetime = timestamp_field()


class TenantPublic(TenantBase):
    # Every field is in every response: mark them required in the OpenAPI schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]
    id: uuid.UUID
    slug: str
    plan: Plan
    settings: dict[str, Any]
    created_at: datetime


class TenantsPublic(SQLModel):
    data: list[TenantPublic]
    count: int
