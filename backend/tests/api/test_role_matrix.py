"""The role matrix of the contract, one test per cell, for member, admin, owner and superuser.

Every non-superuser acts inside its own tenant (`home`); the superuser lives in a tenant of
its own and acts on `home`, which is what "any tenant" means.
"""

from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.conftest import API
from tests.factories import PASSWORD, Actor, Factories, Tenant, unique_email

ROLES = ["member", "admin", "owner", "superuser"]
USER_ROLES = ["member", "admin", "owner"]


@dataclass
class World:
    home: Tenant
    root: Actor

    def actor(self, role: str) -> Actor:
        return self.root if role == "superuser" else self.home.by_role(role)


@pytest.fixture
async def world(make: Factories) -> World:
    return World(home=await make.tenant(), root=await make.superuser())


def tenant_params(actor: Actor, world: World) -> dict[str, str]:
    """A superuser's lists cover every tenant: narrow them to `home`."""
    return {"tenant_id": world.home.id} if actor is world.root else {}


async def add_user(client: AsyncClient, world: World, role: str, **fields: Any) -> dict[str, Any]:
    """A user of `home` (not logged in), made by its owner."""
    body = {"email": unique_email(role), "password": PASSWORD, "role": role, **fields}
    response = await client.post(f"{API}/users/", json=body, headers=world.home.owner.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def read_user(client: AsyncClient, world: World, user_id: str) -> Response:
    return await client.get(f"{API}/users/{user_id}", headers=world.home.owner.headers)


# --- read own tenant, its users, projects, tasks: yes | yes | yes | any tenant --------------


@pytest.mark.parametrize("role", ROLES)
async def test_read_tenant_users_projects_tasks(
    client: AsyncClient, make: Factories, world: World, role: str
) -> None:
    actor = world.actor(role)
    home = world.home
    project = await make.project(home.owner)
    task = await make.task(home.owner, project["id"])
    path = f"/tenants/{home.id}" if role == "superuser" else "/tenants/me"
    response = await client.get(f"{API}{path}", headers=actor.headers)
    assert response.status_code == 200
    assert response.json()["id"] == home.id
    response = await client.get(f"{API}/users/{home.member.id}", headers=actor.headers)
    assert response.status_code == 200
    assert response.json() == home.member.user
    params = tenant_params(actor, world)
    response = await client.get(f"{API}/users/", params=params, headers=actor.headers)
    assert response.status_code == 200
    assert {u["id"] for u in response.json()["data"]} == {
        home.owner.id,
        home.admin.id,
        home.member.id,
    }
    for kind, row in (("projects", project), ("tasks", task)):
        response = await client.get(f"{API}/{kind}/{row['id']}", headers=actor.headers)
        assert response.status_code == 200, kind
        assert response.json() == row
        response = await client.get(f"{API}/{kind}/", params=params, headers=actor.headers)
        assert response.status_code == 200, kind
        assert [r["id"] for r in response.json()["data"]] == [row["id"]]


# --- create / update tasks: yes | yes | yes | yes ------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_create_and_update_tasks(
    client: AsyncClient, make: Factories, world: World, role: str
) -> None:
    actor = world.actor(role)
    home_project = await make.project(world.home.owner)
    home_task = await make.task(world.home.owner, home_project["id"])
    # What a superuser creates goes into its own tenant.
    project = await make.project(world.root) if role == "superuser" else home_project
    response = await client.post(
        f"{API}/tasks/",
        json={"project_id": project["id"], "title": "New"},
        headers=actor.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["tenant_id"] == actor.tenant_id
    response = await client.patch(
        f"{API}/tasks/{home_task['id']}", json={"status": "done"}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"


# --- delete tasks: no (403) | yes | yes | yes ---------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_delete_tasks(client: AsyncClient, make: Factories, world: World, role: str) -> None:
    actor = world.actor(role)
    project = await make.project(world.home.owner)
    task = await make.task(world.home.owner, project["id"])
    response = await client.delete(f"{API}/tasks/{task['id']}", headers=actor.headers)
    expected = 403 if role == "member" else 204
    assert response.status_code == expected, response.text
    after = await client.get(f"{API}/tasks/{task['id']}", headers=world.home.owner.headers)
    assert after.status_code == (200 if expected == 403 else 404)


# --- create / update / delete projects: no (403) | yes | yes | yes -------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_create_update_delete_projects(
    client: AsyncClient, make: Factories, world: World, role: str
) -> None:
    actor = world.actor(role)
    project = await make.project(world.home.owner)
    allowed = role != "member"
    response = await client.post(
        f"{API}/projects/", json={"name": f"By {role}"}, headers=actor.headers
    )
    assert response.status_code == (201 if allowed else 403), response.text
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "Renamed"}, headers=actor.headers
    )
    assert response.status_code == (200 if allowed else 403), response.text
    response = await client.delete(f"{API}/projects/{project['id']}", headers=actor.headers)
    assert response.status_code == (204 if allowed else 403), response.text
    after = await client.get(f"{API}/projects/{project['id']}", headers=world.home.owner.headers)
    if allowed:
        assert after.status_code == 404
    else:
        assert after.json() == project


