"""Wait for the database to answer (bounded), or stop with a clear message."""

import asyncio
import logging

from sqlalchemy import text
from tenacity import RetryError, retry, stop_after_delay, wait_fixed

from app.core.db import engine

logger = logging.getLogger("app.prestart")
MAX_WAIT_SECONDS = 60


@retry(stop=stop_after_delay(MAX_WAIT_SECONDS), wait=wait_fixed(1), reraise=False)
async def wait_for_database() -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def main() -> None:
    try:
        await wait_for_database()
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise SystemExit(
            f"The database did not answer within {MAX_WAIT_SECONDS} s (check DATABASE_URL): {cause}"
        ) from None
    finally:
        await engine.dispose()
    logger.info("Database is up")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
