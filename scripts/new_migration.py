"""Autogenerate an Alembic migration against a throwaway database migrated to head.

    python scripts/new_migration.py "add comment"

Creates a database beside the one the settings name (MIGRATIONS_DATABASE_URL, else
DATABASE_URL: the role must be allowed to create databases), runs `alembic upgrade head`
on it, then `alembic revision --autogenerate -m MESSAGE`, and drops it, on failure too.
Run it through scripts/new-migration.sh, which starts the embedded PostgreSQL when no
DATABASE_URL is configured. backend/ must be on PYTHONPATH.
"""

import asyncio
import secrets
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.core.config import settings
from tests.databases import on_server, url_for_database

ROOT_DIR = Path(__file__).resolve().parents[1]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT_DIR / "alembic.ini"))
    config.attributes["url"] = url  # not through the ini: a socket path's `%` breaks it
    config.attributes["service_role"] = None  # grants do not matter on a throwaway copy
    return config


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].strip():
        sys.exit('usage: bash scripts/new-migration.sh "what the migration does"')
    message = sys.argv[1]
    server_url = settings.MIGRATIONS_DATABASE_URL or settings.DATABASE_URL
    if not server_url:
        sys.exit("error: DATABASE_URL is not set: run bash scripts/new-migration.sh")
    name = f"app_new_migration_{secrets.token_hex(4)}"
    url = url_for_database(server_url, name)
    asyncio.run(on_server(server_url, f'CREATE DATABASE "{name}"'))
    try:
        command.upgrade(alembic_config(url), "head")
        command.revision(alembic_config(url), message=message, autogenerate=True)
    finally:
        asyncio.run(on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
