#!/usr/bin/env bash
# Run every check: lint, the Python test suite (with the 90 % coverage gate), the
# schemathesis fuzz run and the TypeScript client's drift check and contract test. Installs
# what is missing; starts a throwaway embedded PostgreSQL when DATABASE_URL is unset.
#
# With arguments (`bash scripts/test.sh -k login -x`) it is a subset run: the arguments go to
# pytest, which runs without coverage (a subset cannot reach the gate), and lint, the fuzz
# run and the client checks are skipped. It passes when the selected tests pass.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"

sync_environment
if ! database_configured; then
  scratch="$(mktemp -d)"
  start_embedded_postgres "$scratch/postgres"
  trap 'stop_embedded_postgres; rm -rf "$scratch"' EXIT
fi

failed=()

subset=$(($# > 0))

if [ "$subset" -eq 1 ]; then
  echo "==> pytest $* (a subset: no coverage gate; lint, fuzz and client checks skipped)"
  status=0
  "$VENV_BIN/pytest" "$@" || status=$?
  if [ "$status" -eq 5 ]; then
    echo "pytest selected no tests: that is a failure" >&2
  fi
  exit "$status"
fi

echo "==> lint"
bash scripts/lint.sh || failed+=("lint")

echo "==> pytest"
status=0
"$VENV_BIN/pytest" --cov --cov-report=term || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  failed+=("pytest (no tests)")
elif [ "$status" -ne 0 ]; then
  failed+=("pytest")
fi

echo "==> fuzz: schemathesis against the OpenAPI schema, in-process"
# Its own pytest run: schemathesis serves the app from an event loop of its own.
"$VENV_BIN/pytest" backend/fuzz -q -p no:cacheprovider || failed+=("fuzz")

echo "==> TypeScript client: drift check"
bash scripts/generate-client.sh --check || failed+=("client drift")

echo "==> TypeScript client: contract test against the live service"
bash scripts/contract-test.sh || failed+=("contract test")

if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "All checks passed"
