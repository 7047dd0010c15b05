"""What every model module shares: the naming convention, enums, limits, PATCH bodies."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

import sqlalchemy as sa
from pydantic import AfterValidator, ConfigDict, EmailStr, model_validator
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
