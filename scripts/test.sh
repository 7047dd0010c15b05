#!/usr/bin/env bash
# Run every check: lint, the Python test suite (with coverage) and the TypeScript client's
# drift check and contract test. Installs what is missing; starts a throwaway embedded
# PostgreSQL when DATABASE_URL is unset. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"

sync_environment
if ! database_configured; then
  scratch="$(mktemp -d)"
  start_embedded_postgres "$scratch/postgres"
  trap 'stop_embedded_postgres; rm -rf "$scratch"' EXIT
fi

echo "==> pytest"
status=0
"$VENV_BIN/pytest" --cov --cov-report=term "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
