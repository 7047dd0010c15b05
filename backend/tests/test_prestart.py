"""The prestart steps: wait for the database, migrate (also offline), seed idempotently."""

import io

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.backend_pre_start import wait_for_database
from app.core.config import settings
from app.initial_data import seed_first_superuser
from tests.conftest import run_alembic
from tests.factories import across_tenants


async def test_wait_for_database_returns_once_it_answers(engine: AsyncEngine) -> None:
    await wait_for_database()


async def test_seeding_the_first_superuser_twice_changes_nothing(engine: AsyncEngine) -> None:
    count_sql = text(
        'SELECT count(*), bool_and(u.is_superuser), min(t.name), count(DISTINCT t.id) FROM "user" u'
        " JOIN tenant t ON t.id = u.tenant_id WHERE u.email = :email"
    )
    try:
        await seed_first_superuser()
        async with across_tenants(engine) as connection:
            first = (await connection.execute(count_sql, {"email": settings.FIRST_SUPERUSER})).one()
        await seed_first_superuser()
        async with across_tenants(engine) as connection:
            second = (
                await connection.execute(count_sql, {"email": settings.FIRST_SUPERUSER})
            ).one()
            tenants = (await connection.execute(text("SELECT count(*) FROM tenant"))).scalar_one()
        assert tuple(first) == (1, True, settings.FIRST_SUPERUSER_TENANT, 1)
        assert tuple(second) == tuple(first)
        assert tenants >= 1
    finally:
        async with across_tenants(engine) as connection:
            await connection.execute(
                text(
                    'DELETE FROM tenant WHERE id IN (SELECT tenant_id FROM "user" WHERE email = :e)'
                ),
                {"e": settings.FIRST_SUPERUSER},
            )


@pytest.mark.parametrize("direction", ["upgrade", "downgrade"])
async def test_offline_migrations_render_sql(direction: str) -> None:
    """`alembic upgrade head --sql` works without a database (for DBAs who review SQL)."""
    output = io.StringIO()

    def render(config: Config) -> None:
        config.output_buffer = output
        if direction == "upgrade":
            command.upgrade(config, "head", sql=True)
        else:
            command.downgrade(config, "head:base", sql=True)

    await run_alembic("postgresql+asyncpg://offline@localhost/offline", render)
    sql = output.getvalue()
    if direction == "upgrade":
        assert "CREATE TABLE task" in sql
        assert "ON DELETE SET NULL (assignee_id)" in sql
    else:
        assert "DROP TABLE task" in sql
