"""The job queue against real workers: the in-process one (`jobs.run_worker`) and
`python -m app.worker` as a subprocess, sending to a real SMTP server on 127.0.0.1.

These jobs are committed (a worker cannot see a test's open transaction), so each test uses
its own recipients and the fixture empties the queue afterwards.
"""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from app import emails, jobs
from app.core.config import settings
from app.core.db import SessionMaker
from app.core.db import engine as app_engine
from app.main import app
from tests.factories import unique_email
from tests.mail import WAIT_SECONDS, Sink, eventually

BACKEND_DIR = Path(__file__).resolve().parents[1]


async def job_statuses(email_to: str) -> list[str]:
    """The statuses of the email jobs to `email_to` still in the queue."""
    async with app_engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT status::text FROM pgqueuer "
                "WHERE entrypoint = 'send_email' AND convert_from(payload, 'UTF8') LIKE :pattern"
            ),
            {"pattern": f'%"email_to":"{email_to}"%'},
        )
        return list(result.scalars())


async def commit_email(email_to: str) -> None:
    async with SessionMaker() as session:
        await jobs.enqueue_email(
            session=session, email_to=email_to, data=emails.test_email(email_to=email_to)
        )
        await session.commit()


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(
    sink: Sink, worker: None
) -> None:
    sink.start()
    rolled_back, committed = unique_email("rolled-back"), unique_email("committed")
    async with SessionMaker() as session:
        await jobs.enqueue_email(
            session=session, email_to=rolled_back, data=emails.test_email(email_to=rolled_back)
        )
        await session.rollback()
    await commit_email(committed)

    async def delivered() -> bool:
        return bool(sink.messages_to(committed))

    # The worker runs jobs in order: once the later one is delivered, the earlier had its turn.
    await eventually(delivered, "the committed job")
    assert sink.messages_to(rolled_back) == []
    assert await job_statuses(rolled_back) == []


async def test_an_email_is_delivered_once_smtp_comes_back(sink: Sink, worker: None) -> None:
    email_to = unique_email("outage")
    await commit_email(email_to)  # the SMTP server is down

    async def failed_once() -> bool:
        async with app_engine.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT coalesce(max(attempts), 0) FROM pgqueuer WHERE entrypoint = 'send_email'"
                )
            )
            return bool(result.scalar_one() >= 1)

    await eventually(failed_once, "a failed attempt")
    assert sink.received == []
    sink.start()

    async def delivered() -> bool:
        return bool(sink.messages_to(email_to))

    await eventually(delivered, "the delivery after the outage")
    [message] = sink.messages_to(email_to)
    assert "Test email" in message

    async def done() -> bool:
        return await job_statuses(email_to) == []

    await eventually(done, "the job to leave the queue")


def start_worker(sink: Sink, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(BACKEND_DIR),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink.port),
        "SMTP_TLS": "false",
        "JOB_HEARTBEAT_TIMEOUT_SECONDS": "1",
        "JOB_POLL_SECONDS": "1",
        "JOB_RETRY_DELAY_SECONDS": "0.2",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.worker"],
            cwd=BACKEND_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_job_of_a_killed_worker_is_run_by_the_next_worker(
    sink: Sink, queue: None, tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    email_to = unique_email("killed")
    sink.hold.set()  # the first send hangs mid-way, as if SMTP were slow
    sink.start()
    await commit_email(email_to)
    first = start_worker(sink, log)
    second = None
    try:

        async def stalled() -> bool:
            assert first.poll() is None, log.read_text()
            return sink.held.is_set()

        await eventually(stalled, "the first worker to be mid-send")
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, WAIT_SECONDS)
        assert await job_statuses(email_to) == ["picked"]  # by a worker that is gone
        sink.hold.clear()
        sink.release.set()
        assert sink.received == []

        second = start_worker(sink, log)

        async def delivered() -> bool:
            assert second is not None and second.poll() is None, log.read_text()
            return bool(sink.messages_to(email_to))

        await eventually(delivered, "the second worker to take the job over")
        assert len(sink.messages_to(email_to)) == 1
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(process.wait, WAIT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
    assert second.returncode == 0, log.read_text()  # SIGTERM stops it cleanly


def worker_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "job-worker"]


async def test_the_service_lifespan_runs_a_worker_unless_told_not_to(
    sink: Sink, queue: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink.start()
    email_to = unique_email("lifespan")
    async with app.router.lifespan_context(app):
        assert len(worker_tasks()) == 1
        await commit_email(email_to)

        async def delivered() -> bool:
            return bool(sink.messages_to(email_to))

        await eventually(delivered, "the lifespan's worker to send")
    assert worker_tasks() == []
    monkeypatch.setattr(settings, "WORKER_IN_PROCESS", False)
    async with app.router.lifespan_context(app):
        assert worker_tasks() == []


async def test_the_worker_reconnects_after_losing_its_connection(sink: Sink, worker: None) -> None:
    sink.start()

    async def terminated() -> bool:
        async with app_engine.connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": jobs.WORKER_APPLICATION_NAME},
            )
            return bool(result.scalar_one())

    await eventually(terminated, "the worker's connection to be there and be cut")
    email_to = unique_email("reconnected")
    await commit_email(email_to)

    async def delivered() -> bool:
        return bool(sink.messages_to(email_to))

    await eventually(delivered, "the worker to reconnect and send")
