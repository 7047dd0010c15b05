#!/usr/bin/env bash
# Before the service starts: wait for the database, migrate it, seed the first superuser.
# Runs with the project's Python environment active (docker image, or scripts/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/backend${PYTHONPATH:+:$PYTHONPATH}"

python -m app.backend_pre_start
alembic upgrade head
python -m app.initial_data
