"""Tenants: the caller's own (`/tenants/me`) and the superuser routes."""

import asyncio
import secrets
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Project, Task, Tenant, User
from tests.conftest import API
from tests.factories import PASSWORD, Actor, Factories, across_tenants, purge, unique_email

TENANT_FIELDS = {"id", "name", "slug", "plan", "settings", "created_at"}
NOT_FOUND = {"detail": "Tenant not found"}
ROLES = ["member", "admin", "owner"]


async def read_me(client: AsyncClient, by: Actor) -> dict[str, Any]:
    response = await client.get(f"{API}/tenants/me", headers=by.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def create_tenant(client: AsyncClient, by: Actor, **fields: Any) -> Response:
    body = {
        "name": "Globex",
        "owner_email": unique_email("globex"),
        "owner_password": PASSWORD,
        **fields,
    }
    return await client.post(f"{API}/tenants/", json=body, headers=by.headers)


async def rows_of_tenant(session: AsyncSession, tenant_id: str) -> dict[str, int]:
    counts = {}
    for model in (User, Project, Task):
        statement = select(func.count()).where(model.tenant_id == uuid.UUID(tenant_id))
        counts[model.__name__] = (await session.exec(statement)).one()
    counts["Tenant"] = (
        await session.exec(select(func.count()).where(Tenant.id == uuid.UUID(tenant_id)))
    ).one()
    return counts


# --- /tenants/me -----------------------------------------------------------------------------


async def test_every_role_reads_its_tenant(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant(name="Initech Ltd.")
    await make.tenant(name="Other")
    bodies = [await read_me(client, tenant.by_role(role)) for role in ROLES]
    assert bodies[0] == bodies[1] == bodies[2]
    body = bodies[0]
    assert set(body) == TENANT_FIELDS
    assert body["id"] == tenant.id
    assert body["name"] == "Initech Ltd."
    assert body["slug"].startswith("initech-ltd")
    assert body["plan"] == "free"
    assert body["settings"] == {}


async def test_tenants_me_needs_a_token(client: AsyncClient) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"{API}/tenants/me", json={"name": "x"})
        assert response.status_code == 401


async def test_owner_renames_the_tenant_and_replaces_its_settings(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    before = await read_me(client, tenant.owner)
    response = await client.patch(
        f"{API}/tenants/me",
        json={"name": "Renamed", "settings": {"theme": "dark", "limits": {"seats": 5}}},
        headers=tenant.owner.headers,
    )
    assert response.status_code == 200, response.text
    expected = {**before, "name": "Renamed", "settings": {"theme": "dark", "limits": {"seats": 5}}}
    assert response.json() == expected
    assert await read_me(client, tenant.member) == expected
    # `settings` replaces the whole object: the keys left out are gone.
    response = await client.patch(
        f"{API}/tenants/me", json={"settings": {"locale": "fr"}}, headers=tenant.owner.headers
    )
    assert response.status_code == 200
    assert response.json()["settings"] == {"locale": "fr"}
    assert response.json()["name"] == "Renamed"
    assert (await read_me(client, tenant.owner))["settings"] == {"locale": "fr"}
    response = await client.patch(
        f"{API}/tenants/me", json={"settings": {}}, headers=tenant.owner.headers
    )
    assert response.json()["settings"] == {}


async def test_patch_me_keeps_the_slug_and_ignores_the_plan(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    before = await read_me(client, tenant.owner)
    response = await client.patch(
        f"{API}/tenants/me",
        json={"name": "Cheap Upgrade", "plan": "enterprise", "slug": "taken"},
        headers=tenant.owner.headers,
    )
    assert response.status_code == 200
    assert response.json() == {**before, "name": "Cheap Upgrade"}


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": None}, {"name": "x" * 256}, {"settings": None}, {"settings": [1]}],
    ids=["empty-name", "null-name", "long-name", "null-settings", "list-settings"],
)
async def test_patch_me_is_validated(
    client: AsyncClient, make: Factories, body: dict[str, Any]
) -> None:
    owner = await make.signup()
    response = await client.patch(f"{API}/tenants/me", json=body, headers=owner.headers)
    assert response.status_code == 422, response.text


async def test_owner_deletes_the_tenant_with_all_its_rows(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    tenant = await make.tenant()
    other = await make.tenant()
    for owner in (tenant.owner, other.owner):
        project = await make.project(owner)
        await make.task(owner, project["id"], assignee_id=owner.id)
    response = await client.delete(f"{API}/tenants/me", headers=tenant.owner.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert await rows_of_tenant(session, tenant.id) == {
        "User": 0,
        "Project": 0,
        "Task": 0,
        "Tenant": 0,
    }
    for actor in (tenant.owner, tenant.member):
        assert (await client.get(f"{API}/users/me", headers=actor.headers)).status_code == 401
    response = await client.post(
        f"{API}/login/access-token", data={"username": tenant.owner.email, "password": PASSWORD}
    )
    assert response.status_code == 400
    # The other tenant is untouched.
    assert await rows_of_tenant(session, other.id) == {
        "User": 3,
        "Project": 1,
        "Task": 1,
        "Tenant": 1,
    }


async def test_a_tenant_holding_a_superuser_is_not_deleted(
    client: AsyncClient, make: Factories
) -> None:
    root = await make.superuser()
    response = await client.delete(f"{API}/tenants/me", headers=root.headers)
    assert response.status_code == 409
    response = await client.delete(f"{API}/tenants/{root.tenant_id}", headers=root.headers)
    assert response.status_code == 409
    assert (await read_me(client, root))["id"] == root.tenant_id


# --- Superuser routes ------------------------------------------------------------------------


async def test_superuser_creates_a_tenant_with_its_owner(
    client: AsyncClient, make: Factories
) -> None:
    root = await make.superuser()
    owner_email = unique_email("globex")
    response = await create_tenant(
        client, root, name="Globex", owner_email=owner_email.upper(), owner_full_name="Hank"
    )
    assert response.status_code == 201, response.text
    tenant = response.json()
    assert set(tenant) == TENANT_FIELDS
    assert tenant["name"] == "Globex"
    assert tenant["plan"] == "free"
    assert tenant["settings"] == {}
    owner = await make.actor({"email": owner_email})
    me = (await client.get(f"{API}/users/me", headers=owner.headers)).json()
    assert me["tenant_id"] == tenant["id"]
    assert me["role"] == "owner"
    assert me["email"] == owner_email
    assert me["full_name"] == "Hank"
    assert me["is_superuser"] is False
    assert await read_me(client, owner) == tenant
    response = await client.get(f"{API}/tenants/{tenant['id']}", headers=root.headers)
    assert response.json() == tenant


async def test_create_tenant_with_a_plan(client: AsyncClient, make: Factories) -> None:
    root = await make.superuser()
    response = await create_tenant(client, root, plan="pro")
    assert response.status_code == 201
    assert response.json()["plan"] == "pro"


async def test_create_tenant_with_a_taken_owner_email_is_409(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    root = await make.superuser()
    existing = await make.signup()
    tenants_before = (await session.exec(select(func.count()).select_from(Tenant))).one()
    response = await create_tenant(client, root, owner_email=existing.email.upper())
    assert response.status_code == 409
    tenants_after = (await session.exec(select(func.count()).select_from(Tenant))).one()
    assert tenants_after == tenants_before


async def test_slugs_are_unique_with_a_suffix_on_a_clash(
    client: AsyncClient, make: Factories
) -> None:
    root = await make.superuser()
    name = f"Umbrella {secrets.token_hex(3)} Corp"
    base = name.lower().replace(" ", "-")
    slugs = []
    for _ in range(3):
        response = await create_tenant(client, root, name=name)
        assert response.status_code == 201
        assert response.json()["name"] == name
        slugs.append(response.json()["slug"])
    assert slugs[0] == base
    assert len(set(slugs)) == 3
    assert all(slug.startswith(f"{base}-") for slug in slugs[1:])


async def test_a_name_without_letters_still_gets_a_slug(
    client: AsyncClient, make: Factories
) -> None:
    root = await make.superuser()
    slugs = set()
    for name in ("日本", "!!!"):
        response = await create_tenant(client, root, name=name)
        assert response.status_code == 201, response.text
        assert response.json()["slug"]
        slugs.add(response.json()["slug"])
    assert len(slugs) == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"plan": "platinum"},
        {"owner_email": "nope"},
        {"owner_password": "seven77"},
        {"owner_password": "x" * 129},
        {"owner_email": None},
    ],
    ids=["empty-name", "bad-plan", "bad-email", "short-pw", "long-pw", "no-email"],
)
async def test_create_tenant_is_validated(
    client: AsyncClient, make: Factories, changes: dict[str, Any]
) -> None:
    root = await make.superuser()
    body = {"name": "V", "owner_email": unique_email(), "owner_password": PASSWORD, **changes}
    body = {key: value for key, value in body.items() if value is not None}
    response = await client.post(f"{API}/tenants/", json=body, headers=root.headers)
    assert response.status_code == 422, response.text


async def test_superuser_lists_tenants(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    before = (await session.exec(select(func.count()).select_from(Tenant))).one()
    a = await make.tenant()
    b = await make.tenant()
    root = await make.superuser()
    response = await client.get(f"{API}/tenants/", headers=root.headers)
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == before + 3
    listed = {tenant["id"] for tenant in page["data"]}
    assert {a.id, b.id, root.tenant_id} <= listed
    assert all(set(tenant) == TENANT_FIELDS for tenant in page["data"])
    # Newest first.
    assert [t["id"] for t in page["data"][:3]] == [root.tenant_id, b.id, a.id]
    response = await client.get(f"{API}/tenants/", params={"limit": 1}, headers=root.headers)
    assert response.json()["count"] == before + 3
    assert [t["id"] for t in response.json()["data"]] == [root.tenant_id]
    response = await client.get(
        f"{API}/tenants/", params={"skip": 1, "limit": 1}, headers=root.headers
    )
    assert [t["id"] for t in response.json()["data"]] == [b.id]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"skip": -1}],
    ids=["limit-0", "limit-101", "skip-neg"],
)
async def test_list_tenants_bounds(
    client: AsyncClient, make: Factories, params: dict[str, Any]
) -> None:
    root = await make.superuser()
    response = await client.get(f"{API}/tenants/", params=params, headers=root.headers)
    assert response.status_code == 422


