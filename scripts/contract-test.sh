#!/usr/bin/env bash
# Contract test: the generated TypeScript client (client/test/*.test.ts) against the live
# service, on a throwaway database of the PostgreSQL server named by DATABASE_URL (from the
# environment, else the root .env).
#
#   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres bash scripts/contract-test.sh
#
# Creates the database, migrates and seeds it (scripts/prestart.sh: the server's role owns
# it, the service connects as app_service), serves the app on a free port, runs
# `npm test` in client/ with API_BASE_URL set, then stops the server and drops the
# database, on failure too. scripts/test.sh runs it with the server it uses.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/client-common.sh"
cd "$ROOT_DIR"

READY_TIMEOUT=30

require_node
sync_environment
if [ -z "${DATABASE_URL:-}" ]; then # as the app and the pytest suite do: the root .env
  DATABASE_URL="$("$VENV_BIN/python" -c 'import sys; from dotenv import dotenv_values
print(dotenv_values(sys.argv[1]).get("DATABASE_URL") or "")' "$ROOT_DIR/.env")"
fi
if [ -z "$DATABASE_URL" ]; then
  echo "error: DATABASE_URL is not set: point it at a PostgreSQL server (any database on" >&2
  echo "       it; a throwaway one is created beside it), or run scripts/test.sh." >&2
  exit 1
fi
# The owner's URL creates the database (MIGRATIONS_DATABASE_URL when set, also from .env).
if [ -z "${MIGRATIONS_DATABASE_URL:-}" ]; then
  MIGRATIONS_DATABASE_URL="$("$VENV_BIN/python" -c 'import sys; from dotenv import dotenv_values
print(dotenv_values(sys.argv[1]).get("MIGRATIONS_DATABASE_URL") or "")' "$ROOT_DIR/.env")"
fi
SERVER_URL="${MIGRATIONS_DATABASE_URL:-$DATABASE_URL}"
ensure_node_modules

work="$(mktemp -d)"
server_log="$work/server.log"
server_pid=""
database_url=""

cleanup() {
  local status=$?
  set +e
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [ "$status" -ne 0 ] && [ -s "$server_log" ]; then
    echo "--- server log (last 40 lines) ---" >&2
    tail -n 40 "$server_log" >&2
  fi
  if [ -n "$database_url" ]; then
    echo "==> Dropping the throwaway database"
    "$VENV_BIN/python" scripts/contract_db.py drop "$SERVER_URL" "$database_url" ||
      echo "warning: could not drop the throwaway database" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> Creating a throwaway database"
database_url="$("$VENV_BIN/python" scripts/contract_db.py create "$SERVER_URL")"

# The service under test: its own database, owned by the server's role and served as the
# service role app_service (created by prestart when missing), and a random signing key.
export MIGRATIONS_DATABASE_URL="$database_url"
DATABASE_URL="$("$VENV_BIN/python" -m app.core.roles service-url "$database_url")"
export DATABASE_URL
export ENVIRONMENT=local
SECRET_KEY="$("$VENV_BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
export SECRET_KEY

echo "==> Migrating and seeding it"
PATH="$VENV_BIN:$PATH" bash scripts/prestart.sh

port="$("$VENV_BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base_url="http://127.0.0.1:$port"
echo "==> Starting the service on $base_url"
"$VENV_BIN/uvicorn" app.main:app --app-dir backend --host 127.0.0.1 --port "$port" \
  --no-server-header --no-access-log --no-proxy-headers >"$server_log" 2>&1 &
server_pid=$!

is_ready() {
  "$VENV_BIN/python" -c '
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
' "$base_url/api/v1/utils/ready/"
}

deadline=$((SECONDS + READY_TIMEOUT))
until is_ready; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the service exited before it was ready" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: the service was not ready within ${READY_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 0.2
done

echo "==> Type-checking the client and its tests"
(cd "$CLIENT_DIR" && npm run --silent typecheck)
echo "==> Running the contract tests (npm test)"
(cd "$CLIENT_DIR" && API_BASE_URL="$base_url" npm test --silent)
echo "==> Contract tests passed"
