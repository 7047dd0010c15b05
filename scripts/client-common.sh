# Shared by generate-client.sh and contract-test.sh: source it, don't run it (after common.sh).
# Checks for Node.js and installs the TypeScript client's locked dependencies.

CLIENT_DIR="$ROOT_DIR/client"

require_node() {
  local tool
  for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "error: '$tool' was not found: the TypeScript client needs Node.js 20.19+ and npm" >&2
      echo "       (https://nodejs.org/ or your package manager), then run this script again." >&2
      exit 1
    fi
  done
  if ! node -e 'const [major, minor] = process.versions.node.split(".").map(Number);
      process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1)'; then
    echo "error: Node.js $(node --version) is too old: the TypeScript client needs 20.19+" >&2
    exit 1
  fi
}

# npm ci when client/node_modules is missing or older than package-lock.json.
ensure_node_modules() {
  local installed="$CLIENT_DIR/node_modules/.package-lock.json"
  if [ ! -f "$installed" ] || [ "$CLIENT_DIR/package-lock.json" -nt "$installed" ]; then
    echo "==> Installing the client's locked dependencies (npm ci)"
    (cd "$CLIENT_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
