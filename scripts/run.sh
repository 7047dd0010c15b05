#!/usr/bin/env bash
# Run the service on http://127.0.0.1:8000 (HOST and PORT honoured): install what is
# missing, start an embedded PostgreSQL when DATABASE_URL is unset, migrate, seed, serve.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"

sync_environment
if ! database_configured; then
  start_embedded_postgres "$ROOT_DIR/.data/postgres"
fi
trap stop_embedded_postgres EXIT

PATH="$VENV_BIN:$PATH" bash scripts/prestart.sh

echo "==> Serving on http://${HOST:-127.0.0.1}:${PORT:-8000} (docs at /docs)"
"$VENV_BIN/uvicorn" app.main:app --app-dir backend \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --no-proxy-headers ${UVICORN_ARGS:-} &
server_pid=$!
trap 'kill -TERM "$server_pid" 2>/dev/null || true' INT TERM
wait "$server_pid" || true
wait "$server_pid" 2>/dev/null || true
