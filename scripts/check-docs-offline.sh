#!/usr/bin/env bash
# Check that /docs (Swagger UI) and /redoc render every operation with no network at all:
# serves the app on a loopback port and loads both pages in headless Chromium, inside a
# network namespace holding only the loopback interface when the machine allows one
# (root: `unshare -n`), and with every host name but 127.0.0.1 unresolvable either way.
#
#   bash scripts/check-docs-offline.sh
#
# Needs Chromium (Debian: apt-get install -y chromium; CHROMIUM=/path/to/chrome to choose).
# Not part of scripts/test.sh, which must not depend on apt; the pytest suite checks the
# pages' HTML (no host but the service's own) on every run.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"

READY_TIMEOUT=30
BROWSER_TIMEOUT=90

if [ "${1:-}" != "--offline" ]; then
  browser="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
  if [ -z "$browser" ]; then
    echo "error: Chromium not found: apt-get install -y chromium (or set CHROMIUM)" >&2
    exit 2
  fi
  export CHROMIUM="$browser"
  sync_environment
  if unshare -n true 2>/dev/null; then
    echo "==> Entering a network namespace with only the loopback interface"
    exec unshare -n bash "$0" --offline
  fi
  echo "==> No network namespace here (not root?): relying on Chromium's resolver rules"
fi

export PYTHONPATH="$ROOT_DIR/backend${PYTHONPATH:+:$PYTHONPATH}"
ip link set lo up 2>/dev/null || true

work="$(mktemp -d)"
server_pid=""
cleanup() {
  local status=$?
  set +e
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
    echo "--- server log ---" >&2
    tail -n 20 "$work/server.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# The docs need no database: the engine is created, never connected.
port="$("$VENV_BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base_url="http://127.0.0.1:$port"
echo "==> Serving the app on $base_url"
DATABASE_URL="postgresql://unused@127.0.0.1:9/unused" ENVIRONMENT=local API_DOCS=true \
  "$VENV_BIN/uvicorn" app.main:app --app-dir backend --host 127.0.0.1 --port "$port" \
  --no-server-header >"$work/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + READY_TIMEOUT))
until "$VENV_BIN/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
  "$base_url/docs" 2>/dev/null; do
  if ! kill -0 "$server_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: the service did not start" >&2
    exit 1
  fi
  sleep 0.2
done

# Operation ids, from the schema the pages load.
DATABASE_URL="postgresql://unused@127.0.0.1:9/unused" "$VENV_BIN/python" -c '
import json
from app.main import app
schema = app.openapi()
for path in schema["paths"].values():
    for operation in path.values():
        print(operation["tags"][0], operation["operationId"])
' >"$work/operations"

render() { # $1: page path; prints the DOM after its scripts ran
  timeout "$BROWSER_TIMEOUT" "$CHROMIUM" --headless --no-sandbox --disable-gpu \
    --disable-background-networking --disable-component-update --no-first-run \
    --disable-default-apps --disable-sync --no-default-browser-check \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
    --user-data-dir="$work/profile" --virtual-time-budget=20000 \
    --dump-dom "$base_url$1" 2>"$work/chromium.log"
}

failed=0
check_page() { # $1: page path, $2: how an operation appears in the DOM (printf format)
  local dom="$work/dom.html" missing=0 tag operation
  render "$1" >"$dom"
  while read -r tag operation; do
    # shellcheck disable=SC2059
    grep -qF "$(printf "$2" "$tag" "$operation")" "$dom" || missing=$((missing + 1))
  done <"$work/operations"
  local total
  total="$(wc -l <"$work/operations")"
  if [ "$missing" -ne 0 ]; then
    echo "FAIL $1: $missing of $total operations not rendered" >&2
    failed=1
  else
    echo "ok   $1: all $total operations rendered"
  fi
}

echo "==> Rendering the pages in headless Chromium, offline"
check_page /docs 'id="operations-%s-%s"'
check_page /redoc 'id="tag/%s/operation/%s"'
exit "$failed"
