"""Create or drop the throwaway database of scripts/contract-test.sh.

    python scripts/contract_db.py create SERVER_URL        # prints the new database's URL
    python scripts/contract_db.py drop SERVER_URL DATABASE_URL  # DATABASE_URL: what create printed

SERVER_URL is any PostgreSQL URL of the server (postgres://, postgresql://,
postgresql+asyncpg://; a unix socket as `?host=/dir` works). The helpers are the test
suite's (backend/tests/databases.py), so run it with backend/ on PYTHONPATH.
"""

import asyncio
import secrets
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tests.databases import on_server, url_for_database  # backend/ is on PYTHONPATH


def run(server_url: str, statement: str) -> None:
    try:
        asyncio.run(on_server(server_url, statement))
    except (OSError, SQLAlchemyError) as exc:
        sys.exit(f"error: {statement} failed on the server of DATABASE_URL: {exc}")


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["create"] and len(args) == 2:
        name = f"app_contract_{secrets.token_hex(4)}"
        run(args[1], f'CREATE DATABASE "{name}"')
        print(url_for_database(args[1], name))  # noqa: T201
    elif args[:1] == ["drop"] and len(args) == 3:
        name = make_url(args[2]).database or ""
        if not name.startswith("app_contract_"):
            sys.exit(f"refusing to drop {name!r}: not a database made by `create`")
        run(args[1], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        sys.exit(f"usage: {sys.argv[0]} create SERVER_URL | drop SERVER_URL DATABASE_URL")


if __name__ == "__main__":
    main()
