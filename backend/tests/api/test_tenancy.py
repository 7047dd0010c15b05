"""The tenancy rule, walked over every route of the OpenAPI schema.

Another tenant's row is invisible: by id it answers 404 exactly as a random id does (before
any role check), lists never show it, and a body reference to it answers 422 exactly as a
random id does. A new route with an id parameter the walker cannot fill fails here loudly.
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.main import app
from tests.conftest import API
from tests.factories import Actor, Factories, Tenant, unique_email

ROLES = ["member", "admin", "owner"]


@dataclass
class World:
    a: Tenant
    b: Tenant
    project_of_a: dict[str, Any]
    task_of_a: dict[str, Any]
    project_of_b: dict[str, Any]
    task_of_b: dict[str, Any]
    invitation_of_a: dict[str, Any]
    invitation_of_b: dict[str, Any]


# Every path parameter of the schema must be named here: ids get tenant B's row (and a random
# uuid for comparison); the others are not ids of tenant data.
ID_OF_B: dict[str, Callable[[World], str]] = {
    "user_id": lambda world: world.b.member.id,
    "project_id": lambda world: world.project_of_b["id"],
    "task_id": lambda world: world.task_of_b["id"],
    "tenant_id": lambda world: world.b.id,
    "invitation_id": lambda world: world.invitation_of_b["id"],
}
NOT_IDS = {"email"}
# A plausible, valid body for a route with an id parameter that takes one, by the path's last
# literal segment: `/tasks/{task_id}` takes a task's, a nested `/tasks/{task_id}/comments/`
# a comment's.
BODY_FOR: dict[str, dict[str, Any]] = {
    "users": {"full_name": "Hijacked", "role": "member"},
    "projects": {"name": "Hijacked", "description": "by A"},
    "tasks": {"title": "Hijacked", "status": "done"},
    "tenants": {"name": "Hijacked"},
}
KNOWN_LISTS = {"/users/", "/projects/", "/tasks/", "/tenants/", "/invitations/"}
SUPERUSER_LISTS = {"/tenants/"}

PATH_PARAM = re.compile(r"{([^}]+)}")


def schema_paths() -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return paths


def id_routes() -> list[tuple[str, str, list[str], bool]]:
    """(method, path, id parameter names, takes a body) for every route with an id parameter."""
    routes = []
    for path, item in schema_paths().items():
        params = PATH_PARAM.findall(path)
        for name in params:
            assert name in ID_OF_B or name in NOT_IDS, (
                f"{path}: the tenancy walker has no id for path parameter {name!r}; "
                "add it to ID_OF_B (or NOT_IDS if it is not an id of tenant data)"
            )
        ids = [name for name in params if name in ID_OF_B]
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("format") == "uuid":
                    assert parameter["name"] in ID_OF_B, f"{method} {path}: {parameter['name']}"
            if ids:
                routes.append((method.upper(), path, ids, "requestBody" in operation))
    return routes


def fill(path: str, ids: list[str], value: Callable[[str], str]) -> str:
    for name in ids:
        path = path.replace(f"{{{name}}}", value(name))
    return path


def last_segment(path: str) -> str:
    """The last literal segment of a path: the collection (or action) a body is for."""
    return [part for part in path.split("/") if part and not part.startswith("{")][-1]


def body_for(path: str, takes_body: bool) -> dict[str, Any] | None:
    if not takes_body:
        return None
    segment = last_segment(path)
    assert segment in BODY_FOR, f"{path}: add a plausible body for {segment!r} to BODY_FOR"
    return BODY_FOR[segment]


def test_a_nested_route_takes_the_body_of_its_own_collection() -> None:
    assert last_segment(f"{API}/tasks/{{task_id}}") == "tasks"
    assert last_segment(f"{API}/tasks/{{task_id}}/comments/") == "comments"
    assert last_segment(f"{API}/tasks/{{task_id}}/comments/{{comment_id}}") == "comments"


async def snapshot(client: AsyncClient, world: World) -> dict[str, Any]:
    """B's rows as B's owner sees them."""
    owner = world.b.owner
    urls = {
        "user": f"{API}/users/{world.b.member.id}",
        "project": f"{API}/projects/{world.project_of_b['id']}",
        "task": f"{API}/tasks/{world.task_of_b['id']}",
        "tenant": f"{API}/tenants/me",
        "users": f"{API}/users/",
        "projects": f"{API}/projects/",
        "tasks": f"{API}/tasks/",
        "invitations": f"{API}/invitations/",
    }
    rows = {}
    for key, url in urls.items():
        response = await client.get(url, headers=owner.headers)
        assert response.status_code == 200, (key, response.text)
        rows[key] = response.json()
    return rows


async def invite(client: AsyncClient, actor: Actor) -> dict[str, Any]:
    body = {"email": unique_email("invited"), "role": "member"}
    response = await client.post(f"{API}/invitations/", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
async def world(client: AsyncClient, make: Factories) -> World:
    a = await make.tenant("A")
    b = await make.tenant("B")
    project_of_a = await make.project(a.owner, name="A's project")
    project_of_b = await make.project(b.owner, name="B's project")
    return World(
        a=a,
        b=b,
        project_of_a=project_of_a,
        task_of_a=await make.task(a.owner, project_of_a["id"], assignee_id=a.member.id),
        project_of_b=project_of_b,
        task_of_b=await make.task(b.owner, project_of_b["id"], assignee_id=b.member.id),
        invitation_of_a=await invite(client, a.owner),
        invitation_of_b=await invite(client, b.owner),
    )


def test_the_walker_knows_every_id_route() -> None:
    routes = {(method, path) for method, path, _, _ in id_routes()}
    expected = {
        (method, f"{API}/{resource}/{{{param}}}")
        for resource, param in [
            ("users", "user_id"),
            ("projects", "project_id"),
            ("tasks", "task_id"),
            ("tenants", "tenant_id"),
        ]
        for method in ("GET", "PATCH", "DELETE")
    }
    assert expected <= routes
    assert ("DELETE", f"{API}/invitations/{{invitation_id}}") in routes


@pytest.mark.parametrize("role", ROLES)
async def test_another_tenants_rows_by_id_are_404_like_random_ids(
    client: AsyncClient, world: World, role: str
) -> None:
    before = await snapshot(client, world)
    actor = world.a.by_role(role)
    walked = 0
    for method, path, ids, takes_body in id_routes():
        body = body_for(path, takes_body)
        of_b = await client.request(
            method,
            fill(path, ids, lambda name: ID_OF_B[name](world)),
            json=body,
            headers=actor.headers,
        )
        random = await client.request(
            method, fill(path, ids, lambda _: str(uuid.uuid4())), json=body, headers=actor.headers
        )
        assert of_b.status_code == 404, (role, method, path, of_b.text)
        assert (of_b.status_code, of_b.json()) == (random.status_code, random.json()), (
            role,
            method,
            path,
        )
        walked += 1
    assert walked >= 12
    assert await snapshot(client, world) == before


async def list_ids(client: AsyncClient, actor: Actor, resource: str, **params: Any) -> set[str]:
    response = await client.get(f"{API}/{resource}/", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["count"] == len(page["data"])
    return {row["id"] for row in page["data"]}


def test_the_walker_knows_every_list_route() -> None:
    lists = set()
    for path, item in schema_paths().items():
        get = item.get("get")
        if get is None or "{" in path:
            continue
        ok = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        ref = ok.get("schema", {}).get("$ref", "")
        schema = app.openapi()["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
        if {"data", "count"} <= set(schema.get("properties", {})):
            lists.add(path.removeprefix(API))
    assert lists == KNOWN_LISTS


@pytest.mark.parametrize("role", ROLES)
async def test_lists_never_show_another_tenants_rows(
    client: AsyncClient, world: World, role: str
) -> None:
    actor = world.a.by_role(role)
    a, b = world.a, world.b
    users_of_b = {b.owner.id, b.admin.id, b.member.id}
    assert await list_ids(client, actor, "users") == {a.owner.id, a.admin.id, a.member.id}
    assert await list_ids(client, actor, "projects") == {world.project_of_a["id"]}
    assert await list_ids(client, actor, "tasks") == {world.task_of_a["id"]}
    # Filters naming B's rows find nothing.
    assert await list_ids(client, actor, "tasks", project_id=world.project_of_b["id"]) == set()
    for user_id in users_of_b:
        assert await list_ids(client, actor, "tasks", assignee_id=user_id) == set()
    assert await list_ids(client, actor, "projects", q="B's") == set()
    if role != "member":
        assert await list_ids(client, actor, "invitations") == {world.invitation_of_a["id"]}
    # Naming B as the tenant of a list is refused exactly like a random tenant.
    for resource in ("users", "projects", "tasks"):
        url = f"{API}/{resource}/"
        of_b = await client.get(url, params={"tenant_id": b.id}, headers=actor.headers)
        random = await client.get(
            url, params={"tenant_id": str(uuid.uuid4())}, headers=actor.headers
        )
        assert of_b.status_code == 422, of_b.text
        assert of_b.json() == random.json()
        own = await client.get(url, params={"tenant_id": a.id}, headers=actor.headers)
        assert own.status_code == 200
    for resource in SUPERUSER_LISTS:
        response = await client.get(f"{API}{resource}", headers=actor.headers)
        assert response.status_code == 403


async def same_422(make_request: Callable[[str], Any], of_b: str) -> None:
    """A reference to B's row answers exactly what a random id does: 422."""
    response_b: Response = await make_request(of_b)
    response_random: Response = await make_request(str(uuid.uuid4()))
    assert response_b.status_code == 422, response_b.text
    assert response_b.json() == response_random.json()


