#!/usr/bin/env bash
# Invitations by email, end to end, on this machine: a local SMTP sink (aiosmtpd), the
# service (scripts/run.sh: the embedded PostgreSQL unless DATABASE_URL is set, the job
# worker in-process) pointed at it; the seeded superuser invites an email, the sink
# receives the link, accepting it creates a member who logs in, the same link again is 400.
#
#   bash scripts/demo-invitation.sh
#
# Free loopback ports are picked; both processes are stopped at the end, on failure too.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT_DIR"
sync_environment

py() { "$VENV_BIN/python" "$@"; }
free_port() { py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { py -c "import json,sys; print(json.load(sys.stdin)$1)"; }

smtp_port="$(free_port)"
api_port="$(free_port)"
work="$(mktemp -d)"
sink_pid=""
service_pid=""
cleanup() {
  set +e
  [ -n "$service_pid" ] && kill -TERM "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null
  [ -n "$sink_pid" ] && kill -TERM "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> SMTP sink on 127.0.0.1:$smtp_port"
"$VENV_BIN/python" -m aiosmtpd -n -l "127.0.0.1:$smtp_port" >"$work/sink.log" 2>&1 &
sink_pid=$!

echo "==> The service on 127.0.0.1:$api_port (scripts/run.sh; its log is shown on failure)"
SMTP_HOST=127.0.0.1 SMTP_PORT="$smtp_port" SMTP_TLS=false HOST=127.0.0.1 PORT="$api_port" \
  bash scripts/run.sh >"$work/service.log" 2>&1 &
service_pid=$!
api="http://127.0.0.1:$api_port/api/v1"
for _ in $(seq 120); do
  curl -sf "$api/utils/health-check/" >/dev/null 2>&1 && break
  kill -0 "$service_pid" 2>/dev/null || { cat "$work/service.log"; exit 1; }
  sleep 1
done

email="invited-$RANDOM$RANDOM@example.com"
password="a demo password"
settings() { PYTHONPATH=backend py -c "from app.core.config import settings; print(settings.$1)"; }
admin_email="$(settings FIRST_SUPERUSER)"
admin_password="$(settings FIRST_SUPERUSER_PASSWORD)"
token="$(curl -sf "$api/login/access-token" -d "username=$admin_email" --data-urlencode "password=$admin_password" | json '["access_token"]')"

echo "==> $admin_email invites $email"
curl -sf "$api/invitations/" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"email\": \"$email\", \"role\": \"member\"}"
echo
link=""
for _ in $(seq 60); do
  link="$(grep -a "^Accept the invitation: " "$work/sink.log" | tail -n 1 | sed 's/^Accept the invitation: //')" || true
  [ -n "$link" ] && break
  sleep 0.5
done
[ -n "$link" ] || { echo "error: no invitation reached the sink" >&2; cat "$work/service.log"; exit 1; }
echo "==> The sink received the link: $link"
invitation_token="${link##*token=}"

echo "==> Accepting it"
curl -sf "$api/invitations/accept" -H 'Content-Type: application/json' \
  -d "{\"token\": \"$invitation_token\", \"password\": \"$password\", \"full_name\": \"Demo\"}" |
  json '["token_type"]'
echo "==> $email logs in"
curl -sf "$api/login/access-token" -d "username=$email" --data-urlencode "password=$password" |
  json '["token_type"]'
echo "==> The same link again"
status="$(curl -s -o "$work/again.json" -w '%{http_code}' "$api/invitations/accept" \
  -H 'Content-Type: application/json' -d "{\"token\": \"$invitation_token\", \"password\": \"$password\"}")"
echo "$status $(cat "$work/again.json")"
[ "$status" = 400 ] || exit 1
echo "==> Done"
