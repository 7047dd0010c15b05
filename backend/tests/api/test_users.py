"""Users: signup, the caller's own account, the tenant's users, and the tenancy rule on them."""

import asyncio
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Tenant, User
from tests.conftest import API
from tests.factories import (
    PASSWORD,
    USER_FIELDS,
    Actor,
    Factories,
    across_tenants,
    purge,
    unique_email,
)

NOT_FOUND = {"detail": "User not found"}
ROLES = ["member", "admin", "owner"]


async def signup(client: AsyncClient, **fields: Any) -> Response:
    body = {"email": unique_email(), "password": PASSWORD, "tenant_name": "Acme", **fields}
    return await client.post(f"{API}/users/signup", json=body)


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> Response:
    return await client.post(
        f"{API}/login/access-token", data={"username": email, "password": password}
    )


async def create_user(client: AsyncClient, by: Actor, **fields: Any) -> Response:
    body = {"email": unique_email(), "password": PASSWORD, **fields}
    return await client.post(f"{API}/users/", json=body, headers=by.headers)


async def list_users(client: AsyncClient, by: Actor, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/users/", params=params, headers=by.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ids(page: dict[str, Any]) -> set[str]:
    return {user["id"] for user in page["data"]}


# --- Signup ----------------------------------------------------------------------------------


async def test_signup_creates_a_tenant_owned_by_the_user(client: AsyncClient) -> None:
    email = unique_email("founder")
    response = await signup(client, email=email, full_name="Ada", tenant_name="Analytical")
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == USER_FIELDS
    assert user["email"] == email
    assert user["full_name"] == "Ada"
    assert user["role"] == "owner"
    assert user["is_active"] is True
    assert user["is_superuser"] is False
    tokens = (await login(client, email)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    tenant = (await client.get(f"{API}/tenants/me", headers=headers)).json()
    assert tenant["id"] == user["tenant_id"]
    assert tenant["name"] == "Analytical"
    assert tenant["plan"] == "free"
    me = (await client.get(f"{API}/users/me", headers=headers)).json()
    assert me == user


async def test_each_signup_gets_its_own_tenant(client: AsyncClient) -> None:
    first = (await signup(client, tenant_name="Same")).json()
    second = (await signup(client, tenant_name="Same")).json()
    assert first["tenant_id"] != second["tenant_id"]


async def test_signup_cannot_grant_privileges(client: AsyncClient, make: Factories) -> None:
    other = await make.signup()
    response = await signup(
        client, is_superuser=True, role="member", tenant_id=other.tenant_id, is_active=False
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["is_superuser"] is False
    assert user["role"] == "owner"
    assert user["is_active"] is True
    assert user["tenant_id"] != other.tenant_id


async def test_signup_stores_the_email_lowercased(client: AsyncClient) -> None:
    local = unique_email("MiXeD").split("@")[0]
    response = await signup(client, email=f"{local}@Example.COM")
    assert response.status_code == 201, response.text
    assert response.json()["email"] == f"{local.lower()}@example.com"
    assert (await login(client, f"{local.upper()}@EXAMPLE.com")).status_code == 200


async def test_signup_with_a_taken_email_is_409_whatever_the_case(
    client: AsyncClient, session: AsyncSession
) -> None:
    local = unique_email("dup").split("@")[0]
    assert (await signup(client, email=f"A{local}@x.com")).status_code == 201
    tenants_before = (await session.exec(select(func.count()).select_from(Tenant))).one()
    response = await signup(client, email=f"a{local}@X.com", tenant_name="Second")
    assert response.status_code == 409
    assert isinstance(response.json()["detail"], str)
    # The refused signup left no tenant behind.
    tenants_after = (await session.exec(select(func.count()).select_from(Tenant))).one()
    assert tenants_after == tenants_before


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "not-an-email"},
        {"email": None},
        {"password": "seven77"},
        {"password": "x" * 129},
        {"password": None},
        {"tenant_name": ""},
        {"tenant_name": "x" * 256},
        {"tenant_name": None},
        {"full_name": "x" * 256},
    ],
    ids=lambda changes: "-".join(f"{k}={str(v)[:10]}" for k, v in changes.items()),
)
async def test_signup_is_validated(client: AsyncClient, changes: dict[str, Any]) -> None:
    body: dict[str, Any] = {"email": unique_email(), "password": PASSWORD, "tenant_name": "A"}
    body.update(changes)
    body = {key: value for key, value in body.items() if value is not None}
    response = await client.post(f"{API}/users/signup", json=body)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("password", ["x" * 8, "x" * 128, "ü" * 8, "🔑" * 128])