# --- create users in own tenant: no | members, admins | any role | any tenant --------------


def may_create(actor_role: str, new_role: str) -> bool:
    return {
        "member": False,
        "admin": new_role != "owner",
        "owner": True,
        "superuser": True,
    }[actor_role]


@pytest.mark.parametrize("new_role", USER_ROLES)
@pytest.mark.parametrize("role", ROLES)
async def test_create_users(client: AsyncClient, world: World, role: str, new_role: str) -> None:
    actor = world.actor(role)
    body = {"email": unique_email(), "password": PASSWORD, "role": new_role}
    if role == "superuser":
        body["tenant_id"] = world.home.id
    response = await client.post(f"{API}/users/", json=body, headers=actor.headers)
    listed = await client.get(f"{API}/users/", headers=world.home.owner.headers)
    emails = {user["email"] for user in listed.json()["data"]}
    if may_create(role, new_role):
        assert response.status_code == 201, response.text
        assert response.json()["role"] == new_role
        assert response.json()["tenant_id"] == world.home.id
        assert body["email"] in emails
    else:
        assert response.status_code == 403, response.text
        assert body["email"] not in emails


# --- change a user's role or active flag (and name, email, delete): -------------------------
# --- no | members only | yes | yes ------------------------------------------------------------

ACTIONS: dict[str, dict[str, Any] | None] = {
    "rename": {"full_name": "Changed"},
    "email": {"email": "PLACEHOLDER"},
    "set-member": {"role": "member"},
    "set-admin": {"role": "admin"},
    "set-owner": {"role": "owner"},
    "deactivate": {"is_active": False},
    "delete": None,
}


def expected_status(actor_role: str, target_role: str, action: str) -> int:
    if actor_role == "member":
        return 403
    if actor_role == "admin" and (target_role != "member" or action == "set-owner"):
        return 403
    return 204 if action == "delete" else 200


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("target_role", USER_ROLES)
@pytest.mark.parametrize("role", ROLES)
async def test_change_or_delete_a_user(
    client: AsyncClient, world: World, role: str, target_role: str, action: str
) -> None:
    actor = world.actor(role)
    # Another user than the actor; a second owner, so no change removes the last one.
    target = await add_user(client, world, target_role)
    path = f"{API}/users/{target['id']}"
    expected = expected_status(role, target_role, action)
    body = ACTIONS[action]
    if body is None:
        response = await client.delete(path, headers=actor.headers)
    else:
        if action == "email":
            body = {"email": unique_email("changed")}
        response = await client.patch(path, json=body, headers=actor.headers)
    assert response.status_code == expected, response.text
    after = await read_user(client, world, target["id"])
    if expected == 403:
        assert after.json() == target  # nothing changed
    elif expected == 204:
        assert after.status_code == 404
    else:
        assert body is not None
        assert response.json() == {**target, **body}
        assert after.json() == {**target, **body}


