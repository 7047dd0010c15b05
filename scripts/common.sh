# Shared by run.sh and test.sh: source it, don't run it.
# Installs uv when missing, syncs the locked environment, and manages the embedded PostgreSQL.

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_BIN="$ROOT_DIR/.venv/bin"
UV_VERSION="0.13.9"

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then
    UV=uv
    return
  fi
  UV="$ROOT_DIR/.tools/uv/bin/uv"
  if [ ! -x "$UV" ]; then
    echo "==> Installing uv $UV_VERSION from PyPI into .tools/uv"
    local python
    python="$(command -v python3 || command -v python)" || {
      echo "Python 3.11+ is required (python3 not found)" >&2
      exit 1
    }
    "$python" -m pip install --quiet --disable-pip-version-check --target "$ROOT_DIR/.tools/uv" "uv==$UV_VERSION"
  fi
}

sync_environment() {
  ensure_uv
  echo "==> Syncing the locked environment (.venv)"
  (cd "$ROOT_DIR" && "$UV" sync --locked --quiet)
  export PYTHONPATH="$ROOT_DIR/backend${PYTHONPATH:+:$PYTHONPATH}"
}

# True when DATABASE_URL is set in the environment or in the root .env.
database_configured() {
  [ -n "${DATABASE_URL:-}" ] && return 0
  grep -Eq '^[[:space:]]*DATABASE_URL=[^[:space:]#]+' "$ROOT_DIR/.env" 2>/dev/null
}

EMBEDDED_PG_DIR=""

# Start the embedded PostgreSQL in $1 and export its DATABASE_URL; stopped on exit.
start_embedded_postgres() {
  EMBEDDED_PG_DIR="$1"
  echo "==> DATABASE_URL is not set: starting the embedded PostgreSQL in $EMBEDDED_PG_DIR"
  DATABASE_URL="$("$VENV_BIN/python" "$ROOT_DIR/scripts/embedded_postgres.py" start "$EMBEDDED_PG_DIR")"
  export DATABASE_URL
}

# Two roles on the embedded server: its superuser owns the schema and migrates
# (MIGRATIONS_DATABASE_URL); the service connects as app_service, which prestart creates.
use_service_role() {
  export MIGRATIONS_DATABASE_URL="$DATABASE_URL"
  DATABASE_URL="$("$VENV_BIN/python" -m app.core.roles service-url "$MIGRATIONS_DATABASE_URL")"
  export DATABASE_URL
}

stop_embedded_postgres() {
  if [ -n "$EMBEDDED_PG_DIR" ]; then
    echo "==> Stopping the embedded PostgreSQL"
    "$VENV_BIN/python" "$ROOT_DIR/scripts/embedded_postgres.py" stop "$EMBEDDED_PG_DIR" || true
    EMBEDDED_PG_DIR=""
  fi
}
