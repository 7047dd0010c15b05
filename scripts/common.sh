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

# Start (or join) the embedded PostgreSQL in $1 and export its DATABASE_URL. This shell is
# recorded as one of its users: stop_embedded_postgres stops it only when no other user is
# left (two run.sh on one checkout share it safely).
start_embedded_postgres() {
  EMBEDDED_PG_DIR="$1"
  echo "==> DATABASE_URL is not set: starting the embedded PostgreSQL in $EMBEDDED_PG_DIR"
  DATABASE_URL="$("$VENV_BIN/python" "$ROOT_DIR/scripts/embedded_postgres.py" start "$EMBEDDED_PG_DIR" --user $$)"
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
    "$VENV_BIN/python" "$ROOT_DIR/scripts/embedded_postgres.py" stop "$EMBEDDED_PG_DIR" --user $$ || true
    EMBEDDED_PG_DIR=""
  fi
}

# Stop with the settings' own message when they are invalid (before anything is started).
check_settings() {
  "$VENV_BIN/python" -c 'import app.core.config' || {
    echo "error: invalid settings (the environment or .env): nothing was started" >&2
    exit 2
  }
}

# Stop when $1:$2 cannot be listened on (port taken, unknown address), before anything starts.
check_port() {
  "$VENV_BIN/python" - "$1" "$2" <<'PY' || exit 1
import socket, sys
host, port = sys.argv[1], sys.argv[2]
try:
    family, kind, proto, _, address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
except (OSError, ValueError) as exc:
    sys.exit(f"error: cannot listen on {host}:{port} ({exc}): is another service using it? Set PORT (and HOST) to a free one.")
PY
}

# Wait until $1 answers 200, while process $2 lives, for at most $3 seconds.
wait_until_serving() {
  "$VENV_BIN/python" - "$1" "$2" "$3" <<'PY'
import os, signal, sys, time, urllib.request
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the caller's trap reports it
url, pid, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(f"error: {url} did not answer within {sys.argv[3]} s")
PY
}
