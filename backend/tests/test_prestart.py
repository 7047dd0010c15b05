"""The prestart steps: wait for the database, migrate (also offline), seed idempotently."""

import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tenacity import RetryError

from app.backend_pre_start import can_recover, wait_for_database
from app.core.config import settings
from app.initial_data import seed_first_superuser
from tests.conftest import ROOT_DIR, SERVER_URL, run_alembic
from tests.databases import url_for_database
from tests.factories import across_tenants
from tests.live_service import free_port

SERVER = make_url(url_for_database(SERVER_URL, "postgres"))
# Long enough that a retried error would surface as RetryError after it, not at once.
PATIENT = 30


async def test_wait_for_database_returns_once_it_answers(engine: AsyncEngine) -> None:
    await wait_for_database()


@pytest.fixture
async def engine_for(request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """An engine for the test's parameter: a URL that cannot work as it stands."""
    url = request.param
    engine = create_async_engine(url, connect_args={"timeout": 5})
    yield engine
    await engine.dispose()


@pytest.mark.parametrize(
    ("engine_for", "message"),
    [
        (SERVER.set(database="no_such_database").render_as_string(False), "does not exist"),
        (SERVER.set(username="no_such_role").render_as_string(False), "no_such_role"),
        (
            "postgresql+asyncpg://postgres@no-such-host.invalid:5432/postgres",
            "",  # the resolver's message varies by platform
        ),
    ],
    ids=["missing database", "missing role", "unknown host"],
    indirect=["engine_for"],
)
async def test_what_cannot_recover_fails_at_once(engine_for: AsyncEngine, message: str) -> None:
    with pytest.raises(Exception) as raised:
        await wait_for_database(engine_for, max_wait=PATIENT)
    assert not isinstance(raised.value, RetryError)
    assert message in str(raised.value)


async def test_a_refused_connection_is_retried_until_the_deadline() -> None:
    refused = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    try:
        with pytest.raises(RetryError) as raised:
            await wait_for_database(refused, max_wait=1.5)
    finally:
        await refused.dispose()
    assert raised.value.last_attempt.attempt_number >= 2
    assert isinstance(raised.value.last_attempt.exception(), OSError)


@pytest.mark.parametrize(
    ("error", "recoverable"),
    [
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), True),
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (asyncpg.InvalidPasswordError('password authentication failed for user "x"'), False),
        (asyncpg.InvalidCatalogNameError('database "x" does not exist'), False),
    ],
    ids=["starting up", "too many clients", "refused", "timeout", "bad password", "no database"],
)
def test_errors_worth_waiting_for(error: Exception, recoverable: bool) -> None:
    """The server's SQLSTATE decides (the test servers trust every password, so a bad one
    cannot be provoked for real here)."""
    assert can_recover(error) is recoverable


def test_prestart_stops_with_the_servers_own_message() -> None:
    env = {
        **os.environ,
        "DATABASE_URL": SERVER.set(database="no_such_database").render_as_string(False),
        "PYTHONPATH": str(ROOT_DIR / "backend"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.backend_pre_start"],
        cwd=ROOT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENT,
    )
    assert done.returncode == 1
    assert 'database "no_such_database" does not exist' in done.stderr
    assert "not retrying" in done.stderr


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
