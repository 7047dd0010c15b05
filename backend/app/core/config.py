"""Settings: one class, read from the environment and the root `.env`."""

import ipaddress
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AnyUrl,
    BeforeValidator,
    EmailStr,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ROOT_DIR = Path(__file__).resolve().parents[3]
PLACEHOLDER_SECRET = "changethis"
MIN_SECRET_KEY_BYTES = 32


def parse_cors(value: Any) -> Any:
    """A comma-separated list or a JSON list; a broken JSON list is an error, not characters."""
    if isinstance(value, str):
        value = value.strip()
        if not value.startswith("["):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("not a valid JSON list (or use a comma-separated list)") from None
        if not isinstance(value, list):
            raise ValueError("must be a JSON list or a comma-separated list")
    return value


def normalise_database_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and point them at asyncpg."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("must be a URL such as postgresql://user:password@host:5432/db")
    if scheme not in {"postgres", "postgresql"} and not scheme.startswith("postgresql+"):
        raise ValueError(f"must be a PostgreSQL URL, got scheme {scheme!r}")
    normalised = f"postgresql+asyncpg://{rest}"
    try:
        port = make_url(normalised).port
    except (ArgumentError, ValueError):
        raise ValueError(
            "must be a URL such as postgresql://user:password@host:5432/db (is the port a number?)"
        ) from None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1-65535)")
    return normalised


def check_http_url(value: str) -> str:
    """A base URL with an http(s) scheme and a host."""
    AnyHttpUrl(value)  # raises a ValueError naming what is wrong
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ROOT_DIR / ".env", env_ignore_empty=True, extra="ignore"
    )

    PROJECT_NAME: str = "SaaS backend"
    API_V1_STR: str = "/api/v1"
    ENVIRONMENT: Literal["local", "staging", "production"] = "local"

    SECRET_KEY: str = Field(default=PLACEHOLDER_SECRET, min_length=8)  # 32 bytes outside local
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
    FORWARDED_ALLOW_IPS: str | None = None

    DATABASE_URL: str | None = None
    # Row-level security: the owner of the schema runs the migrations; DATABASE_URL's role
    # (not superuser, no BYPASSRLS, owns nothing) serves. Unset: DATABASE_URL does both.
    MIGRATIONS_DATABASE_URL: str | None = None
    DB_POOL_SIZE: int = Field(default=10, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=10, ge=0)
    # Off by default: a ping is one more round trip per request. After a database restart
    # the pool is invalidated on the first failed statement.
    DB_POOL_PRE_PING: bool = False
    DB_POOL_TIMEOUT: float = Field(default=30.0, gt=0)
    DB_CONNECT_TIMEOUT: float = Field(default=10.0, gt=0)
    DB_COMMAND_TIMEOUT: float = Field(default=30.0, gt=0)
    DB_READY_TIMEOUT: float = Field(default=2.0, gt=0)
    # Prepared statements kept per connection (asyncpg's and SQLAlchemy's caches alike).
    # 0 behind a transaction-mode pooler that does not track them (PgBouncer < 1.21).
    DB_STATEMENT_CACHE_SIZE: int = Field(default=100, ge=0)
    # A direct connection for the job worker, which LISTENs: a transaction-mode pooler
    # cannot carry LISTEN. Unset: DATABASE_URL.
    WORKER_DATABASE_URL: str | None = None

    BACKEND_CORS_ORIGINS: Annotated[list[AnyUrl], NoDecode, BeforeValidator(parse_cors)] = []
    FRONTEND_HOST: Annotated[str, AfterValidator(check_http_url)] = "http://localhost:5173"

    FIRST_SUPERUSER: EmailStr = "admin@example.com"
    FIRST_SUPERUSER_PASSWORD: str = Field(default=PLACEHOLDER_SECRET, min_length=8)
    FIRST_SUPERUSER_TENANT: str = "Platform"

    SMTP_HOST: str | None = None
    SMTP_PORT: int = Field(default=587, ge=1, le=65535)
    SMTP_USER: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TLS: bool = True
    SMTP_SSL: bool = False
    SMTP_TIMEOUT: float = Field(default=10.0, gt=0)
    EMAILS_FROM_EMAIL: EmailStr = "noreply@example.com"
    EMAILS_FROM_NAME: str | None = None

    # Operations: logs, API docs, security headers, error reporting.
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # json: one JSON object per line; console: readable lines. Unset: console when local.
    LOG_FORMAT: Literal["json", "console"] | None = None
    # /docs, /redoc and the OpenAPI schema. Unset: served unless ENVIRONMENT=production.
    API_DOCS: bool | None = None
    # The service is reached over HTTPS only (behind a TLS proxy): send HSTS.
    SERVED_OVER_HTTPS: bool = False
    SENTRY_DSN: AnyHttpUrl | None = None

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def log_format(self) -> Literal["json", "console"]:
        if self.LOG_FORMAT is not None:
            return self.LOG_FORMAT
        return "console" if self.ENVIRONMENT == "local" else "json"

    @property
    def statement_caches(self) -> dict[str, int]:
        """connect_args of every engine: asyncpg's cache of prepared statements and
        SQLAlchemy's above it, both DB_STATEMENT_CACHE_SIZE."""
        size = self.DB_STATEMENT_CACHE_SIZE
        return {"statement_cache_size": size, "prepared_statement_cache_size": size}

    @property
    def docs_enabled(self) -> bool:
        return self.API_DOCS if self.API_DOCS is not None else self.ENVIRONMENT != "production"

    # Background jobs (pgqueuer): see docs/architecture.md, "Background jobs".
    WORKER_IN_PROCESS: bool = True
    JOB_MAX_ATTEMPTS: int = Field(default=12, ge=1)
    JOB_RETRY_DELAY_SECONDS: float = Field(default=5.0, gt=0)
    JOB_RETRY_MAX_DELAY_SECONDS: float = Field(default=3600.0, gt=0)
    JOB_HEARTBEAT_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)
    JOB_POLL_SECONDS: float = Field(default=30.0, gt=0)
    CLEANUP_SCHEDULE: str = "17 * * * *"
    INVITATION_EXPIRE_DAYS: int = Field(default=7, ge=1)

    @field_validator("DATABASE_URL", "MIGRATIONS_DATABASE_URL", "WORKER_DATABASE_URL")
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        return normalise_database_url(value) if value else None

    @field_validator("CLEANUP_SCHEDULE")
    @classmethod
    def _cron_expression(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError("must be a cron expression such as '17 * * * *'")
        return value

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _proxy_addresses(cls, value: str | None) -> str | None:
        for entry in (item.strip() for item in (value or "").split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @property
    def trusted_proxies(self) -> list[str]:
        return [
            item.strip() for item in (self.FORWARDED_ALLOW_IPS or "").split(",") if item.strip()
        ]

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
            if len(self.SECRET_KEY.encode()) < MIN_SECRET_KEY_BYTES:
                raise ValueError(
                    f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes "
                    f"when ENVIRONMENT={self.ENVIRONMENT}"
                )
        return self


def load_settings() -> Settings:
    """Build the settings, or stop with one line per bad variable instead of a traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            name = "".join(  # BACKEND_CORS_ORIGINS[1] for the second origin of the list
                f"[{part}]" if isinstance(part, int) else str(part) for part in error["loc"]
            )
            message = error["msg"].removeprefix("Value error, ")
            # Errors of the whole model (secrets outside local) name the variable themselves.
            line = f"{name}: {message}" if name else message
            print(f"Configuration error: {line}", file=sys.stderr)  # noqa: T201
    except SettingsError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)  # noqa: T201
    raise SystemExit(2)


settings = load_settings()
