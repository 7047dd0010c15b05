"""Authentication: sign-in, tokens (access, refresh, logout), password recovery, throttling."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from httpx import ASGITransport, AsyncClient, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import security
from app.core.config import settings
from app.core.security import create_access_token, hash_token
from app.main import app
from app.models import LoginThrottle, PasswordResetToken, RefreshToken, utc_now
from tests.conftest import API
from tests.factories import (
    PASSWORD,
    USER_FIELDS,
    Actor,
    Factories,
    bearer,
    unique_email,
)
from tests.mail import Outbox

INCORRECT = {"detail": "Incorrect email or password"}
INACTIVE = {"detail": "Inactive user"}
INVALID_TOKEN = {"detail": "Invalid token"}
RECOVERY = {"message": "If that email is registered, a password recovery email is on its way"}
NEW_PASSWORD = "a brand new password"


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> Response:
    return await client.post(
        f"{API}/login/access-token", data={"username": email, "password": password}
    )


async def refresh(client: AsyncClient, refresh_token: str) -> Response:
    return await client.post(f"{API}/login/refresh", json={"refresh_token": refresh_token})


async def whoami(client: AsyncClient, access_token: str) -> Response:
    return await client.post(f"{API}/login/test-token", headers=bearer(access_token))


def claims(access_token: str) -> dict[str, Any]:
    return dict(jwt.decode(access_token, options={"verify_signature": False}))


def assert_unauthorized(response: Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"


@asynccontextmanager
async def client_at(host: str) -> AsyncIterator[AsyncClient]:
    """A client calling from `host`; the `client` fixture's session override stays in force."""
    transport = ASGITransport(app=app, client=(host, 123))
    async with AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


