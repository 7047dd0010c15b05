#!/usr/bin/env bash
# Before the service starts: wait for the database, make sure the service role exists,
# migrate it as the owner, seed the first superuser, and say which role the service uses.
# Runs with the project's Python environment active (docker image, or scripts/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/backend${PYTHONPATH:+:$PYTHONPATH}"

# The owner (MIGRATIONS_DATABASE_URL, else DATABASE_URL) waits and migrates: the service
# role may not exist yet.
DATABASE_URL="${MIGRATIONS_DATABASE_URL:-${DATABASE_URL:-}}" python -m app.backend_pre_start
python -m app.core.roles ensure
alembic upgrade head
python -m app.initial_data
python -m app.core.roles check
