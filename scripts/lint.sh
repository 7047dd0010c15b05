#!/usr/bin/env bash
# Static checks: ruff (lint and format) on backend/ and scripts/, mypy --strict on backend/app,
# no merge conflict markers, the compose files, the GitHub workflows and the Dockerfile.
# Every check runs; the script exits 1 if any failed. Uses the synced .venv (synced here
# first when it is missing).
set -uo pipefail
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT_DIR"

venv_ready() { [ -x .venv/bin/ruff ] && [ -x .venv/bin/mypy ] && [ -x .venv/bin/pre-commit ]; }
if ! venv_ready; then
  # shellcheck source=scripts/common.sh
  source scripts/common.sh
  (set -e; sync_environment)
  venv_ready || { echo "The environment could not be synced (.venv)" >&2; exit 1; }
fi
BIN="$ROOT_DIR/.venv/bin"

failed=()
check() {
  local name="$1"
  shift
  echo "==> $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

check "ruff check" "$BIN/ruff" check backend scripts
check "ruff format" "$BIN/ruff" format --check backend scripts
check "mypy --strict backend/app" "$BIN/mypy" --strict backend/app

compose_files=(-f docker-compose.yml -f docker-compose.override.yml)
# `config` needs no running engine. The files also validate with compose v1 (Debian's
# docker-compose 1.29), so keep v2-only keys such as depends_on.restart out of them.
if docker compose version >/dev/null 2>&1; then
  check "docker compose config" docker compose "${compose_files[@]}" config -q
elif command -v docker-compose >/dev/null 2>&1; then
  check "docker-compose config" docker-compose "${compose_files[@]}" config -q
else
  echo "==> compose validation skipped: no docker compose"
fi

if [ -x "$BIN/actionlint" ]; then
  check "actionlint" "$BIN/actionlint"
fi
# A merge that left its conflict markers once reached main in the README.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  check "no merge conflict markers" bash -c '! git grep -n -I -E "^(<<<<<<<|>>>>>>>)( |\$)"'
fi
check "pre-commit config" "$BIN/pre-commit" validate-config .pre-commit-config.yaml
# Compose services and start-up order, workflows, dependabot.yml, Dockerfile sources.
check "config files" "$BIN/python" scripts/check_config_files.py

if [ "${#failed[@]}" -gt 0 ]; then
  echo "Lint failed: ${failed[*]}" >&2
  exit 1
fi
echo "Lint passed"
