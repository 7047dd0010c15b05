"""Faults seen from outside: the database stops under a running service, and the service
is stopped (SIGTERM) in the middle of a burst of writes.

Black-box: an embedded PostgreSQL of the test's own (stopped and started with pg_ctl) and the
real service in a uvicorn subprocess, driven over HTTP.
"""

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.databases import url_for_database
from tests.live_service import (
    API,
    embedded_datadir,
    embedded_postgres,
    migrated_embedded_database,
    running_service,
    sign_up,
)

CONNECT_TIMEOUT = 3
RECOVERY_SECONDS = 30  # a bound on a hang, not a speed requirement: recovery is one request


@pytest.fixture(scope="module")
def datadir() -> Iterator[Path]:
    with embedded_datadir() as path:
        yield path


@pytest.fixture(scope="module")
def database_url(datadir: Path) -> Iterator[str]:
    with migrated_embedded_database(datadir) as url:
        yield url


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Database unavailable"}
    assert int(response.headers["Retry-After"]) > 0


def test_database_down_answers_503_then_the_service_recovers_by_itself(
    database_url: str, datadir: Path, tmp_path: Path
) -> None:
    with running_service(
        database_url, tmp_path / "service.log", DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT)
    ) as service:
        _, headers = sign_up(service.base_url)
        # Well within the timeouts: a hang would fail here instead of answering 503.
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=15) as http:
            assert http.get(f"{API}/users/me").status_code == 200
            # Pooled connections are now open; they go stale with the server.
            embedded_postgres("stop", datadir)
            try:
                for _ in range(3):
                    assert_unavailable(http.get(f"{API}/users/me"))
                assert_unavailable(http.post(f"{API}/projects/", json={"name": "During outage"}))
                assert_unavailable(http.get(f"{API}/projects/"))
                assert_unavailable(http.get(f"{API}/utils/ready/"))
                assert http.get(f"{API}/utils/health-check/").status_code == 200
            finally:
                embedded_postgres("start", datadir)
            back_at = time.monotonic()
            statuses = []
            while time.monotonic() - back_at < RECOVERY_SECONDS:
                response = http.get(f"{API}/users/me")
                statuses.append(response.status_code)
                if response.status_code == 200:
                    break
                assert_unavailable(response)
                time.sleep(0.2)
            assert statuses[-1] == 200, statuses
            assert http.get(f"{API}/utils/ready/").status_code == 200
        assert service.process.poll() is None, "the service must survive the outage"
    assert "Traceback" not in service.output()


BURST = 60
CONCURRENCY = 16


async def test_sigterm_during_a_burst_of_creates_loses_no_acknowledged_write(
    database_url: str, tmp_path: Path
) -> None:
    """Every 201 the clients received is a row in the database after the service stopped;
    requests in flight when SIGTERM arrived still finish."""
    with running_service(database_url, tmp_path / "service.log") as service:
        tenant_id, headers = sign_up(service.base_url)
        acknowledged: list[tuple[str, float]] = []
        failed_statuses: list[int] = []
        enough = asyncio.Event()
        sigterm_at: list[float] = []

        async def create(http: httpx.AsyncClient, n: int) -> None:
            try:
                response = await http.post(f"{API}/projects/", json={"name": f"Burst {n}"})
            except httpx.TransportError:
                return  # refused or cut before an answer: never acknowledged
            if response.status_code == 201:
                acknowledged.append((response.json()["id"], time.monotonic()))
                if len(acknowledged) >= 5:
                    enough.set()
            else:
                failed_statuses.append(response.status_code)

        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(
            base_url=service.base_url, headers=headers, timeout=30, limits=limits
        ) as http:
            burst = asyncio.gather(*(create(http, n) for n in range(BURST)))
            await asyncio.wait_for(enough.wait(), 30)
            service.process.send_signal(signal.SIGTERM)
            sigterm_at.append(time.monotonic())
            await asyncio.wait_for(burst, 60)
        returncode = await asyncio.to_thread(service.process.wait, 30)

    assert returncode in (0, -signal.SIGTERM), service.output()
    assert "Application shutdown complete" in service.output()  # the pool was closed
    assert failed_statuses == []
    assert any(at > sigterm_at[0] for _, at in acknowledged), "no request was in flight"
    engine = create_async_engine(url_for_database(database_url, "postgres"))
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT id::text FROM project WHERE tenant_id = :tenant"),
                {"tenant": tenant_id},
            )
            stored = {row[0] for row in rows}
    finally:
        await engine.dispose()
    assert {project_id for project_id, _ in acknowledged} <= stored


async def test_only_connection_errors_count_as_an_outage() -> None:
    """Real errors from the driver and the pool: a refused connection, an exhausted pool or a
    statement past DB_COMMAND_TIMEOUT is an outage; a missing file, a division by zero or a misused connection are bugs and must
    stay 500s."""
    import asyncpg

    from app.api.errors import data_exception, database_unavailable
    from tests.conftest import SERVER_URL
    from tests.live_service import free_port

    with pytest.raises(OSError) as refused:
        await asyncpg.connect(host="127.0.0.1", port=free_port(), user="x", timeout=5)
    assert database_unavailable(refused.value)

    dead = create_async_engine(f"postgresql+asyncpg://x@127.0.0.1:{free_port()}/x")
    try:
        with pytest.raises(OSError) as through_sqlalchemy:
            async with dead.connect():
                pass
    finally:
        await dead.dispose()
    assert database_unavailable(through_sqlalchemy.value)

    one = create_async_engine(
        url_for_database(SERVER_URL, "postgres"), pool_size=1, max_overflow=0, pool_timeout=0.1
    )
    try:
        async with one.connect():
            with pytest.raises(PoolTimeoutError) as pool_exhausted:
                async with one.connect():
                    pass
    finally:
        await one.dispose()
    assert database_unavailable(pool_exhausted.value)

    slow = create_async_engine(
        url_for_database(SERVER_URL, "postgres"), connect_args={"command_timeout": 0.2}
    )
    try:
        async with slow.connect() as connection:
            with pytest.raises(TimeoutError) as statement_timeout:
                await connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        await slow.dispose()
    assert database_unavailable(statement_timeout.value)  # DB_COMMAND_TIMEOUT: no answer

    with pytest.raises(FileNotFoundError) as missing_file:
        await anyio.Path("/nonexistent/template.html").read_text()
    assert not database_unavailable(missing_file.value)

    live = create_async_engine(url_for_database(SERVER_URL, "postgres"))
    try:
        async with live.connect() as connection:
            with pytest.raises(DBAPIError) as division:
                await connection.execute(text("SELECT 1 / 0"))
    finally:
        await live.dispose()
    assert not database_unavailable(division.value)
    assert data_exception(division.value)

    misuse = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    assert not database_unavailable(misuse)
    assert database_unavailable(asyncpg.CannotConnectNowError("the database system is starting up"))
