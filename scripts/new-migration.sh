#!/usr/bin/env bash
# Autogenerate a migration from the models' difference with the migrations' head:
#
#   bash scripts/new-migration.sh "add comment"
#
# Runs against a throwaway database, migrated to head first and dropped at the end: on the
# embedded PostgreSQL (started for the run, then stopped) when no DATABASE_URL is
# configured, else beside the database DATABASE_URL (or MIGRATIONS_DATABASE_URL) names.
# Writes backend/app/alembic/versions/<date>-<slug>.py, lint-clean. Read it before you
# commit it: CHECK constraints and enum values are not detected, and row-level security is
# yours to add (docs/development.md, "Adding a resource").
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo 'usage: bash scripts/new-migration.sh "what the migration does"' >&2
  exit 2
fi

sync_environment
if ! database_configured; then
  scratch="$(mktemp -d)"
  start_embedded_postgres "$scratch/postgres"
  trap 'stop_embedded_postgres; rm -rf "$scratch"' EXIT
fi
"$VENV_BIN/python" scripts/new_migration.py "$1"
