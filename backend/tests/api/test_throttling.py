"""Throttling that fits real traffic: per email and per client address, trusted proxies,
signup and password recovery limits. (The per-email login rules are in test_login.py.)"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import settings
from app.main import app
from app.models import LoginThrottle
from tests.conftest import API
from tests.factories import PASSWORD, Factories, unique_email

WINDOW_SECONDS = settings.LOGIN_FAILURE_WINDOW_MINUTES * 60


@asynccontextmanager
async def client_at(host: str, forwarded_for: str | None = None) -> AsyncIterator[AsyncClient]:
    """A client whose socket peer is `host`; the `client` fixture's session override holds."""
    transport = ASGITransport(app=app, client=(host, 123))
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as http:
        yield http


async def login(http: AsyncClient, email: str, password: str = PASSWORD) -> Response:
    return await http.post(
        f"{API}/login/access-token", data={"username": email, "password": password}
    )


async def signup(http: AsyncClient, email: str) -> Response:
    body = {"email": email, "password": PASSWORD, "tenant_name": "Throttled"}
    return await http.post(f"{API}/users/signup", json=body)


async def recover(http: AsyncClient, email: str) -> Response:
    return await http.post(f"{API}/password-recovery/{email}")


def assert_throttled(response: Response) -> None:
    assert response.status_code == 429, response.text
    assert "detail" in response.json()
    assert 0 < int(response.headers["Retry-After"]) <= WINDOW_SECONDS + 1


async def failures(session: AsyncSession, key: str) -> int:
    session.expire_all()
    row = await session.get(LoginThrottle, key)
    return 0 if row is None else row.failures


# --- Logins from one address ---------------------------------------------------------------


async def test_twenty_failures_from_one_address_leave_other_users_logging_in(
    client: AsyncClient, make: Factories
) -> None:
    colleague = await make.signup()
    async with client_at("10.20.0.1") as office:
        for attempt in range(20):
            response = await login(office, unique_email("typo"), "not the password")
            assert response.status_code == 400, attempt
        assert (await login(office, colleague.email)).status_code == 200


async def test_the_address_limit_is_its_own_setting(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "LOGIN_MAX_FAILURES_PER_ADDRESS", 3)
    owner = await make.signup()
    async with client_at("10.20.1.1") as http:
        for _ in range(3):
            assert (await login(http, unique_email("guess"), "nope")).status_code == 400
        assert_throttled(await login(http, owner.email))
    async with client_at("10.20.1.2") as http:
        assert (await login(http, owner.email)).status_code == 200


async def test_a_correct_login_resets_only_its_own_email(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    first, second = await make.signup(), await make.signup()
    async with client_at("10.20.2.1") as http:
        for _ in range(5):
            assert (await login(http, second.email, "not the password")).status_code == 400
        assert (await login(http, first.email, "not the password")).status_code == 400
        assert (await login(http, first.email)).status_code == 200
    assert await failures(session, f"email:{first.email}") == 0
    assert await failures(session, f"email:{second.email}") == 5
    assert await failures(session, "ip:10.20.2.1") == 6


# --- Trusted proxies -----------------------------------------------------------------------


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch) -> "TrustProxies":
    return TrustProxies(monkeypatch)


class TrustProxies:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def __call__(self, value: str) -> None:
        """Set FORWARDED_ALLOW_IPS and let the app build its middleware again (undone
        after the test)."""
        self.monkeypatch.setattr(settings, "FORWARDED_ALLOW_IPS", value)
        self.monkeypatch.setattr(app, "middleware_stack", None)


async def test_forwarded_for_is_ignored_without_a_trusted_proxy(
    client: AsyncClient, make: Factories, session: AsyncSession, trust: TrustProxies
) -> None:
    trust("")
    async with client_at("10.20.3.1", forwarded_for="192.0.2.7") as http:
        assert (await login(http, unique_email("x"), "nope")).status_code == 400
    assert await failures(session, "ip:10.20.3.1") == 1
    assert await failures(session, "ip:192.0.2.7") == 0


async def test_a_trusted_proxy_names_the_client(
    client: AsyncClient, make: Factories, session: AsyncSession, trust: TrustProxies
) -> None:
    trust("10.20.4.0/24, 10.99.0.1")
    # Through the proxy: the address it names (the rightmost one it did not add itself).
    async with client_at("10.20.4.9", forwarded_for="203.0.113.1, 198.51.100.4") as http:
        assert (await login(http, unique_email("x"), "nope")).status_code == 400
    assert await failures(session, "ip:198.51.100.4") == 1
    assert await failures(session, "ip:203.0.113.1") == 0
    assert await failures(session, "ip:10.20.4.9") == 0
    # Straight from an untrusted address, the header is a lie and is ignored.
    async with client_at("10.20.5.1", forwarded_for="198.51.100.4") as http:
        assert (await login(http, unique_email("x"), "nope")).status_code == 400
    assert await failures(session, "ip:10.20.5.1") == 1
    assert await failures(session, "ip:198.51.100.4") == 1


def test_forwarded_allow_ips_refuses_what_is_not_an_address() -> None:
    from pydantic import ValidationError

    from app.core.config import Settings

    assert Settings(FORWARDED_ALLOW_IPS="10.0.0.1, 172.16.0.0/12,::1").trusted_proxies == [
        "10.0.0.1",
        "172.16.0.0/12",
        "::1",
    ]
    assert Settings(FORWARDED_ALLOW_IPS="*").trusted_proxies == ["*"]
    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(FORWARDED_ALLOW_IPS="10.0.0.1,proxy.example.com")


# --- Signup and password recovery ----------------------------------------------------------


async def test_signups_are_limited_per_email(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "SIGNUP_MAX_PER_EMAIL", 2)
    email = unique_email("again")
    async with client_at("10.20.6.1") as http:
        assert (await signup(http, email)).status_code == 201
        assert (await signup(http, email.upper())).status_code == 409
        assert_throttled(await signup(http, email))
        assert (await signup(http, unique_email("other"))).status_code == 201
    async with client_at("10.20.6.2") as http:
        assert_throttled(await signup(http, email))


async def test_signups_are_limited_per_address(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "SIGNUP_MAX_PER_ADDRESS", 3)
    async with client_at("10.20.7.1") as http:
        for _ in range(3):
            assert (await signup(http, unique_email("bulk"))).status_code == 201
        email = unique_email("late")
        assert_throttled(await signup(http, email))
    async with client_at("10.20.7.2") as http:
        assert (await signup(http, email)).status_code == 201


async def test_password_recovery_is_limited_per_email_and_per_address(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "PASSWORD_RECOVERY_MAX_PER_EMAIL", 2)
    monkeypatch.setattr(settings, "PASSWORD_RECOVERY_MAX_PER_ADDRESS", 4)
    owner = await make.signup()
    async with client_at("10.20.8.1") as http:
        assert (await recover(http, owner.email)).status_code == 200
        assert (await recover(http, owner.email.upper())).status_code == 200
        assert_throttled(await recover(http, owner.email))
        assert (await recover(http, unique_email("nobody"))).status_code == 200
        # Refused attempts count too: this is the fifth from this address, over its four.
        assert_throttled(await recover(http, unique_email("nobody")))
    async with client_at("10.20.8.2") as http:
        assert_throttled(await recover(http, owner.email))
        assert (await recover(http, unique_email("nobody"))).status_code == 200
    # A login is not a recovery: the owner still signs in.
    assert (await login(client, owner.email)).status_code == 200
