"""Passwords: any Unicode up to 128 characters, legacy bcrypt hashes, hashing off the event
loop, and no password or hash ever leaving the service."""

import asyncio
import threading
import uuid
from typing import Any

import bcrypt
import pytest
import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import security
from app.main import app
from app.models import User
from tests.conftest import API
from tests.factories import (
    PASSWORD,
    Factories,
    unique_email,
)

U4 = "\U0001d518"  # MATHEMATICAL FRAKTUR CAPITAL U: four bytes of UTF-8
WIDE = U4 * 128  # 128 characters, 512 bytes


async def login(client: AsyncClient, email: str, password: str) -> Response:
    return await client.post(
        f"{API}/login/access-token", data={"username": email, "password": password}
    )


async def stored_hash(session: AsyncSession, user_id: str) -> str:
    statement = select(User.hashed_password).where(col(User.id) == uuid.UUID(user_id))
    return (await session.exec(statement)).one()


async def set_stored_hash(session: AsyncSession, user_id: str, hashed: str) -> None:
    await session.exec(
        sa.update(User).where(col(User.id) == uuid.UUID(user_id)).values(hashed_password=hashed)
    )
    session.expire_all()  # the app shares this session in tests: drop stale copies


def legacy_bcrypt(password: str) -> str:
    """A hash as the old service stored it: bcrypt of the first 72 bytes."""
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(4)).decode()


# --- Beyond 72 bytes ---------------------------------------------------------------------