@pytest.mark.parametrize("role", ROLES)
async def test_body_references_to_another_tenants_rows_are_422_like_random_ids(
    client: AsyncClient, world: World, role: str
) -> None:
    actor = world.a.by_role(role)
    before = await snapshot(client, world)
    project_of_a = world.project_of_a["id"]
    task_url = f"{API}/tasks/{world.task_of_a['id']}"

    async def create_task(**fields: Any) -> Response:
        body = {"project_id": project_of_a, "title": "T", **fields}
        return await client.post(f"{API}/tasks/", json=body, headers=actor.headers)

    async def patch_task(**fields: Any) -> Response:
        return await client.patch(task_url, json=fields, headers=actor.headers)

    await same_422(lambda ref: create_task(project_id=ref), world.project_of_b["id"])
    await same_422(lambda ref: patch_task(project_id=ref), world.project_of_b["id"])
    for user_of_b in (world.b.member.id, world.b.owner.id):
        await same_422(lambda ref: create_task(assignee_id=ref), user_of_b)
        await same_422(lambda ref: patch_task(assignee_id=ref), user_of_b)
    if role != "member":

        async def create_user(tenant_id: str) -> Response:
            body = {"email": unique_email(), "password": "a long password", "tenant_id": tenant_id}
            return await client.post(f"{API}/users/", json=body, headers=actor.headers)

        await same_422(create_user, world.b.id)
    assert await list_ids(client, actor, "tasks") == {world.task_of_a["id"]}
    response = await client.get(task_url, headers=actor.headers)
    assert response.json() == world.task_of_a
    assert len(await list_ids(client, actor, "users")) == 3
    assert await snapshot(client, world) == before