@pytest.mark.parametrize("role", ROLES)
async def test_nobody_deletes_themselves_by_id(
    client: AsyncClient, make: Factories, world: World, role: str
) -> None:
    actor = world.actor(role)
    await add_user(client, world, "owner")  # so the owner is not the last one either
    response = await client.delete(f"{API}/users/{actor.id}", headers=actor.headers)
    assert response.status_code == 403, response.text
    assert (await client.get(f"{API}/users/me", headers=actor.headers)).status_code == 200


@pytest.mark.parametrize("role", ["admin", "owner"])
async def test_admins_and_owners_on_themselves(
    client: AsyncClient, world: World, role: str
) -> None:
    """An admin is not a member: it cannot change itself through /users/{id}; an owner can."""
    actor = world.actor(role)
    await add_user(client, world, "owner")
    response = await client.patch(
        f"{API}/users/{actor.id}", json={"full_name": "Me"}, headers=actor.headers
    )
    assert response.status_code == (403 if role == "admin" else 200)


async def test_a_promotion_takes_effect_at_once(client: AsyncClient, world: World) -> None:
    member = world.home.member
    response = await client.patch(
        f"{API}/users/{member.id}", json={"role": "admin"}, headers=world.home.admin.headers
    )
    assert response.status_code == 200
    response = await client.post(
        f"{API}/users/",
        json={"email": unique_email(), "password": PASSWORD},
        headers=member.headers,
    )
    assert response.status_code == 201


async def test_a_deactivated_member_is_locked_out(client: AsyncClient, world: World) -> None:
    member = world.home.member
    response = await client.patch(
        f"{API}/users/{member.id}", json={"is_active": False}, headers=world.home.admin.headers
    )
    assert response.status_code == 200
    assert (await client.get(f"{API}/users/me", headers=member.headers)).status_code == 401


# --- the last active owner -----------------------------------------------------------------

LAST_OWNER_CASES = [
    ("owner", "set-admin"),
    ("owner", "set-member"),
    ("owner", "deactivate"),
    ("owner", "delete-me"),
    ("superuser", "set-admin"),
    ("superuser", "set-member"),
    ("superuser", "deactivate"),
    ("superuser", "delete"),
]


async def remove_owner(client: AsyncClient, world: World, role: str, action: str) -> Response:
    actor = world.actor(role)
    owner = world.home.owner
    if action == "delete-me":
        return await client.delete(f"{API}/users/me", headers=actor.headers)
    if action == "delete":
        return await client.delete(f"{API}/users/{owner.id}", headers=actor.headers)
    body = ACTIONS[action]
    return await client.patch(f"{API}/users/{owner.id}", json=body, headers=actor.headers)


@pytest.mark.parametrize(("role", "action"), LAST_OWNER_CASES)
async def test_the_last_owner_stays(
    client: AsyncClient, world: World, role: str, action: str
) -> None:
    # An inactive owner does not count.
    await add_user(client, world, "owner", is_active=False)
    response = await remove_owner(client, world, role, action)
    assert response.status_code == 409, response.text
    after = await read_user(client, world, world.home.owner.id)
    assert after.json() == world.home.owner.user


@pytest.mark.parametrize(("role", "action"), LAST_OWNER_CASES)
async def test_an_owner_with_an_active_co_owner_may_go(
    client: AsyncClient, world: World, role: str, action: str
) -> None:
    co_owner = await add_user(client, world, "owner")
    response = await remove_owner(client, world, role, action)
    assert response.status_code in (200, 204), response.text
    # Now the co-owner is the last one.
    response = await client.patch(
        f"{API}/users/{co_owner['id']}", json={"role": "admin"}, headers=world.root.headers
    )
    assert response.status_code == 409


# --- update / delete the tenant itself: no | no | yes | yes --------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_update_the_tenant(client: AsyncClient, world: World, role: str) -> None:
    actor = world.actor(role)
    path = f"/tenants/{world.home.id}" if role == "superuser" else "/tenants/me"
    body = {"name": "Renamed", "settings": {"k": "v"}}
    response = await client.patch(f"{API}{path}", json=body, headers=actor.headers)
    after = await client.get(f"{API}/tenants/me", headers=world.home.member.headers)
    if role in ("member", "admin"):
        assert response.status_code == 403
        assert after.json()["name"] == "Acme"
        assert after.json()["settings"] == {}
    else:
        assert response.status_code == 200, response.text
        assert after.json() == response.json()
        assert after.json()["name"] == "Renamed"
        assert after.json()["settings"] == {"k": "v"}


