"""Durable background jobs on PostgreSQL, with pgqueuer.

A job is a row in pgqueuer's table, inserted with `enqueue()` through the request's own
connection and transaction: a rolled-back request leaves no job, a committed one always has
its job. Workers (`run_worker`: in the service process by default, or `python -m
app.worker`) take jobs with `FOR UPDATE SKIP LOCKED`, so any number of them share the one
database. A failed job is retried with exponential backoff; a job whose worker died (no
heartbeat for `JOB_HEARTBEAT_TIMEOUT_SECONDS`) is taken again by another worker. Handlers
must therefore be idempotent: running one twice must do no more harm than once.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import make_msgid
from typing import cast

import asyncpg
from pgqueuer import PgQueuer, Queries
from pgqueuer.executors import DatabaseRetryEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.models import Job, Schedule
from pydantic import BaseModel
from sqlalchemy.engine import make_url
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud, emails
from app.core.config import settings
from app.core.db import SessionMaker, engine, set_tenant_context
from app.core.logs import current_request_id, request_context

logger = logging.getLogger(__name__)

SEND_EMAIL = "send_email"
CLEAN_UP = "clean_up"
WORKER_APPLICATION_NAME = f"{settings.PROJECT_NAME[:50]} job worker"


async def enqueue(session: AsyncSession, entrypoint: str, payload: BaseModel) -> None:
    """Add a job in the session's transaction: it exists only if that transaction commits."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver_connection = cast(asyncpg.Connection, raw.driver_connection)
    if not driver_connection.is_in_transaction():
        # SQLAlchemy opens its transaction with the first statement; make that happen first.
        await connection.exec_driver_sql("SELECT 1")
    queries = Queries.from_asyncpg_connection(driver_connection)
    await queries.enqueue(entrypoint, payload.model_dump_json().encode())


@contextlib.asynccontextmanager
async def job_session() -> AsyncIterator[AsyncSession]:
    """The database session of every job handler. Jobs are not requests: they may cross
    tenants (the clean-up does), so anything a job session needs is set here, once."""
    async with SessionMaker() as session:
        await set_tenant_context(session, tenant_id=None, cross_tenant=True)
        yield session


# Jobs ---------------------------------------------------------------------------------


class EmailJob(BaseModel):
    """One message. `message_id` is fixed when the job is made, so a retried delivery is
    recognisably the same message (receivers drop a repeated Message-ID)."""

    email_to: str
    subject: str
    html: str
    text: str
    message_id: str
    request_id: str | None = None  # the request that made it: its log lines carry the id


async def enqueue_email(*, session: AsyncSession, email_to: str, data: emails.EmailData) -> None:
    """Send an email once the session's transaction commits (retried while SMTP is down)."""
    domain = settings.EMAILS_FROM_EMAIL.rpartition("@")[2]
    job = EmailJob(
        email_to=email_to,
        subject=data.subject,
        html=data.html,
        text=data.text,
        message_id=make_msgid(domain=domain),
        request_id=current_request_id(),
    )
    await enqueue(session, SEND_EMAIL, job)


async def send_email(job: Job) -> None:
    await deliver_email(EmailJob.model_validate_json(job.payload or b""))


async def deliver_email(message: EmailJob) -> None:
    with request_context(message.request_id):
        await emails.send_email(
            email_to=message.email_to,
            data=emails.EmailData(subject=message.subject, html=message.html, text=message.text),
            message_id=message.message_id,
        )


async def clean_up(_: Schedule) -> None:
    """Scheduled by `CLEANUP_SCHEDULE`: one worker runs it per tick, however many there are."""
    async with job_session() as session:
        deleted = await crud.delete_expired_rows(session=session)
    logger.info("Clean-up deleted %s", deleted)


# Workers ------------------------------------------------------------------------------


def retrying(parameters: EntrypointExecutorParameters) -> DatabaseRetryEntrypointExecutor:
    """Exceptions re-queue the job after 1, 2, 4, ... times `JOB_RETRY_DELAY_SECONDS`."""
    return DatabaseRetryEntrypointExecutor(
        parameters,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        initial_delay=timedelta(seconds=settings.JOB_RETRY_DELAY_SECONDS),
        max_delay=timedelta(seconds=settings.JOB_RETRY_MAX_DELAY_SECONDS),
    )


def build_queuer(connection: asyncpg.Connection) -> PgQueuer:
    """The project's jobs and schedule on one connection. Adding a job: register it here."""
    pgq = PgQueuer.from_asyncpg_connection(connection)
    # "hold": a job that failed every attempt stays in the table as `failed`, for a look.
    pgq.entrypoint(SEND_EMAIL, executor_factory=retrying, on_failure="hold")(send_email)
    pgq.schedule(CLEAN_UP, settings.CLEANUP_SCHEDULE)(clean_up)
    return pgq


async def connect() -> asyncpg.Connection:
    """A connection of its own, to WORKER_DATABASE_URL or else the engine's database: the
    worker LISTENs on it, which a transaction-mode pooler cannot carry."""
    url = make_url(settings.WORKER_DATABASE_URL) if settings.WORKER_DATABASE_URL else engine.url
    _, options = engine.dialect.create_connect_args(url)
    options.setdefault("timeout", settings.DB_CONNECT_TIMEOUT)
    options["statement_cache_size"] = settings.DB_STATEMENT_CACHE_SIZE
    # Named in pg_stat_activity, beside the service's own connections.
    options["server_settings"] = {"application_name": WORKER_APPLICATION_NAME}
    connection: asyncpg.Connection = await asyncpg.connect(**options)
    return connection


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def run_worker(stop: asyncio.Event) -> None:
    """Run jobs and the schedule until `stop` is set; reconnect when the database goes."""
    delay = 1.0
    while not stop.is_set():
        try:
            connection = await connect()
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("Job worker cannot reach the database (%s); retrying", exc)
            await _wait(stop, delay)
            delay = min(delay * 2, 30.0)
            continue
        pgq = build_queuer(connection)
        relay = asyncio.create_task(_relay(stop, pgq.shutdown))
        try:
            await pgq.run(
                dequeue_timeout=timedelta(seconds=settings.JOB_POLL_SECONDS),
                heartbeat_timeout=timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT_SECONDS),
            )
            delay = 1.0
        except Exception:
            logger.exception("Job worker stopped; restarting")
        finally:
            relay.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
            if not connection.is_closed():
                connection.terminate()
        if not stop.is_set():
            await _wait(stop, delay)
            delay = min(delay * 2, 30.0)


async def _relay(stop: asyncio.Event, shutdown: asyncio.Event) -> None:
    await stop.wait()
    shutdown.set()


@contextlib.asynccontextmanager
async def in_process_worker() -> AsyncIterator[None]:
    """For the lifespan: a worker inside the service process when `WORKER_IN_PROCESS`."""
    if not settings.WORKER_IN_PROCESS:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(stop), name="job-worker")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=10)
        except TimeoutError:
            logger.warning("Job worker did not stop within 10 s; its jobs will be retried")
