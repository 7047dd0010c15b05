#!/usr/bin/env bash
# Run the service on http://127.0.0.1:8000 (HOST and PORT honoured): install what is
# missing, check the settings and the port, start (or join) an embedded PostgreSQL when
# DATABASE_URL is unset, migrate, seed, serve.
#
# Exits non-zero when the service cannot start (invalid settings, port taken, database
# unreachable, migration failed); the settings and the port are checked before the
# database is touched. Ctrl-C or SIGTERM stops the service gracefully (in-flight requests
# finish), then the embedded PostgreSQL unless another run.sh still uses it.
# EMBEDDED_POSTGRES_DIR moves the embedded database (default .data/postgres).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
# Seconds in-flight requests get to finish on Ctrl-C / SIGTERM.
GRACEFUL_SHUTDOWN_TIMEOUT="${GRACEFUL_SHUTDOWN_TIMEOUT:-20}"
STARTUP_TIMEOUT=60

sync_environment
check_settings
check_port "$HOST" "$PORT"

trap stop_embedded_postgres EXIT
if ! database_configured; then
  start_embedded_postgres "${EMBEDDED_POSTGRES_DIR:-$ROOT_DIR/.data/postgres}"
fi

PATH="$VENV_BIN:$PATH" bash scripts/prestart.sh

case "$HOST" in
  0.0.0.0) local_host=127.0.0.1 ;;
  ::) local_host="[::1]" ;;
  *:*) local_host="[$HOST]" ;;
  *) local_host="$HOST" ;;
esac
case "$HOST" in *:*) url_host="[$HOST]" ;; *) url_host="$HOST" ;; esac

stopping=""
# uvicorn answers SIGTERM by finishing the requests in flight, then closing the pool. It runs
# in its own process group (set -m) so that a Ctrl-C reaches it once, as our SIGTERM: a
# second signal would make it drop the requests in flight.
set -m
"$VENV_BIN/uvicorn" app.main:app --app-dir backend --host "$HOST" --port "$PORT" \
  --timeout-graceful-shutdown "$GRACEFUL_SHUTDOWN_TIMEOUT" ${UVICORN_ARGS:-} &
server_pid=$!
set +m
trap 'stopping=1; kill -TERM "$server_pid" 2>/dev/null || true' INT TERM

if wait_until_serving "http://$local_host:$PORT/api/v1/utils/health-check/" "$server_pid" \
  "$STARTUP_TIMEOUT"; then
  echo "==> Serving on http://$url_host:$PORT (docs at /docs)"
elif [ -z "$stopping" ]; then
  kill -TERM "$server_pid" 2>/dev/null || true
fi

status=0
wait "$server_pid" || status=$?
# A trapped signal interrupts `wait`: wait again for the service to finish its shutdown.
while [ -n "$stopping" ] && kill -0 "$server_pid" 2>/dev/null; do
  status=0
  wait "$server_pid" || status=$?
done
if [ -n "$stopping" ]; then
  echo "==> Service stopped"
  exit 0
fi
echo "error: the service exited (status $status)" >&2
exit $((status == 0 ? 1 : status))