async def test_superuser_reads_updates_and_deletes_any_tenant(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    tenant = await make.tenant()
    project = await make.project(tenant.owner)
    await make.task(tenant.owner, project["id"])
    root = await make.superuser()
    before = await read_me(client, tenant.member)
    response = await client.get(f"{API}/tenants/{tenant.id}", headers=root.headers)
    assert response.status_code == 200
    assert response.json() == before
    response = await client.patch(
        f"{API}/tenants/{tenant.id}",
        json={"name": "Upgraded", "plan": "enterprise", "settings": {"sso": True}},
        headers=root.headers,
    )
    assert response.status_code == 200, response.text
    expected = {**before, "name": "Upgraded", "plan": "enterprise", "settings": {"sso": True}}
    assert response.json() == expected
    assert await read_me(client, tenant.member) == expected
    response = await client.patch(
        f"{API}/tenants/{tenant.id}", json={"settings": {"x": 1}}, headers=root.headers
    )
    assert response.json() == {**expected, "settings": {"x": 1}}
    response = await client.delete(f"{API}/tenants/{tenant.id}", headers=root.headers)
    assert response.status_code == 204
    assert await rows_of_tenant(session, tenant.id) == {
        "User": 0,
        "Project": 0,
        "Task": 0,
        "Tenant": 0,
    }
    response = await client.get(f"{API}/tenants/{tenant.id}", headers=root.headers)
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize(
    "body",
    [{"plan": "gold"}, {"plan": None}, {"name": ""}, {"settings": "x"}],
    ids=["bad-plan", "null-plan", "empty-name", "str-settings"],
)
async def test_update_tenant_is_validated(
    client: AsyncClient, make: Factories, body: dict[str, Any]
) -> None:
    owner = await make.signup()
    root = await make.superuser()
    response = await client.patch(
        f"{API}/tenants/{owner.tenant_id}", json=body, headers=root.headers
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_superuser_gets_404_for_an_unknown_tenant(
    client: AsyncClient, make: Factories, method: str
) -> None:
    root = await make.superuser()
    response = await client.request(
        method, f"{API}/tenants/{uuid.uuid4()}", json={"name": "x"}, headers=root.headers
    )
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    response = await client.request(
        method, f"{API}/tenants/not-a-uuid", json={"name": "x"}, headers=root.headers
    )
    assert response.status_code == 422


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_tenant_by_id_is_404_for_another_and_403_for_their_own(
    client: AsyncClient, make: Factories, role: str, method: str
) -> None:
    tenant = await make.tenant()
    other = await make.tenant()
    actor = tenant.by_role(role)
    body = {"name": "Mine now"}
    for target in (other.id, str(uuid.uuid4())):
        response = await client.request(
            method, f"{API}/tenants/{target}", json=body, headers=actor.headers
        )
        assert response.status_code == 404, response.text
        assert response.json() == NOT_FOUND
    response = await client.request(
        method, f"{API}/tenants/{tenant.id}", json=body, headers=actor.headers
    )
    assert response.status_code == 403
    assert (await read_me(client, other.owner))["name"] == "Acme"
    assert (await read_me(client, actor))["name"] == "Acme"


@pytest.mark.parametrize("role", ROLES)
async def test_list_and_create_tenants_are_for_superusers(
    client: AsyncClient, make: Factories, session: AsyncSession, role: str
) -> None:
    tenant = await make.tenant()
    actor = tenant.by_role(role)
    assert (await client.get(f"{API}/tenants/", headers=actor.headers)).status_code == 403
    owner_email = unique_email()
    response = await create_tenant(client, actor, owner_email=owner_email)
    assert response.status_code == 403
    created = (await session.exec(select(User.id).where(User.email == owner_email))).first()
    assert created is None


async def test_superuser_routes_need_a_token(client: AsyncClient) -> None:
    assert (await client.get(f"{API}/tenants/")).status_code == 401
    response = await client.post(
        f"{API}/tenants/",
        json={"name": "x", "owner_email": unique_email(), "owner_password": PASSWORD},
    )
    assert response.status_code == 401
    assert (await client.get(f"{API}/tenants/{uuid.uuid4()}")).status_code == 401


# --- Concurrency (committed data) ------------------------------------------------------------


async def test_concurrent_signups_with_one_tenant_name_get_distinct_slugs(
    committed_client: AsyncClient, engine: AsyncEngine
) -> None:
    name = f"Race {secrets.token_hex(4)}"
    emails = [unique_email("race") for _ in range(4)]
    # Warm the pool, so the signups really run side by side.
    await asyncio.gather(*(committed_client.get(f"{API}/utils/ready/") for _ in range(4)))
    responses = await asyncio.gather(
        *(
            committed_client.post(
                f"{API}/users/signup",
                json={"email": email, "password": PASSWORD, "tenant_name": name},
            )
            for email in emails
        ),
        return_exceptions=True,
    )
    tenant_ids = [
        r.json()["tenant_id"] for r in responses if isinstance(r, Response) and r.status_code == 201
    ]
    try:
        assert [getattr(r, "status_code", r) for r in responses] == [201] * 4
        async with across_tenants(engine) as connection:
            slugs = (
                await connection.execute(
                    sa.select(col(Tenant.slug)).where(col(Tenant.name) == name)
                )
            ).scalars()
            assert len(set(slugs)) == 4
    finally:
        await purge(engine, tenant_ids, emails)
