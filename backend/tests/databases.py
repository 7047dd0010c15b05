"""Throwaway databases on a PostgreSQL server, for the test suite and scripts/contract-test.sh.

Nothing here imports the app, so it is safe before the settings are read.
"""

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


def url_for_database(server_url: str, database: str) -> str:
    """The asyncpg URL of `database` on the server of `server_url` (a `?host=` socket too)."""
    return (
        make_url(server_url)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


async def on_server(server_url: str, statement: str) -> None:
    """Run one statement in autocommit on the database `server_url` names: CREATE and DROP
    DATABASE refuse a transaction."""
    database = make_url(server_url).database or "postgres"
    engine = create_async_engine(
        url_for_database(server_url, database), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
