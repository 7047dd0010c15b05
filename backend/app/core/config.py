"""Settings: one class, read from the environment and the root `.env`."""

import ipaddress
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AnyUrl,
    BeforeValidator,
    EmailStr,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT_DIR = Path(__file__).resolve().parents[3]
PLACEHOLDER_SECRET = "changethis"


def parse_cors(value: Any) -> list[str] | str:
    if isinstance(value, str) and not value.startswith("["):
        return [origin.strip() for origin in value.split(",") if origin.strip()]
    if isinstance(value, list | str):
        return value
    raise ValueError(value)


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and point them at asyncpg."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("must be a URL such as postgresql://user:password@host:5432/db")
    if scheme not in {"postgres", "postgresql"} and not scheme.startswith("postgresql+"):
        raise ValueError(f"must be a PostgreSQL URL, got scheme {scheme!r}")
    return f"postgresql+asyncpg://{rest}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ROOT_DIR / ".env", env_ignore_empty=True, extra="ignore"
    )

    PROJECT_NAME: str = "SaaS backend"
    API_V1_STR: str = "/api/v1"
    ENVIRONMENT: Literal["local", "staging", "production"] = "local"

    SECRET_KEY: str = Field(default=PLACEHOLDER_SECRET, min_length=8)
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=15, ge=1)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(default=30, ge=1)
    PASSWORD_RESET_TOKEN_EXPIRE_MINUTES: int = Field(default=60, ge=1)

    # argon2id cost; the defaults are OWASP's minimum (m=19 MiB, t=2, p=1).
    ARGON2_TIME_COST: int = Field(default=2, ge=1)
    ARGON2_MEMORY_COST: int = Field(default=19_456, ge=8)
    ARGON2_PARALLELISM: int = Field(default=1, ge=1)
    # Hashes computed at once, in worker threads; more only adds latency to the loop.
    HASHING_CONCURRENCY: int = Field(default=1, ge=1)

    LOGIN_MAX_FAILURES: int = Field(default=10, ge=1)
    LOGIN_FAILURE_WINDOW_MINUTES: int = Field(default=15, ge=1)
    # Throttling per client address: high, so one office behind a NAT is not one user.
    LOGIN_MAX_FAILURES_PER_ADDRESS: int = Field(default=100, ge=1)
    # Attempts (not failures) per window of LOGIN_FAILURE_WINDOW_MINUTES.
    SIGNUP_MAX_PER_EMAIL: int = Field(default=5, ge=1)
    SIGNUP_MAX_PER_ADDRESS: int = Field(default=20, ge=1)
    PASSWORD_RECOVERY_MAX_PER_EMAIL: int = Field(default=3, ge=1)
    PASSWORD_RECOVERY_MAX_PER_ADDRESS: int = Field(default=20, ge=1)
    # Comma-separated proxy addresses or networks whose X-Forwarded-For is believed
    # (`*` for any). Empty: the client address is always the socket peer.
    FORWARDED_ALLOW_IPS: str = ""

    DATABASE_URL: str | None = None
    DB_POOL_SIZE: int = Field(default=10, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=10, ge=0)
    # Off by default: a ping is one more round trip per request. After a database restart
    # the pool is invalidated on the first failed statement.
    DB_POOL_PRE_PING: bool = False
    DB_POOL_TIMEOUT: float = Field(default=30.0, gt=0)
    DB_CONNECT_TIMEOUT: float = Field(default=10.0, gt=0)
    DB_COMMAND_TIMEOUT: float = Field(default=30.0, gt=0)
    DB_READY_TIMEOUT: float = Field(default=2.0, gt=0)

    BACKEND_CORS_ORIGINS: Annotated[list[AnyUrl] | str, BeforeValidator(parse_cors)] = []
    FRONTEND_HOST: str = "http://localhost:5173"

    FIRST_SUPERUSER: EmailStr = "admin@example.com"
    FIRST_SUPERUSER_PASSWORD: str = Field(default=PLACEHOLDER_SECRET, min_length=8)
    FIRST_SUPERUSER_TENANT: str = "Platform"

    SMTP_HOST: str | None = None
    SMTP_PORT: int = 587
    SMTP_USER: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TLS: bool = True
    SMTP_SSL: bool = False
    SMTP_TIMEOUT: float = Field(default=10.0, gt=0)
    EMAILS_FROM_EMAIL: EmailStr = "noreply@example.com"
    EMAILS_FROM_NAME: str | None = None

    @field_validator("DATABASE_URL")
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        return normalise_database_url(value) if value else None

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        for entry in (item.strip() for item in value.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @property
    def trusted_proxies(self) -> list[str]:
        return [item.strip() for item in self.FORWARDED_ALLOW_IPS.split(",") if item.strip()]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def all_cors_origins(self) -> list[str]:
        origins = [str(origin).rstrip("/") for origin in self.BACKEND_CORS_ORIGINS]
        return [*origins, self.FRONTEND_HOST.rstrip("/")]

    @property
    def emails_enabled(self) -> bool:
        return bool(self.SMTP_HOST)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        if self.ENVIRONMENT != "local":
            for name in ("SECRET_KEY", "FIRST_SUPERUSER_PASSWORD"):
                if getattr(self, name) == PLACEHOLDER_SECRET:
                    raise ValueError(
                        f"{name} is {PLACEHOLDER_SECRET!r}; set a real secret "
                        f"when ENVIRONMENT={self.ENVIRONMENT}"
                    )
        return self


def load_settings() -> Settings:
    """Build the settings, or stop with one line per bad variable instead of a traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"Configuration error: {name}: {error['msg']}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


settings = load_settings()
