"""Tables and API models: one chain per entity (Base → Create / Update / table / Public)."""

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

import sqlalchemy as sa
from pydantic import AfterValidator, ConfigDict, EmailStr, model_validator
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# Stable constraint names, so migrations can refer to them. Set before any table is defined.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp_field() -> Any:
    return Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True), nullable=False)


def one_of(column: str, values: type[StrEnum], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value.value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=name)


# Emails are stored and compared lowercased.
Email = Annotated[EmailStr, AfterValidator(str.lower)]


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    member = "member"


class Plan(StrEnum):
    free = "free"
    pro = "pro"
    enterprise = "enterprise"


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    done = "done"


ROLE_RANK = {Role.member: 0, Role.admin: 1, Role.owner: 2}

# Text limits shared by models and their Update variants.
NAME_MAX = 255
DESCRIPTION_MAX = 10_000
PASSWORD_MIN, PASSWORD_MAX = 8, 128


def _document_null_only_where_allowed(schema: dict[str, Any], cls: type[Any]) -> None:
    """In the OpenAPI schema, keep `null` only for the fields a PATCH may empty."""
    for name, prop in schema.get("properties", {}).items():
        if name in cls.nullable_fields or "anyOf" not in prop:
            continue
        kept = [option for option in prop.pop("anyOf") if option != {"type": "null"}]
        prop.pop("default", None)
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept


class PatchModel(SQLModel):
    """A PATCH body: omitted fields stay as they are; `null` only where a field may be empty."""

    model_config = ConfigDict(json_schema_extra=_document_null_only_where_allowed)  # type: ignore[assignment]
    nullable_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _null_only_where_allowed(self) -> Self:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable_fields:
                raise ValueError(f"{name} may not be null")
        return self


class Message(SQLModel):
    message: str


class ErrorDetail(SQLModel):
    """The body of every error except 422: `{"detail": "..."}`."""

    detail: str


# --- Tenants -----------------------------------------------------------------------------


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


# --- Users -------------------------------------------------------------------------------


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


# --- Logins, tokens, throttling ----------------------------------------------------------


class Login(SQLModel, table=True):
    """One sign-in: the `sid` of its access tokens and the family of its refresh tokens."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    created_at: datetime = timestamp_field()
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class RefreshToken(SQLModel, table=True):
    """A refresh token, stored as its SHA-256; `used_at` marks it rotated."""

    __tablename__ = "refresh_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    login_id: uuid.UUID = Field(foreign_key="login.id", ondelete="CASCADE", index=True)
    created_at: datetime = timestamp_field()
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class PasswordResetToken(SQLModel, table=True):
    __tablename__ = "password_reset_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: uuid.UUID = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    created_at: datetime = timestamp_field()
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class LoginThrottle(SQLModel, table=True):
    """Failed logins per key (`email:<address>` or `ip:<address>`) in the current window."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=NAME_MAX + 8)
    failures: int = 0
    window_start: datetime = timestamp_field()


class Token(SQLModel):
    # Every field is in every response: mark them required in the OpenAPI schema.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)  # type: ignore[assignment]
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    refresh_token: str
    expires_in: int


class RefreshRequest(SQLModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class NewPassword(SQLModel):
    token: str = Field(min_length=1, max_length=512)
    new_password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)


# --- Projects ----------------------------------------------------------------------------


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


# --- Tasks -------------------------------------------------------------------------------


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