async def test_password_length_bounds_count_characters(client: AsyncClient, password: str) -> None:
    email = unique_email()
    response = await signup(client, email=email, password=password)
    assert response.status_code == 201, response.text
    assert (await login(client, email, password)).status_code == 200


# --- The caller's own account ----------------------------------------------------------------


async def test_read_me(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    for actor in (tenant.owner, tenant.admin, tenant.member):
        response = await client.get(f"{API}/users/me", headers=actor.headers)
        assert response.status_code == 200
        assert response.json() == actor.user


async def test_update_me(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    member = await make.user(owner)
    new_email = unique_email("renamed")
    response = await client.patch(
        f"{API}/users/me",
        json={"full_name": "New Name", "email": new_email.upper()},
        headers=member.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**member.user, "full_name": "New Name", "email": new_email}
    assert (await login(client, member.email)).status_code == 400
    assert (await login(client, new_email)).status_code == 200
    response = await client.patch(
        f"{API}/users/me", json={"full_name": None}, headers=member.headers
    )
    assert response.status_code == 200
    assert response.json()["full_name"] is None
    assert response.json()["email"] == new_email


async def test_update_me_cannot_change_role_flags_or_tenant(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    other = await make.signup()
    response = await client.patch(
        f"{API}/users/me",
        json={
            "full_name": "Climber",
            "role": "owner",
            "is_superuser": True,
            "is_active": False,
            "tenant_id": other.tenant_id,
        },
        headers=tenant.member.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**tenant.member.user, "full_name": "Climber"}


async def test_update_me_with_a_taken_email_is_409(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    stranger = await make.signup()
    for email in (tenant.owner.email, stranger.email.upper()):
        response = await client.patch(
            f"{API}/users/me", json={"email": email}, headers=tenant.member.headers
        )
        assert response.status_code == 409, email
    me = await client.get(f"{API}/users/me", headers=tenant.member.headers)
    assert me.json()["email"] == tenant.member.email


@pytest.mark.parametrize(
    "body",
    [{"email": None}, {"email": "nope"}, {"full_name": "x" * 256}],
    ids=["null-email", "bad-email", "long-name"],
)
async def test_update_me_is_validated(
    client: AsyncClient, make: Factories, body: dict[str, Any]
) -> None:
    owner = await make.signup()
    response = await client.patch(f"{API}/users/me", json=body, headers=owner.headers)
    assert response.status_code == 422, response.text


async def test_change_password_with_a_wrong_current_password_is_400(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    response = await client.patch(
        f"{API}/users/me/password",
        json={"current_password": "not the password", "new_password": "a new password"},
        headers=owner.headers,
    )
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)
    # Nothing changed: the login still works, with the old password.
    assert (await client.get(f"{API}/users/me", headers=owner.headers)).status_code == 200
    assert (await login(client, owner.email)).status_code == 200
    assert (await login(client, owner.email, "a new password")).status_code == 400


@pytest.mark.parametrize("new_password", ["short", "x" * 129])
async def test_change_password_validates_the_new_one(
    client: AsyncClient, make: Factories, new_password: str
) -> None:
    owner = await make.signup()
    response = await client.patch(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=owner.headers,
    )
    assert response.status_code == 422


async def test_change_password_needs_a_token(client: AsyncClient) -> None:
    response = await client.patch(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a new password"},
    )
    assert response.status_code == 401


async def test_delete_me(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    for actor in (tenant.member, tenant.admin):
        response = await client.delete(f"{API}/users/me", headers=actor.headers)
        assert response.status_code == 204
        assert response.content == b""
        assert (await client.get(f"{API}/users/me", headers=actor.headers)).status_code == 401
        assert (await login(client, actor.email)).status_code == 400
    page = await list_users(client, tenant.owner)
    assert ids(page) == {tenant.owner.id}


async def test_the_last_owner_cannot_delete_themselves(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    response = await client.delete(f"{API}/users/me", headers=tenant.owner.headers)
    assert response.status_code == 409
    assert (await client.get(f"{API}/users/me", headers=tenant.owner.headers)).status_code == 200


async def test_an_owner_with_a_co_owner_can_delete_themselves(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    co_owner = await make.user(tenant.owner, role="owner")
    response = await client.delete(f"{API}/users/me", headers=tenant.owner.headers)
    assert response.status_code == 204
    # Now the co-owner is the last one.
    response = await client.delete(f"{API}/users/me", headers=co_owner.headers)
    assert response.status_code == 409


async def test_an_inactive_co_owner_does_not_count(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    response = await create_user(client, tenant.owner, role="owner", is_active=False)
    assert response.status_code == 201
    response = await client.delete(f"{API}/users/me", headers=tenant.owner.headers)
    assert response.status_code == 409


# --- Listing users ---------------------------------------------------------------------------


async def test_list_users_covers_the_callers_tenant_only(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    other = await make.tenant()
    expected = {tenant.owner.id, tenant.admin.id, tenant.member.id}
    for actor in (tenant.owner, tenant.admin, tenant.member):
        page = await list_users(client, actor)
        assert page["count"] == 3
        assert ids(page) == expected
        assert all(set(user) == USER_FIELDS for user in page["data"])
        page = await list_users(client, actor, tenant_id=tenant.id)
        assert ids(page) == expected
        response = await client.get(
            f"{API}/users/", params={"tenant_id": other.id}, headers=actor.headers
        )
        assert response.status_code == 422


async def test_superuser_lists_every_tenant_or_one(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    before = (await session.exec(select(func.count()).select_from(User))).one()
    a = await make.tenant()
    b = await make.tenant()
    root = await make.superuser()
    everyone = await list_users(client, root)
    assert everyone["count"] == before + 7
    assert {a.owner.id, a.member.id, b.admin.id, root.id} <= ids(everyone)
    only_a = await list_users(client, root, tenant_id=a.id)
    assert only_a["count"] == 3
    assert ids(only_a) == {a.owner.id, a.admin.id, a.member.id}
    nobody = await list_users(client, root, tenant_id=str(uuid.uuid4()))
    assert nobody == {"data": [], "count": 0}


async def test_list_users_pages(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    await make.user(tenant.owner)
    await make.user(tenant.owner)
    first = await list_users(client, tenant.member, limit=2)
    rest = await list_users(client, tenant.member, skip=2, limit=2)
    beyond = await list_users(client, tenant.member, skip=5)
    assert first["count"] == rest["count"] == beyond["count"] == 5
    assert len(first["data"]) == 2
    assert len(rest["data"]) == 2
    assert beyond["data"] == []
    assert not ids(first) & ids(rest)
    full = await list_users(client, tenant.member)
    assert [u["id"] for u in full["data"]][:4] == [u["id"] for u in first["data"] + rest["data"]]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"skip": -1}, {"limit": "x"}, {"tenant_id": "nope"}],
    ids=["limit-0", "limit-101", "skip-neg", "limit-nan", "tenant-not-uuid"],
)
async def test_list_users_bounds(
    client: AsyncClient, make: Factories, params: dict[str, Any]
) -> None:
    owner = await make.signup()
    response = await client.get(f"{API}/users/", params=params, headers=owner.headers)
    assert response.status_code == 422


async def test_list_users_limit_bounds_are_inclusive(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    for limit in (1, 100):
        assert (await list_users(client, owner, limit=limit))["count"] == 1


async def test_list_users_needs_a_token(client: AsyncClient) -> None:
    assert (await client.get(f"{API}/users/")).status_code == 401


# --- Creating users --------------------------------------------------------------------------


async def test_create_user_defaults(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    email = unique_email("new")
    response = await create_user(client, owner, email=email.upper(), full_name="Newbie")
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == USER_FIELDS
    assert user["email"] == email
    assert user["role"] == "member"
    assert user["is_active"] is True
    assert user["is_superuser"] is False
    assert user["tenant_id"] == owner.tenant_id
    assert (await login(client, email)).status_code == 200


async def test_create_user_cannot_make_a_superuser(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await create_user(client, owner, is_superuser=True, role="admin")
    assert response.status_code == 201
    assert response.json()["is_superuser"] is False
    assert response.json()["role"] == "admin"


async def test_create_an_inactive_user(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await create_user(client, owner, is_active=False)
    assert response.status_code == 201
    assert response.json()["is_active"] is False
    response = await login(client, response.json()["email"])
    assert response.json() == {"detail": "Inactive user"}


async def test_create_user_with_a_taken_email_is_409(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    stranger = await make.signup()
    response = await create_user(client, owner, email=stranger.email.upper())
    assert response.status_code == 409
    assert (await list_users(client, owner))["count"] == 1


@pytest.mark.parametrize("role", ["admin", "owner"])
async def test_create_user_with_another_tenants_id_is_422(
    client: AsyncClient, make: Factories, role: str
) -> None:
    tenant = await make.tenant()
    other = await make.signup()
    actor = tenant.by_role(role)
    for tenant_id in (other.tenant_id, str(uuid.uuid4())):
        response = await create_user(client, actor, tenant_id=tenant_id)
        assert response.status_code == 422, response.text
    response = await create_user(client, actor, tenant_id=tenant.id)
    assert response.status_code == 201
    assert response.json()["tenant_id"] == tenant.id
    assert (await list_users(client, other))["count"] == 1


async def test_superuser_creates_users_in_any_tenant(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    root = await make.superuser()
    response = await create_user(client, root, tenant_id=tenant.id, role="owner")
    assert response.status_code == 201, response.text
    assert response.json()["tenant_id"] == tenant.id
    assert response.json()["role"] == "owner"
    assert response.json()["id"] in ids(await list_users(client, tenant.member))
    response = await create_user(client, root)
    assert response.status_code == 201
    assert response.json()["tenant_id"] == root.tenant_id
    response = await create_user(client, root, tenant_id=str(uuid.uuid4()))
    assert response.status_code == 422


@pytest.mark.parametrize(
    "changes",
    [
        {"password": "seven77"},
        {"password": "x" * 129},
        {"email": "nope"},
        {"role": "superuser"},
        {"tenant_id": "nope"},
        {"is_active": "maybe"},
    ],
    ids=["short-pw", "long-pw", "bad-email", "bad-role", "bad-tenant", "bad-active"],
)
async def test_create_user_is_validated(
    client: AsyncClient, make: Factories, changes: dict[str, Any]
) -> None:
    owner = await make.signup()
    response = await create_user(client, owner, **changes)
    assert response.status_code == 422, response.text


# --- One user by id: the tenancy rule ----------------------------------------------------------


async def test_read_a_user_of_the_tenant(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    for actor in (tenant.owner, tenant.admin, tenant.member):
        response = await client.get(f"{API}/users/{tenant.admin.id}", headers=actor.headers)
        assert response.status_code == 200
        assert response.json() == tenant.admin.user


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_another_tenants_user_is_404_before_any_role_check(
    client: AsyncClient, make: Factories, role: str, method: str
) -> None:
    tenant = await make.tenant()
    other = await make.tenant()
    actor = tenant.by_role(role)
    body = {"full_name": "Hacked"} if method == "PATCH" else None
    for target in (other.member, other.owner):
        response = await client.request(
            method, f"{API}/users/{target.id}", json=body, headers=actor.headers
        )
        assert response.status_code == 404, (target.user["role"], response.text)
        assert response.json() == NOT_FOUND
    # Untouched, as its own tenant sees it.
    for target in (other.member, other.owner):
        response = await client.get(f"{API}/users/{target.id}", headers=other.owner.headers)
        assert response.json() == target.user


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_unknown_user_is_404(client: AsyncClient, make: Factories, method: str) -> None:
    owner = await make.signup()
    root = await make.superuser()
    body = {"full_name": "x"} if method == "PATCH" else None
    for actor in (owner, root):
        response = await client.request(
            method, f"{API}/users/{uuid.uuid4()}", json=body, headers=actor.headers
        )
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    response = await client.request(
        method, f"{API}/users/not-a-uuid", json=body, headers=owner.headers
    )
    assert response.status_code == 422


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_user_by_id_needs_a_token(client: AsyncClient, make: Factories, method: str) -> None:
    owner = await make.signup()
    response = await client.request(method, f"{API}/users/{owner.id}", json={"full_name": "x"})
    assert response.status_code == 401


async def test_superuser_reads_and_changes_users_of_any_tenant(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    root = await make.superuser()
    response = await client.get(f"{API}/users/{tenant.member.id}", headers=root.headers)
    assert response.status_code == 200
    assert response.json() == tenant.member.user
    response = await client.patch(
        f"{API}/users/{tenant.member.id}",
        json={"full_name": "By Root", "role": "admin"},
        headers=root.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**tenant.member.user, "full_name": "By Root", "role": "admin"}
    response = await client.delete(f"{API}/users/{tenant.member.id}", headers=root.headers)
    assert response.status_code == 204
    response = await client.get(f"{API}/users/{tenant.member.id}", headers=tenant.owner.headers)
    assert response.status_code == 404


async def test_update_a_user(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    new_email = unique_email("moved")
    response = await client.patch(
        f"{API}/users/{tenant.member.id}",
        json={"email": new_email, "full_name": "Renamed", "role": "admin"},
        headers=tenant.owner.headers,
    )
    assert response.status_code == 200, response.text
    expected = {**tenant.member.user, "email": new_email, "full_name": "Renamed", "role": "admin"}
    assert response.json() == expected
    response = await client.get(f"{API}/users/{tenant.member.id}", headers=tenant.member.headers)
    assert response.json() == expected
    # The new role applies to the token already issued.
    response = await create_user(client, tenant.member)
    assert response.status_code == 201


async def test_update_a_user_with_a_taken_email_is_409(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    stranger = await make.signup()
    response = await client.patch(
        f"{API}/users/{tenant.member.id}",
        json={"email": stranger.email.upper()},
        headers=tenant.owner.headers,
    )
    assert response.status_code == 409
    response = await client.get(f"{API}/users/{tenant.member.id}", headers=tenant.owner.headers)
    assert response.json() == tenant.member.user


@pytest.mark.parametrize(
    "body",
    [{"role": "root"}, {"role": None}, {"is_active": None}, {"email": None}, {"email": "x"}],
    ids=["bad-role", "null-role", "null-active", "null-email", "bad-email"],
)
async def test_update_a_user_is_validated(
    client: AsyncClient, make: Factories, body: dict[str, Any]
) -> None:
    tenant = await make.tenant()
    response = await client.patch(
        f"{API}/users/{tenant.member.id}", json=body, headers=tenant.owner.headers
    )
    assert response.status_code == 422, response.text


async def test_deleting_a_user_unassigns_their_tasks(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    tenant = await make.tenant()
    project = await make.project(tenant.owner)
    task = await make.task(tenant.owner, project["id"], assignee_id=tenant.member.id)
    response = await client.delete(f"{API}/users/{tenant.member.id}", headers=tenant.owner.headers)
    assert response.status_code == 204
    response = await client.get(f"{API}/tasks/{task['id']}", headers=tenant.owner.headers)
    assert response.status_code == 200
    assert response.json()["assignee_id"] is None
    remaining = (
        await session.exec(select(User.id).where(col(User.tenant_id) == uuid.UUID(tenant.id)))
    ).all()
    assert {str(user_id) for user_id in remaining} == {tenant.owner.id, tenant.admin.id}


async def test_a_superuser_does_not_delete_themselves(client: AsyncClient, make: Factories) -> None:
    """Not in the contract's table: kept from the template so the platform keeps an operator."""
    root = await make.superuser()
    response = await create_user(client, root, role="owner")  # not the last owner
    assert response.status_code == 201
    response = await client.delete(f"{API}/users/me", headers=root.headers)
    assert response.status_code == 403
    assert (await client.get(f"{API}/users/me", headers=root.headers)).status_code == 200


# --- Concurrency (committed data) ------------------------------------------------------------


async def committed_signup(http: AsyncClient, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "tenant_name": "Concurrent"}
    response = await http.post(f"{API}/users/signup", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def bearer_of(http: AsyncClient, email: str) -> dict[str, str]:
    response = await login(http, email)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_two_owners_demoting_each_other_at_once_leave_one(
    committed_client: AsyncClient, engine: AsyncEngine
) -> None:
    http = committed_client
    emails = [unique_email("first"), unique_email("second")]
    first = await committed_signup(http, emails[0])
    try:
        headers = await bearer_of(http, emails[0])
        body = {"email": emails[1], "password": PASSWORD, "role": "owner"}
        response = await http.post(f"{API}/users/", json=body, headers=headers)
        assert response.status_code == 201, response.text
        second = response.json()
        second_headers = await bearer_of(http, emails[1])
        for _ in range(3):  # a few rounds: each must keep exactly one owner
            responses = await asyncio.gather(
                http.patch(f"{API}/users/{second['id']}", json={"role": "admin"}, headers=headers),
                http.patch(
                    f"{API}/users/{first['id']}", json={"role": "admin"}, headers=second_headers
                ),
            )
            # One demotion wins. The other is refused: 409 when both callers were owners as
            # it checked, 403 when the winner had already made its caller an admin.
            statuses = sorted(r.status_code for r in responses)
            assert statuses in ([200, 409], [200, 403]), responses
            page = await http.get(f"{API}/users/", headers=headers)
            roles = sorted(user["role"] for user in page.json()["data"])
            assert roles == ["admin", "owner"]
            # The remaining owner promotes the other back, for the next round.
            winner = first if responses[0].status_code == 200 else second
            winner_headers = headers if winner is first else second_headers
            loser = second if winner is first else first
            response = await http.patch(
                f"{API}/users/{loser['id']}", json={"role": "owner"}, headers=winner_headers
            )
            assert response.status_code == 200
    finally:
        await purge(engine, {first["tenant_id"]}, emails)


async def test_concurrent_signups_with_one_email_give_one_account(
    committed_client: AsyncClient, engine: AsyncEngine
) -> None:
    email = unique_email("twin")
    tenant_name = f"Twin {uuid.uuid4()}"
    responses = await asyncio.gather(
        *(
            committed_client.post(
                f"{API}/users/signup",
                json={"email": email, "password": PASSWORD, "tenant_name": tenant_name},
            )
            for _ in range(3)
        )
    )
    created = {r.json()["tenant_id"] for r in responses if r.status_code == 201}
    try:
        assert sorted(r.status_code for r in responses) == [201, 409, 409]
        async with across_tenants(engine) as connection:
            tenants = await connection.execute(
                sa.select(sa.func.count())
                .select_from(Tenant)
                .where(col(Tenant.name) == tenant_name)
            )
            users = await connection.execute(
                sa.select(sa.func.count()).select_from(User).where(col(User.email) == email)
            )
            assert users.scalar_one() == 1
            assert tenants.scalar_one() == 1  # the refused signups left no tenant behind
    finally:
        await purge(engine, created, [email])
