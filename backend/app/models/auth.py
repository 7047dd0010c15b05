"""Logins, refresh and reset tokens, login throttling."""

import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from app.models.common import NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, timestamp_field


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


THROTTLE_KEY_MAX = NAME_MAX + 8


class LoginThrottle(SQLModel, table=True):
    """Attempts per key in the current window: failed logins (`email:<email>`,
    `ip:<address>`), signups (`signup-email:`, `signup-ip:`) and password recoveries
    (`recovery-email:`, `recovery-ip:`)."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=THROTTLE_KEY_MAX)
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
