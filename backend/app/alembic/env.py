"""Async Alembic environment. The URL comes from `config.attributes["url"]` (tests) or the
settings; the service role to grant to from `config.attributes["service_role"]` or the settings."""

import asyncio
from logging.config import fileConfig

from alembic import context
from alembic.operations import ops
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from app import models  # noqa: F401  (registers the tables on the metadata)

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata

# pgqueuer's tables are created by our migrations from its DDL, not from models: leave them
# out of autogenerate's comparison.
QUEUE_TABLES = {"pgqueuer", "pgqueuer_log", "pgqueuer_schedules", "pgqueuer_statistics"}


def include_name(name: str | None, type_: str, _: object) -> bool:
    return not (type_ == "table" and name in QUEUE_TABLES)


def unique_constraints_first(
    _context: object, _revision: object, directives: list[ops.MigrationScript]
) -> None:
    """Autogenerate lists new tables before changes to existing ones, so a new composite
    foreign key (`(tenant_id, task_id) -> task (tenant_id, id)`) would be created before the
    unique constraint it needs, and that constraint dropped first on downgrade. Add such
    unique constraints before any new table, and drop them after the new tables."""
    for script in directives:

        def adds_unique(op_: ops.MigrateOperation, kind: type[ops.MigrateOperation]) -> bool:
            return (
                isinstance(op_, ops.ModifyTableOps)
                and bool(op_.ops)
                and all(
                    isinstance(inner, kind) and inner.constraint_type == "unique"  # type: ignore[attr-defined]
                    for inner in op_.ops
                )
            )

        upgrade, downgrade = script.upgrade_ops, script.downgrade_ops
        if isinstance(upgrade, ops.UpgradeOps):
            first = [o for o in upgrade.ops if adds_unique(o, ops.CreateUniqueConstraintOp)]
            upgrade.ops = first + [o for o in upgrade.ops if o not in first]
        if isinstance(downgrade, ops.DowngradeOps):
            last = [o for o in downgrade.ops if adds_unique(o, ops.DropConstraintOp)]
            downgrade.ops = [o for o in downgrade.ops if o not in last] + last


def database_url() -> str:
    """The owner's URL: MIGRATIONS_DATABASE_URL, else DATABASE_URL (one role for both)."""
    url = config.attributes.get("url")
    if url:
        return str(url)
    from app.core.config import settings

    if settings.MIGRATIONS_DATABASE_URL:
        return settings.MIGRATIONS_DATABASE_URL
    from app.core.db import require_database_url

    return require_database_url()


if "service_role" not in config.attributes:  # the role the migrations grant to (app/core/rls.py)
    from app.core.config import settings
    from app.core.roles import service_role_name

    config.attributes["service_role"] = service_role_name(
        settings.DATABASE_URL, settings.MIGRATIONS_DATABASE_URL
    )


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_name=include_name,
        process_revision_directives=unique_constraints_first,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    from app.core.config import settings

    engine = create_async_engine(
        database_url(), poolclass=NullPool, connect_args=settings.statement_caches
    )
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