@pytest.mark.parametrize("role", ROLES)
async def test_delete_the_tenant(client: AsyncClient, world: World, role: str) -> None:
    actor = world.actor(role)
    path = f"/tenants/{world.home.id}" if role == "superuser" else "/tenants/me"
    response = await client.delete(f"{API}{path}", headers=actor.headers)
    after = await client.get(f"{API}/users/me", headers=world.home.member.headers)
    if role in ("member", "admin"):
        assert response.status_code == 403
        assert after.status_code == 200
    else:
        assert response.status_code == 204, response.text
        assert after.status_code == 401


# --- list / create tenants: no | no | no | yes ----------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_list_tenants(client: AsyncClient, world: World, role: str) -> None:
    response = await client.get(f"{API}/tenants/", headers=world.actor(role).headers)
    if role == "superuser":
        assert response.status_code == 200
        assert world.home.id in {t["id"] for t in response.json()["data"]}
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES)
async def test_create_tenants(client: AsyncClient, world: World, role: str) -> None:
    body = {"name": "New Co", "owner_email": unique_email(), "owner_password": PASSWORD}
    response = await client.post(f"{API}/tenants/", json=body, headers=world.actor(role).headers)
    login = await client.post(
        f"{API}/login/access-token",
        data={"username": body["owner_email"], "password": PASSWORD},
    )
    if role == "superuser":
        assert response.status_code == 201, response.text
        assert login.status_code == 200
    else:
        assert response.status_code == 403
        assert login.status_code == 400


# --- invite users: no | members, admins | any role | into its own tenant -------------------
# --- list / revoke invitations: no | of members, admins | yes | any tenant -------------------


async def invitation_ids(client: AsyncClient, actor: Actor, world: World) -> Response:
    params = tenant_params(actor, world)
    return await client.get(f"{API}/invitations/", params=params, headers=actor.headers)


@pytest.mark.parametrize("new_role", USER_ROLES)
@pytest.mark.parametrize("role", ROLES)
async def test_invite_users(client: AsyncClient, world: World, role: str, new_role: str) -> None:
    actor = world.actor(role)
    body = {"email": unique_email("invited"), "role": new_role}
    response = await client.post(f"{API}/invitations/", json=body, headers=actor.headers)
    listed = await client.get(f"{API}/invitations/", headers=actor.headers)
    if may_create(role, new_role):
        assert response.status_code == 201, response.text
        assert response.json()["role"] == new_role
        assert response.json()["tenant_id"] == actor.tenant_id
        assert response.json()["id"] in {row["id"] for row in listed.json()["data"]}
    else:
        assert response.status_code == 403, response.text
        owner_list = await invitation_ids(client, world.home.owner, world)
        assert owner_list.json()["count"] == 0


@pytest.mark.parametrize("invited_role", USER_ROLES)
@pytest.mark.parametrize("role", ROLES)
async def test_list_and_revoke_invitations(
    client: AsyncClient, world: World, role: str, invited_role: str
) -> None:
    actor, owner = world.actor(role), world.home.owner
    body = {"email": unique_email("invited"), "role": invited_role}
    invitation = (await client.post(f"{API}/invitations/", json=body, headers=owner.headers)).json()
    listed = await invitation_ids(client, actor, world)
    response = await client.delete(f"{API}/invitations/{invitation['id']}", headers=actor.headers)
    left = {row["id"] for row in (await invitation_ids(client, owner, world)).json()["data"]}
    if role == "member":
        assert listed.status_code == 403
    else:
        assert listed.status_code == 200
        assert [row["id"] for row in listed.json()["data"]] == [invitation["id"]]
    if may_create(role, invited_role):
        assert response.status_code == 204, response.text
        assert left == set()
    else:
        assert response.status_code == 403, response.text
        assert left == {invitation["id"]}
