"""Operations through the HTTP API: request ids, access logs, security headers, docs, mail."""

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from sqlmodel.ext.asyncio.session import AsyncSession

from app import jobs
from app.api.deps import get_session
from app.core.logs import ConsoleFormatter, JSONFormatter
from app.main import app
from tests.conftest import API
from tests.factories import PASSWORD, Factories
from tests.mail import Outbox

ROOT_DIR = Path(__file__).resolve().parents[3]
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "app.access"]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


async def test_a_request_without_an_id_gets_a_new_one(client: AsyncClient) -> None:
    first = await client.get(f"{API}/utils/health-check/")
    second = await client.get(f"{API}/utils/health-check/")
    assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "request_id",
    ["abc-123", "0af7651916cd43dd8448eb211c80319c", "Root=1-5759e988-bd862e3f:a.b_c/+=", "x" * 128],
)
async def test_a_valid_request_id_is_kept(client: AsyncClient, request_id: str) -> None:
    response = await client.get(f"{API}/utils/health-check/", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [b"x" * 129, b"", b"has space", b"<script>", b'quote"', b"caf\xc3\xa9", b"a;b", b"%0a"],
)
async def test_an_invalid_request_id_is_replaced(
    client: AsyncClient, logs: pytest.LogCaptureFixture, request_id: bytes
) -> None:
    response = await client.get(f"{API}/utils/health-check/", headers={"X-Request-ID": request_id})
    echoed = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(echoed)
    [record] = access_records(logs)
    assert record.request_id == echoed


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/utils/health-check/", 200),
        ("GET", "/users/me", 401),
        ("GET", "/no/such/route", 404),
        ("PUT", "/utils/health-check/", 405),
        ("GET", "/projects/?limit=0", 401),
        ("POST", "/users/signup", 422),
    ],
)
async def test_every_response_echoes_the_id_and_carries_the_security_headers(
    client: AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(
        method, f"{API}{path}", headers={"X-Request-ID": "trace-42"}, json={}
    )
    assert response.status_code == status
    assert response.headers["x-request-id"] == "trace-42"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "strict-transport-security" not in response.headers  # SERVED_OVER_HTTPS is off
    assert "server" not in response.headers


async def test_a_cors_preflight_carries_them_too(client: AsyncClient) -> None:
    response = await client.options(
        f"{API}/users/me",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "X-Request-ID": "preflight-1",
        },
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "preflight-1"
    assert response.headers["x-frame-options"] == "DENY"


async def test_one_json_access_line_per_request_with_the_callers_ids(
    client: AsyncClient, make: Factories, logs: pytest.LogCaptureFixture
) -> None:
    owner = await make.signup()
    logs.clear()
    response = await client.get(
        f"{API}/users/me", headers={**owner.headers, "X-Request-ID": "me-1"}
    )
    assert response.status_code == 200

    [record] = access_records(logs)
    line = JSONFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "me-1"
    assert entry["method"] == "GET"
    assert entry["route"] == f"{API}/users/me"
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)
    assert entry["user_id"] == owner.id
    assert entry["tenant_id"] == owner.tenant_id
    assert entry["level"] == "INFO"
    assert entry["logger"] == "app.access"
    assert owner.access_token not in line

    console = ConsoleFormatter().format(record)
    assert console.startswith(f"INFO app.access: GET {API}/users/me 200 ")
    assert f"request_id=me-1 user_id={owner.id} tenant_id={owner.tenant_id}" in console


async def test_the_log_line_names_the_route_template_not_the_path(
    client: AsyncClient, make: Factories, logs: pytest.LogCaptureFixture
) -> None:
    email = "person@example.com"
    response = await client.post(f"{API}/password-recovery/{email}")
    assert response.status_code == 200
    [record] = access_records(logs)
    assert record.route == f"{API}/password-recovery/{{email}}"
    assert email not in JSONFormatter().format(record)


async def test_logs_never_hold_passwords_or_tokens(
    client: AsyncClient, make: Factories, logs: pytest.LogCaptureFixture
) -> None:
    owner = await make.signup()
    logs.clear()
    login = await client.post(
        f"{API}/login/access-token", data={"username": owner.email, "password": PASSWORD}
    )
    assert login.status_code == 200
    refreshed = await client.post(
        f"{API}/login/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200
    lines = "\n".join(JSONFormatter().format(record) for record in logs.records)
    assert len(access_records(logs)) == 2
    for secret in (PASSWORD, login.json()["access_token"], login.json()["refresh_token"]):
        assert secret not in lines


async def test_an_unhandled_error_is_a_json_500_logged_with_the_request_id(
    session: AsyncSession, logs: pytest.LogCaptureFixture
) -> None:
    async def broken_session() -> AsyncIterator[AsyncSession]:
        raise RuntimeError("boom")
        yield session  # pragma: no cover

    app.dependency_overrides[get_session] = broken_session
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.get(f"{API}/utils/ready/", headers={"X-Request-ID": "err-1"})
    finally:
        app.dependency_overrides.pop(get_session, None)

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert response.headers["x-request-id"] == "err-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    [error] = [record for record in logs.records if record.name == "app.error"]
    assert error.request_id == "err-1"
    assert error.exc_info is not None
    assert "RuntimeError: boom" in JSONFormatter().format(error)
    [access] = access_records(logs)
    assert (access.status, access.request_id) == (500, "err-1")


async def test_local_mail_without_smtp_is_logged_whole_with_its_link(
    client: AsyncClient, make: Factories, logs: pytest.LogCaptureFixture, outbox: Outbox
) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/password-recovery/{owner.email}", headers={"X-Request-ID": "mail-1"}
    )
    assert response.status_code == 200
    [job] = await outbox.sent()
    logs.clear()
    await jobs.deliver_email(job)  # what the worker does with it
    [mail] = [record for record in logs.records if record.name == "app.emails"]
    text = mail.getMessage()
    assert f"Password recovery for {owner.email}" in text
    assert re.search(r"http://localhost:5173/reset-password\?token=\S+", text)
    assert mail.request_id == "mail-1"  # background work keeps the request's id


