"""The job worker as its own process: `python -m app.worker` (any number, on any machine).

It runs the jobs and the schedule of `app.jobs` until SIGINT or SIGTERM; a job that is
running then finishes first (one cut short is retried by another worker later).
"""

import asyncio
import logging
import signal

from app.core.db import engine
from app.jobs import run_worker

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logging.getLogger(__name__).info("Job worker started")
    try:
        await run_worker(stop)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