# --- Sign-in -------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_pair(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await login(client, owner.email)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "refresh_token", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    payload = claims(body["access_token"])
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    assert payload["sub"] == owner.id
    assert payload["tid"] == owner.tenant_id
    assert payload["type"] == "access"
    uuid.UUID(payload["sid"])
    assert payload["jti"]
    assert payload["exp"] - payload["iat"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    me = await whoami(client, body["access_token"])
    assert me.status_code == 200
    assert set(me.json()) == USER_FIELDS
    assert me.json()["id"] == owner.id


async def test_each_login_is_a_separate_session(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    first = (await login(client, owner.email)).json()
    second = (await login(client, owner.email)).json()
    assert claims(first["access_token"])["sid"] != claims(second["access_token"])["sid"]
    assert first["refresh_token"] != second["refresh_token"]


async def test_login_email_is_case_insensitive(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await login(client, f"  {owner.email.upper()} ")
    assert response.status_code == 200, response.text


async def test_wrong_password_and_unknown_email_answer_alike(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    wrong_password = await login(client, owner.email, "not the password")
    unknown_email = await login(client, unique_email("nobody"), PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 400
    assert wrong_password.json() == unknown_email.json() == INCORRECT
    assert wrong_password.headers.get("WWW-Authenticate") is None


async def test_unknown_email_costs_a_verification_like_a_wrong_password(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: each failed login verifies the password once, against a hash of
    the scheme and cost in force, whether the email belongs to an account or not."""
    owner = await make.signup()
    checked: list[str] = []
    verify = security._verify_and_update

    def counting_verify(password: str, hashed: str) -> tuple[bool, str | None]:
        checked.append(hashed)
        return verify(password, hashed)

    monkeypatch.setattr(security, "_verify_and_update", counting_verify)
    for email in (owner.email, unique_email("nobody"), unique_email("nobody")):
        checked.clear()
        response = await login(client, email, "not the password")
        assert response.json() == INCORRECT
        assert len(checked) == 1, (email, checked)
        [hashed] = checked
        assert security.pwd_context.identify(hashed) == "argon2"
        assert not security.pwd_context.needs_update(hashed)  # the cost now in force


async def test_an_email_longer_than_any_account_is_an_incorrect_login(
    client: AsyncClient,
) -> None:
    for local_part in ("x" * 300, "x" * 1000):
        response = await login(client, local_part + "@example.com", "y" * 2000)
        assert response.status_code == 400, response.text
        assert response.json() == INCORRECT


async def test_inactive_user_cannot_log_in(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/users/",
        json={"email": unique_email(), "password": PASSWORD, "is_active": False},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    inactive = response.json()
    response = await login(client, inactive["email"])
    assert response.status_code == 400
    assert response.json() == INACTIVE
    # The wrong password gives nothing away about the account either.
    response = await login(client, inactive["email"], "not the password")
    assert response.json() == INCORRECT


async def test_login_form_is_validated(client: AsyncClient) -> None:
    response = await client.post(f"{API}/login/access-token", data={"username": "a@b.co"})
    assert response.status_code == 422
    response = await client.post(
        f"{API}/login/access-token", json={"username": "a@b.co", "password": PASSWORD}
    )
    assert response.status_code == 422
    response = await client.post(
        f"{API}/login/access-token",
        data={"username": "a@b.co", "password": PASSWORD, "grant_type": "client_credentials"},
    )
    assert response.status_code == 422


# --- Access tokens ---------------------------------------------------------------------------


def sign(payload: dict[str, Any], key: str = settings.SECRET_KEY, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def valid_payload(actor: Actor, **changes: Any) -> dict[str, Any]:
    now = utc_now()
    payload = {
        "sub": actor.id,
        "tid": actor.tenant_id,
        "sid": claims(actor.access_token)["sid"],
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "test",
        "type": "access",
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


async def test_a_hand_made_token_with_valid_claims_is_accepted(
    client: AsyncClient, make: Factories
) -> None:
    """The control for the rejections below: only the one changed claim makes them fail."""
    owner = await make.signup()
    response = await whoami(client, sign(valid_payload(owner)))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == owner.id


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"},
    ],
    ids=["none", "empty-bearer", "blank-bearer", "basic", "garbage", "three-parts", "bad-sig"],
)
async def test_missing_or_malformed_token_is_401(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in (("POST", "/login/test-token"), ("GET", "/users/me")):
        response = await client.request(method, f"{API}{path}", headers=headers)
        assert_unauthorized(response)


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "wrong-key",
        "alg-none",
        "type-refresh",
        "no-type",
        "no-exp",
        "no-sub",
        "no-sid",
        "no-tid",
        "no-iat",
        "sub-not-uuid",
        "unknown-user",
        "unknown-login",
        "other-tenant",
        "issued-in-future",
        "not-before-future",
        "exp-not-a-number",
        "audience",
        "crit-header",
        "payload-not-object",
    ],
)
async def test_forged_or_stale_token_is_401(
    client: AsyncClient, make: Factories, case: str
) -> None:
    owner = await make.signup()
    other = await make.signup()
    past = utc_now() - timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES + 1)
    payloads: dict[str, Any] = {
        "expired": lambda: sign(valid_payload(owner, iat=past, exp=past + timedelta(seconds=1))),
        "wrong-key": lambda: sign(valid_payload(owner), key="another-secret-key-of-32-bytes!!"),
        "alg-none": lambda: jwt.encode(valid_payload(owner), None, algorithm="none"),
        "type-refresh": lambda: sign(valid_payload(owner, type="refresh")),
        "no-type": lambda: sign({**valid_payload(owner), "type": None}),
        "no-exp": lambda: sign(valid_payload(owner, exp=None)),
        "no-sub": lambda: sign(valid_payload(owner, sub=None)),
        "no-sid": lambda: sign(valid_payload(owner, sid=None)),
        "no-tid": lambda: sign(valid_payload(owner, tid=None)),
        "no-iat": lambda: sign(valid_payload(owner, iat=None)),
        "sub-not-uuid": lambda: sign(valid_payload(owner, sub="owner")),
        "unknown-user": lambda: sign(valid_payload(owner, sub=str(uuid.uuid4()))),
        "unknown-login": lambda: sign(valid_payload(owner, sid=str(uuid.uuid4()))),
        "other-tenant": lambda: sign(valid_payload(owner, tid=other.tenant_id)),
        # The checks PyJWT made before the key was prepared once (core.security).
        "issued-in-future": lambda: sign(valid_payload(owner, iat=utc_now() + timedelta(hours=1))),
        "not-before-future": lambda: sign(valid_payload(owner, nbf=utc_now() + timedelta(hours=1))),
        "exp-not-a-number": lambda: sign(valid_payload(owner, exp="tomorrow")),
        "audience": lambda: sign(valid_payload(owner, aud="somebody-else")),
        "crit-header": lambda: jwt.encode(
            valid_payload(owner), settings.SECRET_KEY, "HS256", headers={"crit": ["exp"]}
        ),
        "payload-not-object": lambda: jwt.api_jws.encode(
            b"[1, 2]", settings.SECRET_KEY, algorithm="HS256"
        ),
    }
    token = payloads[case]()
    assert_unauthorized(await whoami(client, token))
    assert_unauthorized(await client.get(f"{API}/users/me", headers=bearer(token)))


async def test_expired_token_made_by_the_app_is_401(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    sid = uuid.UUID(claims(owner.access_token)["sid"])
    past = utc_now() - timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES, seconds=5)
    token = create_access_token(
        user_id=uuid.UUID(owner.id), tenant_id=uuid.UUID(owner.tenant_id), login_id=sid, now=past
    )
    assert_unauthorized(await whoami(client, token))
    fresh = create_access_token(
        user_id=uuid.UUID(owner.id), tenant_id=uuid.UUID(owner.tenant_id), login_id=sid
    )
    assert (await whoami(client, fresh)).status_code == 200


async def test_a_token_accepted_before_is_refused_once_it_expires(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verified tokens are remembered (core/security.py); their lifetime still counts."""
    owner = await make.signup()
    assert (await whoami(client, owner.access_token)).status_code == 200
    expires = claims(owner.access_token)["exp"]
    monkeypatch.setattr(security, "time", SimpleNamespace(time=lambda: expires + 1.0))
    assert_unauthorized(await whoami(client, owner.access_token))
    monkeypatch.setattr(security, "time", SimpleNamespace(time=lambda: expires - 1.0))
    assert (await whoami(client, owner.access_token)).status_code == 200


async def test_token_of_a_user_deactivated_after_issue_is_401(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    member = await make.user(owner)
    assert (await whoami(client, member.access_token)).status_code == 200
    response = await client.patch(
        f"{API}/users/{member.id}", json={"is_active": False}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert_unauthorized(await whoami(client, member.access_token))
    assert_unauthorized(await refresh(client, member.refresh_token))


async def test_token_of_a_user_deleted_after_issue_is_401(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    member = await make.user(owner)
    response = await client.delete(f"{API}/users/{member.id}", headers=owner.headers)
    assert response.status_code == 204
    assert_unauthorized(await whoami(client, member.access_token))
    assert_unauthorized(await refresh(client, member.refresh_token))


async def test_test_token_returns_the_bearer(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    for actor in (tenant.owner, tenant.admin, tenant.member):
        response = await whoami(client, actor.access_token)
        assert response.status_code == 200
        assert response.json() == actor.user


# --- Refresh tokens --------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await refresh(client, owner.refresh_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "refresh_token", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["refresh_token"] != owner.refresh_token
    assert claims(body["access_token"])["sid"] == claims(owner.access_token)["sid"]
    assert (await whoami(client, body["access_token"])).status_code == 200
    # The next rotation works from the new token.
    response = await refresh(client, body["refresh_token"])
    assert response.status_code == 200, response.text


async def test_a_rotated_refresh_token_is_401(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    assert (await refresh(client, owner.refresh_token)).status_code == 200
    assert_unauthorized(await refresh(client, owner.refresh_token))


async def test_reusing_a_rotated_refresh_token_revokes_the_login(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    other_login = (await login(client, owner.email)).json()
    rotated = (await refresh(client, owner.refresh_token)).json()
    assert (await whoami(client, rotated["access_token"])).status_code == 200

    assert_unauthorized(await refresh(client, owner.refresh_token))  # the reuse

    assert_unauthorized(await refresh(client, rotated["refresh_token"]))
    assert_unauthorized(await whoami(client, rotated["access_token"]))
    assert_unauthorized(await whoami(client, owner.access_token))
    # The user's other login is untouched.
    assert (await whoami(client, other_login["access_token"])).status_code == 200
    assert (await refresh(client, other_login["refresh_token"])).status_code == 200


@pytest.mark.parametrize("token", ["unknown-token", "x" * 512])
async def test_an_unknown_refresh_token_is_401(client: AsyncClient, token: str) -> None:
    assert_unauthorized(await refresh(client, token))


async def test_refresh_body_is_validated(client: AsyncClient) -> None:
    for body in ({}, {"refresh_token": ""}, {"refresh_token": "x" * 513}):
        response = await client.post(f"{API}/login/refresh", json=body)
        assert response.status_code == 422, body


async def test_an_expired_refresh_token_is_401(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup()
    await session.exec(
        sa.update(RefreshToken)
        .where(col(RefreshToken.token_hash) == hash_token(owner.refresh_token))
        .values(expires_at=utc_now() - timedelta(seconds=1))
    )
    assert_unauthorized(await refresh(client, owner.refresh_token))


# --- Logout ----------------------------------------------------------------------------------


async def test_logout_revokes_only_that_login(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    other_login = (await login(client, owner.email)).json()
    response = await client.post(f"{API}/logout", headers=owner.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_unauthorized(await whoami(client, owner.access_token))
    assert_unauthorized(await refresh(client, owner.refresh_token))
    assert_unauthorized(await client.post(f"{API}/logout", headers=owner.headers))
    assert (await whoami(client, other_login["access_token"])).status_code == 200
    assert (await refresh(client, other_login["refresh_token"])).status_code == 200


async def test_logout_also_revokes_access_tokens_issued_by_refresh(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    rotated = (await refresh(client, owner.refresh_token)).json()
    response = await client.post(f"{API}/logout", headers=bearer(rotated["access_token"]))
    assert response.status_code == 204
    assert_unauthorized(await whoami(client, owner.access_token))
    assert_unauthorized(await refresh(client, rotated["refresh_token"]))


async def test_logout_needs_a_token(client: AsyncClient) -> None:
    assert_unauthorized(await client.post(f"{API}/logout"))


# --- Password change and reset revoke every login -----------------------------------------


async def test_password_change_revokes_all_logins(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    other_login = (await login(client, owner.email)).json()
    response = await client.patch(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Password updated successfully"}
    this_login = {"access_token": owner.access_token, "refresh_token": owner.refresh_token}
    for tokens in (this_login, other_login):
        assert_unauthorized(await whoami(client, tokens["access_token"]))
        assert_unauthorized(await refresh(client, tokens["refresh_token"]))
    assert (await login(client, owner.email)).json() == INCORRECT
    assert (await login(client, owner.email, NEW_PASSWORD)).status_code == 200


async def recover(client: AsyncClient, email: str) -> Response:
    return await client.post(f"{API}/password-recovery/{email}")


async def reset(client: AsyncClient, token: str, new_password: str = NEW_PASSWORD) -> Response:
    return await client.post(
        f"{API}/reset-password/", json={"token": token, "new_password": new_password}
    )


async def test_password_recovery_answers_the_same_for_any_email(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    known = await recover(client, owner.email)
    unknown = await recover(client, unique_email("nobody"))
    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json() == RECOVERY
    for odd in ("not-an-email", "x" * 300 + "@example.com"):
        response = await recover(client, odd)
        assert response.status_code == 200, odd
        assert response.json() == RECOVERY
    assert [message.email_to for message in await outbox.sent()] == [owner.email]


async def test_password_recovery_sends_nothing_to_an_inactive_user(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/users/",
        json={"email": unique_email(), "password": PASSWORD, "is_active": False},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    inactive_email = response.json()["email"]
    response = await recover(client, inactive_email)
    assert response.status_code == 200
    assert response.json() == RECOVERY
    assert await outbox.sent() == []


async def test_password_reset_sets_the_password_and_revokes_all_logins(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    other_login = (await login(client, owner.email)).json()
    assert (await recover(client, owner.email.upper())).status_code == 200
    token = await outbox.reset_token()
    assert owner.email in (await outbox.sent())[0].subject
    response = await reset(client, token)
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Password updated successfully"}
    assert_unauthorized(await whoami(client, owner.access_token))
    assert_unauthorized(await whoami(client, other_login["access_token"]))
    assert_unauthorized(await refresh(client, other_login["refresh_token"]))
    assert (await login(client, owner.email)).json() == INCORRECT
    assert (await login(client, owner.email, NEW_PASSWORD)).status_code == 200


async def test_a_reset_token_works_once(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    await recover(client, owner.email)
    token = await outbox.reset_token()
    assert (await reset(client, token)).status_code == 200
    response = await reset(client, token, "yet another password")
    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN
    assert (await login(client, owner.email, NEW_PASSWORD)).status_code == 200


async def test_a_newer_reset_token_supersedes_the_older(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    await recover(client, owner.email)
    await recover(client, owner.email)
    first, second = await outbox.reset_token(0), await outbox.reset_token(1)
    assert first != second
    response = await reset(client, first)
    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN
    assert (await reset(client, second)).status_code == 200


async def test_an_expired_reset_token_is_invalid(
    client: AsyncClient, make: Factories, outbox: Outbox, session: AsyncSession
) -> None:
    owner = await make.signup()
    await recover(client, owner.email)
    await session.exec(
        sa.update(PasswordResetToken)
        .where(col(PasswordResetToken.user_id) == uuid.UUID(owner.id))
        .values(expires_at=utc_now() - timedelta(seconds=1))
    )
    response = await reset(client, await outbox.reset_token())
    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN
    assert (await login(client, owner.email)).status_code == 200


@pytest.mark.parametrize("token", ["forged", "preview-token", "x" * 512])
async def test_a_forged_reset_token_is_invalid(
    client: AsyncClient, make: Factories, token: str
) -> None:
    owner = await make.signup()
    response = await reset(client, token)
    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN
    assert (await login(client, owner.email)).status_code == 200


async def test_a_reset_token_of_a_since_deactivated_user_is_invalid(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    member = await make.user(owner)
    await recover(client, member.email)
    token = await outbox.reset_token()
    await client.patch(f"{API}/users/{member.id}", json={"is_active": False}, headers=owner.headers)
    response = await reset(client, token)
    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN


async def test_reset_password_body_is_validated(client: AsyncClient) -> None:
    for body in (
        {"token": "t"},
        {"token": "t", "new_password": "short"},
        {"token": "t", "new_password": "x" * 129},
        {"token": "", "new_password": NEW_PASSWORD},
    ):
        response = await client.post(f"{API}/reset-password/", json=body)
        assert response.status_code == 422, body


async def test_recovery_html_content_is_for_superusers(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    path = f"{API}/password-recovery-html-content/{tenant.member.email}"
    assert_unauthorized(await client.post(path))
    for actor in (tenant.member, tenant.admin, tenant.owner):
        response = await client.post(path, headers=actor.headers)
        assert response.status_code == 403, actor.user["role"]
    root = await make.superuser()
    response = await client.post(path, headers=root.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert tenant.member.email in response.headers["subject"]
    assert "reset-password?token=" in response.text
    response = await client.post(
        f"{API}/password-recovery-html-content/{unique_email('nobody')}", headers=root.headers
    )
    assert response.status_code == 404


# --- Throttling ------------------------------------------------------------------------------

MAX_FAILURES = settings.LOGIN_MAX_FAILURES
WINDOW_SECONDS = settings.LOGIN_FAILURE_WINDOW_MINUTES * 60


def assert_throttled(response: Response) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= WINDOW_SECONDS + 1


async def test_too_many_failures_for_one_email_throttle_it(
    client: AsyncClient, make: Factories
) -> None:
    assert MAX_FAILURES == 10
    owner = await make.signup()
    bystander = await make.signup()
    for attempt in range(MAX_FAILURES):
        async with client_at(f"10.0.0.{attempt + 1}") as http:  # one failure per address
            response = await login(http, owner.email, "not the password")
            assert response.status_code == 400, attempt
    async with client_at("10.0.1.1") as http:
        assert_throttled(await login(http, owner.email))  # the right password too
        assert_throttled(await login(http, owner.email.upper(), "not the password"))
        assert (await login(http, bystander.email)).status_code == 200
    # Throttling stops new logins, not the sessions already open.
    assert (await whoami(client, owner.access_token)).status_code == 200


async def test_unknown_emails_are_throttled_like_known_ones(client: AsyncClient) -> None:
    email = unique_email("nobody")
    for attempt in range(MAX_FAILURES):
        async with client_at(f"10.0.2.{attempt + 1}") as http:
            assert (await login(http, email)).json() == INCORRECT
    async with client_at("10.0.3.1") as http:
        assert_throttled(await login(http, email))


async def test_too_many_failures_from_one_address_throttle_it(
    client: AsyncClient, make: Factories
) -> None:
    assert settings.LOGIN_MAX_FAILURES_PER_ADDRESS == 100
    owner = await make.signup()
    async with client_at("10.1.2.3") as attacker:
        for attempt in range(settings.LOGIN_MAX_FAILURES_PER_ADDRESS):
            response = await login(attacker, unique_email("guess"), "not the password")
            assert response.status_code == 400, attempt
        assert_throttled(await login(attacker, owner.email))
    async with client_at("10.1.2.4") as neighbour:
        assert (await login(neighbour, owner.email)).status_code == 200


async def test_nine_failures_do_not_throttle(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    async with client_at("10.2.0.1") as http:
        for _ in range(MAX_FAILURES - 1):
            assert (await login(http, owner.email, "not the password")).status_code == 400
        assert (await login(http, owner.email)).status_code == 200


async def test_a_success_clears_the_emails_failures(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()

    async def fail_from(host: str, times: int) -> None:
        async with client_at(host) as http:
            for _ in range(times):
                assert (await login(http, owner.email, "not the password")).status_code == 400

    await fail_from("10.3.0.1", MAX_FAILURES - 1)
    async with client_at("10.3.0.2") as http:
        assert (await login(http, owner.email)).status_code == 200
    await fail_from("10.3.0.3", MAX_FAILURES - 1)  # 18 in all: only 9 since the success
    async with client_at("10.3.0.4") as http:
        assert (await login(http, owner.email)).status_code == 200


async def test_throttling_ends_with_the_window(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup()
    async with client_at("10.4.0.1") as http:
        for _ in range(MAX_FAILURES):
            await login(http, owner.email, "not the password")
        assert_throttled(await login(http, owner.email))
        keys = [f"email:{owner.email}", "ip:10.4.0.1"]
        rows = (
            await session.exec(select(LoginThrottle).where(col(LoginThrottle.key).in_(keys)))
        ).all()
        assert {row.key: row.failures for row in rows} == dict.fromkeys(keys, MAX_FAILURES)
        await session.exec(
            sa.update(LoginThrottle)
            .where(col(LoginThrottle.key).in_(keys))
            .values(window_start=utc_now() - timedelta(seconds=WINDOW_SECONDS + 1))
        )
        assert (await login(http, owner.email)).status_code == 200
        # A failure after the window starts a new count at one.
        assert (await login(http, owner.email, "not the password")).status_code == 400
        session.expire_all()
        row = await session.get(LoginThrottle, "ip:10.4.0.1")
        assert row is not None
        assert row.failures == 1


async def test_a_password_change_cancels_a_pending_reset_token(
    client: AsyncClient, make: Factories, outbox: Outbox
) -> None:
    owner = await make.signup()
    await recover(client, owner.email)
    token = await outbox.reset_token()
    fresh = (await login(client, owner.email)).json()
    response = await client.patch(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(fresh["access_token"]),
    )
    assert response.status_code == 200, response.text
    response = await reset(client, token, "an attacker's password")
    assert response.status_code == 400
    assert response.json() == INVALID_TOKEN
    assert (await login(client, owner.email, NEW_PASSWORD)).status_code == 200


async def test_password_recovery_with_a_nul_answers_the_same(
    client: AsyncClient, outbox: Outbox
) -> None:
    response = await recover(client, "a%00b@example.com")
    assert response.status_code == 200
    assert response.json() == RECOVERY
    assert await outbox.sent() == []


async def test_reactivating_a_user_does_not_revive_their_old_tokens(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    member = await make.user(owner)
    for is_active in (False, True):
        response = await client.patch(
            f"{API}/users/{member.id}", json={"is_active": is_active}, headers=owner.headers
        )
        assert response.status_code == 200, response.text
    assert_unauthorized(await whoami(client, member.access_token))
    assert_unauthorized(await refresh(client, member.refresh_token))
    assert (await login(client, member.email)).status_code == 200
