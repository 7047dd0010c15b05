#!/usr/bin/env bash
# Regenerate the TypeScript client from the app's OpenAPI schema, without starting a server.
#
#   bash scripts/generate-client.sh           # write client/openapi.json and client/src/client, type-check
#   bash scripts/generate-client.sh --check   # fail when those committed files are out of date
#
# Needs Node.js (20.19+) and npm; installs client/node_modules with `npm ci` when missing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/client-common.sh"
cd "$ROOT_DIR"

GENERATED=(openapi.json src/client)

usage() {
  echo "usage: $0 [--check]" >&2
  exit 2
}

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) usage ;;
esac
[ $# -le 1 ] || usage

# Print the app's OpenAPI schema. Importing the app builds its engine, which wants a
# DATABASE_URL, but connects to nothing.
dump_schema() {
  DATABASE_URL="${DATABASE_URL:-postgresql://unused@localhost/unused}" \
    "$VENV_BIN/python" -c 'import json; from app.main import app; print(json.dumps(app.openapi(), indent=2))'
}

# Dump the schema into $1/openapi.json and generate $1/src/client from it.
generate_in() {
  local dir="$1"
  dump_schema >"$dir/openapi.json.tmp"
  mv "$dir/openapi.json.tmp" "$dir/openapi.json"
  (cd "$dir" && npx --no-install openapi-ts >/dev/null)
}

require_node
sync_environment
ensure_node_modules

if ! $check; then
  echo "==> Dumping the OpenAPI schema into client/openapi.json and generating client/src/client"
  generate_in "$CLIENT_DIR"
  echo "==> Type-checking the client (tsc --noEmit)"
  (cd "$CLIENT_DIR" && npm run --silent typecheck)
  echo "==> Done: commit client/openapi.json and client/src/client with the change to the API"
  exit 0
fi

echo "==> Checking that client/openapi.json and client/src/client match the app"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$CLIENT_DIR/package.json" "$CLIENT_DIR/tsconfig.json" "$CLIENT_DIR/openapi-ts.config.ts" "$work/"
ln -s "$CLIENT_DIR/node_modules" "$work/node_modules"
generate_in "$work"

stale=()
for path in "${GENERATED[@]}"; do
  if ! diff -r -q "$CLIENT_DIR/$path" "$work/$path" >/dev/null 2>&1; then
    stale+=("client/$path")
  fi
done
if [ ${#stale[@]} -eq 0 ]; then
  echo "==> The client is up to date"
  exit 0
fi

{
  echo "error: the generated client is out of date: ${stale[*]} differ from what the app's"
  echo "       schema generates (the API changed without regenerating the client, or a"
  echo "       generated file was edited by hand). Run"
  echo "           bash scripts/generate-client.sh"
  echo "       and commit client/openapi.json and client/src/client."
  echo "--- committed vs. generated (first 60 lines) ---"
  for path in "${GENERATED[@]}"; do
    diff -r -u -N "$CLIENT_DIR/$path" "$work/$path" 2>&1 |
      sed -e "s|$CLIENT_DIR/|client/|g" -e "s|$work/|generated/|g" || true
  done | head -n 60 || true
} >&2
exit 1
