"""Wait for the database to answer (bounded), or stop with a clear message.

Only what can fix itself is retried: the server is not up yet (connection refused, its
socket not there yet, a timeout), starting up or recovering, or has no free connection.
A missing database or role, a bad password or an unknown host stop at once, with the
server's (or the resolver's) own message.
"""

import asyncio
import logging
import socket

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception,
    stop_after_delay,
    wait_fixed,
)

from app.api.errors import exception_chain
from app.core.db import engine

logger = logging.getLogger("app.prestart")
MAX_WAIT_SECONDS = 60
# Shutting down, crashed and restarting, starting up (or recovering), too many connections.
TRANSIENT_SQLSTATES = ("57P01", "57P02", "57P03", "53300")


def can_recover(exc: BaseException) -> bool:
    """Waiting may help: the server is down, starting or full (not misconfigured)."""
    for link in exception_chain(exc):
        if isinstance(link, socket.gaierror):  # unknown host: no amount of waiting helps
            return False
        if isinstance(link, asyncpg.PostgresError):  # the server answered: its SQLSTATE says
            return str(getattr(link, "sqlstate", "")) in TRANSIENT_SQLSTATES
        if isinstance(link, OSError):  # refused, reset, no socket yet, timed out
            return True
    return False


def reason(exc: BaseException) -> str:
    """The server's or the resolver's own message, without SQLAlchemy's wrapping."""
    for link in exception_chain(exc):
        if isinstance(link, asyncpg.PostgresError | OSError):
            return str(link) or type(link).__name__
    return str(exc)


def log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.info("The database is not ready (%s); retrying", reason(exc) if exc else "?")


async def wait_for_database(
    database: AsyncEngine = engine, max_wait: float = MAX_WAIT_SECONDS
) -> None:
    """Return once `SELECT 1` answers; raise at once what cannot recover, RetryError when
    what can did not within max_wait seconds."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(can_recover),
        stop=stop_after_delay(max_wait),
        wait=wait_fixed(1),
        before_sleep=log_retry,
    ):
        with attempt:
            async with database.connect() as connection:
                await connection.execute(text("SELECT 1"))


async def main() -> None:
    where = engine.url.render_as_string(hide_password=True)
    try:
        await wait_for_database()
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise SystemExit(
            f"The database did not answer within {MAX_WAIT_SECONDS} s ({where}): "
            f"{reason(cause) if cause else '?'}"
        ) from None
    except (OSError, DBAPIError, asyncpg.PostgresError) as exc:
        raise SystemExit(
            f"Cannot use the database {where}: {reason(exc)} (check DATABASE_URL; not retrying)"
        ) from None
    finally:
        await engine.dispose()
    logger.info("Database is up")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