async def test_a_512_byte_password_signs_up_and_logs_in(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    assert len(WIDE) == 128
    assert len(WIDE.encode()) == 512
    owner = await make.signup(password=WIDE)
    assert (await stored_hash(session, owner.id)).startswith("$argon2id$")
    assert (await login(client, owner.email, WIDE)).status_code == 200
    # Every byte counts: neither the first 72 bytes nor a change at the end will do.
    for wrong in (U4 * 18, U4 * 127 + "x", U4 * 127):
        response = await login(client, owner.email, wrong)
        assert response.status_code == 400, len(wrong.encode())
        assert response.json() == {"detail": "Incorrect email or password"}


async def test_a_512_byte_password_through_change_and_reset(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    response = await client.patch(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": WIDE},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert (await login(client, owner.email, WIDE)).status_code == 200
    assert (await login(client, owner.email, U4 * 18)).status_code == 400


@pytest.mark.parametrize("password", [U4 * 129, "x" * 129])
async def test_129_characters_are_refused_whatever_their_bytes(
    client: AsyncClient, password: str
) -> None:
    response = await client.post(
        f"{API}/users/signup",
        json={"email": unique_email(), "password": password, "tenant_name": "T"},
    )
    assert response.status_code == 422


# --- Legacy bcrypt hashes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "password", [PASSWORD, WIDE, "é" * 40 + "x"], ids=["ascii", "512-bytes", "cut-mid-char"]
)
async def test_a_legacy_bcrypt_hash_logs_in_and_is_upgraded(
    client: AsyncClient, make: Factories, session: AsyncSession, password: str
) -> None:
    owner = await make.signup(password=password)
    legacy = legacy_bcrypt(password)
    await set_stored_hash(session, owner.id, legacy)
    assert (await stored_hash(session, owner.id)) == legacy

    response = await login(client, owner.email, password)
    assert response.status_code == 200, response.text
    upgraded = await stored_hash(session, owner.id)
    assert upgraded.startswith("$argon2id$")
    assert security.pwd_context.verify(password, upgraded)
    # The upgraded hash works, and again is left as it is.
    assert (await login(client, owner.email, password)).status_code == 200
    assert (await stored_hash(session, owner.id)) == upgraded


@pytest.mark.parametrize("wrong", ["not the password", "y" * 128, U4 * 128])
async def test_a_wrong_password_against_a_legacy_hash_is_400(
    client: AsyncClient, make: Factories, session: AsyncSession, wrong: str
) -> None:
    owner = await make.signup()
    legacy = legacy_bcrypt(PASSWORD)
    await set_stored_hash(session, owner.id, legacy)
    response = await login(client, owner.email, wrong)
    assert response.status_code == 400
    assert response.json() == {"detail": "Incorrect email or password"}
    assert (await stored_hash(session, owner.id)) == legacy


async def test_a_legacy_hash_accepts_the_current_password_on_change(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup(password=WIDE)
    await set_stored_hash(session, owner.id, legacy_bcrypt(WIDE))
    response = await client.patch(
        f"{API}/users/me/password",
        json={"current_password": WIDE, "new_password": "a new password"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert (await stored_hash(session, owner.id)).startswith("$argon2id$")


@pytest.mark.parametrize("hashed", ["", "garbage", "$2b$04$short", "$argon2id$v=19$broken"])
async def test_a_malformed_stored_hash_never_matches(
    client: AsyncClient, make: Factories, session: AsyncSession, hashed: str
) -> None:
    owner = await make.signup()
    await set_stored_hash(session, owner.id, hashed)
    response = await login(client, owner.email, PASSWORD)
    assert response.status_code == 400
    assert response.json() == {"detail": "Incorrect email or password"}


# --- Hashing off the event loop ------------------------------------------------------------
# Proved by what happens, not by how long it took: a hash that runs on the event loop would
# hold it, so a request made meanwhile could not be answered.

HASH_WAIT_SECONDS = 60  # a bound on a hang, never a measure of speed


async def test_logins_do_not_block_the_event_loop(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make.signup()
    loop_thread = threading.get_ident()
    entered, release = threading.Event(), threading.Event()
    threads: list[int] = []
    verify = security._verify_and_update

    def blocking_verify(password: str, hashed: str) -> tuple[bool, str | None]:
        threads.append(threading.get_ident())
        entered.set()
        # Held until the health check below has answered: on the loop's thread, that
        # answer could never come, and the wait would end by its bound instead.
        assert release.wait(HASH_WAIT_SECONDS), "the health check never answered"
        return verify(password, hashed)

    monkeypatch.setattr(security, "_verify_and_update", blocking_verify)
    signing_in = asyncio.create_task(login(client, owner.email, PASSWORD))
    try:
        assert await asyncio.to_thread(entered.wait, HASH_WAIT_SECONDS)
        health = await client.get(f"{API}/utils/health-check/")
        assert health.status_code == 200
        assert not signing_in.done()  # the verification is still held, in its thread
    finally:
        release.set()
    response = await signing_in
    assert response.status_code == 200, response.text
    assert threads and loop_thread not in threads


async def test_signup_hashes_the_password_in_a_worker_thread(
    make: Factories, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real = security.pwd_context

    class RecordingContext:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def hash(self, secret: str) -> str:
            threads.append(threading.get_ident())
            return real.hash(secret)

    monkeypatch.setattr(security, "pwd_context", RecordingContext())
    await make.signup()
    assert threads and threading.get_ident() not in threads


# --- No password or hash ever leaves the service -------------------------------------------


def response_schemas(openapi: dict[str, Any]) -> set[str]:
    """Names of every component schema reachable from a 2xx response."""
    components = openapi["components"]["schemas"]
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in found:
                    found.add(name)
                    walk(components[name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path_item in openapi["paths"].values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2"):
                    walk(response)
    return found


def property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {}))
        for value in schema.values():
            names |= property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= property_names(item)
    return names


def test_no_response_model_carries_a_password_or_hash() -> None:
    openapi = app.openapi()
    schemas = response_schemas(openapi)
    # The walk reaches the models that matter (and would see a leak in them).
    assert {"UserPublic", "UsersPublic", "Token", "TenantPublic", "TenantsPublic"} <= schemas
    components = openapi["components"]["schemas"]
    for name in schemas:
        leaked = {
            prop
            for prop in property_names(components[name])
            if "password" in prop.lower() or "hash" in prop.lower()
        }
        assert not leaked, (name, leaked)


def test_the_walk_would_see_a_leak() -> None:
    """The check above can fail: a response model with a hash is found."""
    fake: dict[str, Any] = {
        "paths": {"/x": {"get": {"responses": {"200": {"$ref": "#/components/schemas/A"}}}}},
        "components": {
            "schemas": {
                "A": {"properties": {"items": {"items": {"$ref": "#/components/schemas/B"}}}},
                "B": {"properties": {"hashed_password": {"type": "string"}}},
            }
        },
    }
    schemas = response_schemas(fake)
    assert schemas == {"A", "B"}
    assert "hashed_password" in property_names(fake["components"]["schemas"]["B"])


async def test_responses_carry_no_password_or_hash(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    root = await make.superuser()
    for path in ("/users/me", "/users/", f"/users/{tenant.member.id}", "/tenants/me"):
        response = await client.get(f"{API}{path}", headers=tenant.owner.headers)
        assert response.status_code == 200
        assert "password" not in response.text
        assert "hash" not in response.text
    response = await client.get(f"{API}/users/", headers=root.headers)
    assert "$argon2" not in response.text
    assert "password" not in response.text


SECRET = "Sup3r-Secret-Passw0rd!"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/users/signup",
            {"email": "not-an-email", "password": SECRET, "tenant_name": "T"},
        ),
        ("POST", "/users/signup", {"email": "a@example.com", "password": SECRET}),
        ("POST", "/users/signup", {"email": "a@example.com", "password": SECRET * 10}),
        ("POST", "/reset-password/", {"token": "", "new_password": SECRET}),
        ("POST", "/reset-password/", {"token": SECRET, "new_password": "short"}),
        ("POST", "/reset-password/", {"token": SECRET}),
        ("POST", "/login/refresh", {"refresh_token": SECRET * 30}),
        ("POST", "/login/refresh", [SECRET]),
    ],
)
async def test_422_never_echoes_input(
    client: AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, f"{API}{path}", json=body)
    assert response.status_code == 422
    assert "detail" in response.json()
    assert SECRET not in response.text
    assert "Sup3r" not in response.text


async def test_422_of_authenticated_routes_never_echo_input(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    requests: list[tuple[str, str, Any]] = [
        ("PATCH", "/users/me/password", {"current_password": SECRET, "new_password": "short"}),
        ("PATCH", "/users/me/password", {"current_password": SECRET}),
        ("POST", "/users/", {"email": "bad", "password": SECRET}),
        ("POST", "/users/", {"email": "a@example.com", "password": SECRET, "role": "god"}),
        ("POST", "/tenants/", {"name": "", "owner_email": "x", "owner_password": SECRET}),
    ]
    for method, path, body in requests:
        response = await client.request(method, f"{API}{path}", json=body, headers=owner.headers)
        assert response.status_code in (403, 422), path
        assert SECRET not in response.text, path
    root = await make.superuser()
    response = await client.post(
        f"{API}/tenants/",
        json={"name": "", "owner_email": "x", "owner_password": SECRET},
        headers=root.headers,
    )
    assert response.status_code == 422
    assert SECRET not in response.text


async def test_422_of_the_login_form_never_echoes_input(client: AsyncClient) -> None:
    for data in (
        {"password": SECRET},
        {"username": "a@b.co", "password": SECRET, "grant_type": SECRET},
        {"username": "a@b.co", "password": SECRET * 1000},
    ):
        response = await client.post(f"{API}/login/access-token", data=data)
        assert response.status_code == 422
        assert SECRET not in response.text
