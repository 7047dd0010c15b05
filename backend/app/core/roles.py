"""The two database roles: the owner of the schema migrates, the service role serves.

    python -m app.core.roles ensure   # as MIGRATIONS_DATABASE_URL: create DATABASE_URL's role
    python -m app.core.roles check    # as DATABASE_URL: who the service is, and its flags
    python -m app.core.roles service-url OWNER_URL   # OWNER_URL with the default service role

`ensure` creates the service role when it is missing: LOGIN, not superuser, no BYPASSRLS,
nothing else; the migrations grant it its table privileges (app/core/rls.py). It never
changes a role that exists. `check` fails (exit 1) when the service could bypass
row-level security (a superuser, BYPASSRLS, or the owner of a table) although
MIGRATIONS_DATABASE_URL is set; with one URL for both (the fallback) it only warns.
"""

import asyncio
import re
import sys
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def statement_caches() -> dict[str, int]:
    """DB_STATEMENT_CACHE_SIZE for these connections too (they may go through a pooler).
    Read when connecting: this module is imported before the settings are (tests)."""
    from app.core.config import settings

    return settings.statement_caches


# The role scripts/run.sh, scripts/test.sh and the test suite derive from the owner's URL.
DEFAULT_SERVICE_ROLE = "app_service"
DEFAULT_SERVICE_PASSWORD = "app_service"  # local and throwaway databases only
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def service_url_for(
    owner_url: str, role: str = DEFAULT_SERVICE_ROLE, password: str = DEFAULT_SERVICE_PASSWORD
) -> str:
    """The URL of the same database as `owner_url`, as the service role."""
    url = make_url(owner_url).set(drivername="postgresql+asyncpg", username=role, password=password)
    return url.render_as_string(hide_password=False)


def service_role_name(service_url: str | None, migrations_url: str | None) -> str | None:
    """The role the migrations grant to: DATABASE_URL's user, when another role migrates."""
    if not service_url or not migrations_url:
        return None
    service = make_url(service_url).username
    owner = make_url(migrations_url).username
    return service if service and service != owner else None


async def ensure_service_role(owner_url: str, service_url: str) -> bool:
    """Create the service role as the owner when it is missing; True when it was created."""
    url = make_url(service_url)
    name = url.username or ""
    if not ROLE_NAME.match(name):
        raise SystemExit(f"Configuration error: DATABASE_URL: unusable role name {name!r}")
    password = url.password
    engine = create_async_engine(
        owner_url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args=statement_caches(),
    )
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": name}
            )
            if exists:
                return False
            secret = (
                "" if password is None else " PASSWORD '{}'".format(password.replace("'", "''"))
            )
            try:
                await connection.execute(
                    text(
                        f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB'
                        f" NOCREATEROLE NOREPLICATION{secret}"
                    )
                )
            except DBAPIError as exc:  # created meanwhile by a concurrent run: fine
                if getattr(exc.orig, "sqlstate", None) not in {"42710", "23505"}:
                    raise
                return False
            return True
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class ServiceRole:
    name: str
    superuser: bool
    bypassrls: bool
    owned_tables: int
    ungranted_tables: int = 0

    @property
    def bound_by_rls(self) -> bool:
        return not (self.superuser or self.bypassrls or self.owned_tables)

    def describe(self) -> str:
        return (
            f"{self.name}: {'superuser' if self.superuser else 'not a superuser'}, "
            f"{'BYPASSRLS' if self.bypassrls else 'no BYPASSRLS'}, "
            f"owns {self.owned_tables or 'no'} table{'' if self.owned_tables == 1 else 's'}"
        )


CURRENT_ROLE = text(
    "SELECT current_user AS name, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,"
    " (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')"
    "  AND c.relnamespace = 'public'::regnamespace) AS owned_tables,"
    " (SELECT count(*) FROM pg_tables t WHERE t.schemaname = 'public'"
    "  AND t.tablename <> 'alembic_version'"
    "  AND NOT has_table_privilege(format('%I.%I', t.schemaname, t.tablename), 'SELECT'))"
    " AS ungranted_tables"
    " FROM pg_roles r WHERE r.rolname = current_user"
)


async def current_role(url: str) -> ServiceRole:
    """The role a connection to `url` runs as, and what could let it past the policies."""
    engine = create_async_engine(url, poolclass=NullPool, connect_args=statement_caches())
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(CURRENT_ROLE)).one()
    finally:
        await engine.dispose()
    return ServiceRole(
        row.name, row.superuser, row.bypassrls, row.owned_tables, row.ungranted_tables
    )


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["service-url"] and len(args) == 2:
        print(service_url_for(args[1]))  # noqa: T201
        return
    from app.core.config import settings  # after the argument check: reads the environment

    if args == ["ensure"]:
        owner, service = settings.MIGRATIONS_DATABASE_URL, settings.DATABASE_URL
        two_roles = service and owner and service_role_name(service, owner)
        if two_roles and asyncio.run(ensure_service_role(str(owner), str(service))):
            print(f"Created the service role {make_url(str(service)).username}")  # noqa: T201
    elif args == ["check"]:
        if not settings.DATABASE_URL:
            raise SystemExit("Configuration error: DATABASE_URL is not set")
        role = asyncio.run(current_role(settings.DATABASE_URL))
        print(f"The service connects as {role.describe()}")  # noqa: T201
        if not role.bound_by_rls:
            advice = (
                "Row-level security does not bind this role: give the service a role of its "
                "own in DATABASE_URL and the owner in MIGRATIONS_DATABASE_URL (docs/deployment.md: Database roles)"
            )
            if settings.MIGRATIONS_DATABASE_URL:  # two roles configured, yet one bypasses
                raise SystemExit(advice)
            print(f"warning: {advice}", file=sys.stderr)  # noqa: T201
        if role.ungranted_tables:  # e.g. a role introduced after the migrations ran
            raise SystemExit(
                f"{role.name} may not read {role.ungranted_tables} table(s) of the schema: "
                "grant them as the owner (docs/deployment.md: Database roles)"
            )
    else:
        raise SystemExit(f"usage: {sys.argv[0]} ensure | check | service-url OWNER_URL")


if __name__ == "__main__":
    main()