def asset_urls(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", page)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_docs_pages_name_no_host_but_the_service(client: AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    page = response.text
    # No absolute URL at all: every asset is a path on this service.
    assert re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+", page) == []
    assert "fonts.googleapis" not in page
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for src in re.findall(r"""(?:src|href)=["']([^"']+)["']""", page):
        assert src.startswith("/"), src
        asset = await client.get(src)
        assert asset.status_code == 200, src


async def test_swagger_ui_asks_no_online_validator(client: AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert '"validatorUrl": null' in page
    assert f"url: '{API}/openapi.json'" in page
    schema = await client.get(f"{API}/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["paths"]


PRODUCTION_PROBE = """
import asyncio, json
from httpx import ASGITransport, AsyncClient
from app.main import app

async def main():
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        paths = ["/docs", "/redoc", "/api/v1/openapi.json", "/docs-static/swagger-ui.css"]
        statuses = {path: (await http.get(path)).status_code for path in paths}
        health = await http.get("/api/v1/utils/health-check/")
    print(json.dumps({"statuses": statuses, "headers": dict(health.headers),
                      "schema_paths": len(app.openapi()["paths"])}))

asyncio.run(main())
"""


def run_probe(probe: str = PRODUCTION_PROBE, **env: str) -> tuple[dict[str, object], str]:
    """Import the app in a fresh process with these settings (they are read at import)."""
    environ = {
        **os.environ,
        "ENVIRONMENT": "production",
        "SECRET_KEY": "x" * 32,
        "FIRST_SUPERUSER_PASSWORD": "a-real-password",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT_DIR / "backend",
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_production_serves_no_docs_and_logs_json_with_hsts_when_told() -> None:
    result, stderr = run_probe(SERVED_OVER_HTTPS="true")
    assert result["statuses"] == {
        "/docs": 404,
        "/redoc": 404,
        "/api/v1/openapi.json": 404,
        "/docs-static/swagger-ui.css": 404,
    }
    headers = result["headers"]
    assert isinstance(headers, dict)
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert headers["x-frame-options"] == "DENY"
    # The client generator still gets the schema from app.openapi().
    assert isinstance(result["schema_paths"], int) and result["schema_paths"] > 10
    lines = [json.loads(line) for line in stderr.splitlines() if '"app.access"' in line]
    assert len(lines) == 5  # one per request
    entry = lines[-1]
    assert entry["route"] == "/api/v1/utils/health-check/"
    assert entry["request_id"] == headers["x-request-id"]


def test_api_docs_setting_turns_docs_on_in_production() -> None:
    result, _ = run_probe(API_DOCS="true")
    statuses = result["statuses"]
    assert isinstance(statuses, dict)
    assert set(statuses.values()) == {200}


SENTRY_PROBE = """
import json, sentry_sdk
from app.main import app
client = sentry_sdk.get_client()
print(json.dumps({"active": client.is_active(), "integrations": sorted(client.integrations)}))
"""


@pytest.mark.parametrize(("environment", "active"), [("staging", True), ("local", False)])
def test_sentry_reports_errors_when_a_dsn_is_set_outside_local(
    environment: str, active: bool
) -> None:
    # A loopback DSN: nothing is sent unless an error happens, and nothing listens there.
    result, _ = run_probe(
        SENTRY_PROBE, ENVIRONMENT=environment, SENTRY_DSN="http://key@127.0.0.1:9/1"
    )
    assert result["active"] is active
    integrations = result["integrations"]
    assert isinstance(integrations, list)
    if active:
        assert {"fastapi", "starlette"} <= set(integrations)


def test_work_done_later_logs_under_the_id_of_its_request(
    logs: pytest.LogCaptureFixture,
) -> None:
    from app.core.logs import current_request_id, request_context

    assert current_request_id() is None
    with request_context("job-of-req-7"):
        logging.getLogger("app.jobs").info("sending")
        assert current_request_id() == "job-of-req-7"
    assert current_request_id() is None
    [record] = [record for record in logs.records if record.name == "app.jobs"]
    assert record.request_id == "job-of-req-7"
