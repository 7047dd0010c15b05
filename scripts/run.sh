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

# Ctrl-C / SIGTERM: stop the running step (prestart, then uvicorn) and exit; the EXIT trap
# then stops the embedded PostgreSQL (unless another run.sh still uses it). Each step runs in
# its own process group (set -m): a Ctrl-C reaches it once, through us. uvicorn treats a
# second signal as "drop the requests in flight".
stopping=""
child=""
trap 'stopping=1; [ -z "$child" ] || kill -TERM -- "-$child" 2>/dev/null || true' INT TERM
trap stop_embedded_postgres EXIT

# Run "$@" in the background in its own process group; sets $child.
spawn() {
  set -m
  "$@" &
  child=$!
  set +m
}

# Wait for $child, again after a trapped signal interrupts `wait`; sets $status.
wait_child() {
  status=0
  wait "$child" || status=$?
  while [ -n "$stopping" ] && kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  child=""
}

stopped_on_request() {
  if [ -n "$stopping" ]; then
    echo "==> Stopped"
    exit 0
  fi
}

if ! database_configured; then
  start_embedded_postgres "${EMBEDDED_POSTGRES_DIR:-$ROOT_DIR/.data/postgres}"
  use_service_role
fi
stopped_on_request

spawn env PATH="$VENV_BIN:$PATH" bash scripts/prestart.sh
wait_child
stopped_on_request
if [ "$status" -ne 0 ]; then
  echo "error: prestart failed (status $status): the service was not started" >&2
  exit "$status"
fi

case "$HOST" in
  0.0.0.0) local_host=127.0.0.1 ;;
  ::) local_host="[::1]" ;;
  *:*) local_host="[$HOST]" ;;
  *) local_host="$HOST" ;;
esac
case "$HOST" in *:*) url_host="[$HOST]" ;; *) url_host="$HOST" ;; esac

# uvicorn answers SIGTERM by finishing the requests in flight, then closing the pool.
spawn "$VENV_BIN/uvicorn" app.main:app --app-dir backend --host "$HOST" --port "$PORT" \
  --timeout-graceful-shutdown "$GRACEFUL_SHUTDOWN_TIMEOUT" --no-server-header --no-access-log \
  --no-proxy-headers \
  ${UVICORN_ARGS:-}
server_pid=$child

# Polled in the background so that a signal is handled at once, not after the poll.
wait_until_serving "http://$local_host:$PORT/api/v1/utils/health-check/" "$server_pid" \
  "$STARTUP_TIMEOUT" &
poller=$!
polled=0
wait "$poller" || polled=$?
while kill -0 "$poller" 2>/dev/null; do
  polled=0
  wait "$poller" || polled=$?
done
if [ "$polled" -eq 0 ]; then
  echo "==> Serving on http://$url_host:$PORT (docs at /docs)"
elif [ -z "$stopping" ]; then
  kill -TERM "$server_pid" 2>/dev/null || true
fi

wait_child
stopped_on_request
echo "error: the service exited (status $status)" >&2
exit $((status == 0 ? 1 : status))
