"""Projects: validation, uniqueness, roles, lists (filter, sort, pages) and versions."""

import uuid
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.conftest import API
from tests.factories import Actor, Factories

PROJECT_FIELDS = {"id", "tenant_id", "name", "description", "created_at", "updated_at", "version"}
NAME_TAKEN = {"detail": "A project with this name already exists in the tenant"}
FORBIDDEN = {"detail": "The user doesn't have enough privileges"}
STALE = {"detail": "Precondition failed: the If-Match is stale"}
NOT_FOUND = {"detail": "Project not found"}


async def list_projects(client: AsyncClient, by: Actor, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/projects/", params=params, headers=by.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def names(page: dict[str, Any]) -> list[str]:
    return [project["name"] for project in page["data"]]


async def get_project(client: AsyncClient, by: Actor, project_id: str) -> Response:
    return await client.get(f"{API}/projects/{project_id}", headers=by.headers)


# --- Create, read, validation --------------------------------------------------------------


async def test_create_and_read_a_project(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/projects/", json={"name": "Apollo", "description": "Moon"}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == PROJECT_FIELDS
    assert created["name"] == "Apollo"
    assert created["description"] == "Moon"
    assert created["tenant_id"] == owner.tenant_id
    assert created["version"] == 1
    response = await get_project(client, owner, created["id"])
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["ETag"] == 'W/"1"'


async def test_description_is_optional(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    project = await make.project(owner, name="Bare")
    assert project["description"] is None


@pytest.mark.parametrize(
    ("length", "expected"), [(0, 422), (1, 201), (255, 201), (256, 422)], ids=str
)
async def test_name_length(
    client: AsyncClient, make: Factories, length: int, expected: int
) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/projects/", json={"name": "n" * length}, headers=owner.headers
    )
    assert response.status_code == expected, response.text
    if expected == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(("length", "expected"), [(10_000, 201), (10_001, 422)], ids=str)
async def test_description_length(
    client: AsyncClient, make: Factories, length: int, expected: int
) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/projects/", json={"name": "P", "description": "d" * length}, headers=owner.headers
    )
    assert response.status_code == expected, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "n" * 256},
        {"description": "d" * 10_001},
        {"name": None},
        {"name": 5},
    ],
    ids=["empty-name", "long-name", "long-description", "null-name", "number-name"],
)
async def test_invalid_patch_is_422_and_changes_nothing(
    client: AsyncClient, make: Factories, body: dict[str, Any]
) -> None:
    owner = await make.signup()
    project = await make.project(owner, name="Keep", description="kept")
    response = await client.patch(
        f"{API}/projects/{project['id']}", json=body, headers=owner.headers
    )
    assert response.status_code == 422, response.text
    assert (await get_project(client, owner, project["id"])).json() == project


async def test_patch_null_description_clears_it(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    project = await make.project(owner, description="something")
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"description": None}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["description"] is None
    assert response.json()["name"] == project["name"]


async def test_missing_project_is_404(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    missing = uuid.uuid4()
    assert (await get_project(client, owner, str(missing))).json() == NOT_FOUND
    for method in ("PATCH", "DELETE"):
        response = await client.request(
            method,
            f"{API}/projects/{missing}",
            json={"name": "x"} if method == "PATCH" else None,
            headers=owner.headers,
        )
        assert response.status_code == 404, method
        assert response.json() == NOT_FOUND


# --- Unique names --------------------------------------------------------------------------


async def test_duplicate_name_in_one_tenant_is_409(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    await make.project(owner, name="Twin")
    response = await client.post(f"{API}/projects/", json={"name": "Twin"}, headers=owner.headers)
    assert response.status_code == 409
    assert response.json() == NAME_TAKEN
    assert (await list_projects(client, owner))["count"] == 1


async def test_renaming_onto_a_taken_name_is_409_and_changes_nothing(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    await make.project(owner, name="Taken")
    project = await make.project(owner, name="Free")
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "Taken"}, headers=owner.headers
    )
    assert response.status_code == 409
    assert response.json() == NAME_TAKEN
    assert (await get_project(client, owner, project["id"])).json() == project
    # The session is still usable after the conflict, and a free name still works.
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "Other"}, headers=owner.headers
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2


async def test_same_name_in_another_tenant_is_fine(client: AsyncClient, make: Factories) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    first = await make.project(a, name="Shared name")
    second = await make.project(b, name="Shared name")
    assert first["tenant_id"] != second["tenant_id"]
    # Renaming onto a name only another tenant uses is fine too.
    await make.project(a, name="Only in A")
    third = await make.project(b, name="Third")
    response = await client.patch(
        f"{API}/projects/{third['id']}", json={"name": "Only in A"}, headers=b.headers
    )
    assert response.status_code == 200, response.text


# --- Roles ---------------------------------------------------------------------------------


async def test_members_may_not_create_update_or_delete_projects(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    project = await make.project(tenant.owner, name="Guarded")
    member = tenant.member
    response = await client.post(f"{API}/projects/", json={"name": "M"}, headers=member.headers)
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "M"}, headers=member.headers
    )
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    response = await client.delete(f"{API}/projects/{project['id']}", headers=member.headers)
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    # Members still read.
    assert (await get_project(client, member, project["id"])).json() == project
    assert names(await list_projects(client, member)) == ["Guarded"]


@pytest.mark.parametrize("role", ["admin", "owner"])
async def test_admins_and_owners_manage_projects(
    client: AsyncClient, make: Factories, role: str
) -> None:
    tenant = await make.tenant()
    actor = tenant.by_role(role)
    project = await make.project(actor, name=f"By {role}")
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "Renamed"}, headers=actor.headers
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    response = await client.delete(f"{API}/projects/{project['id']}", headers=actor.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await get_project(client, actor, project["id"])).status_code == 404


async def test_deleting_a_project_deletes_its_tasks(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    doomed = await make.project(owner, name="Doomed")
    kept = await make.project(owner, name="Kept")
    doomed_tasks = [await make.task(owner, doomed["id"]) for _ in range(2)]
    kept_task = await make.task(owner, kept["id"])
    response = await client.delete(f"{API}/projects/{doomed['id']}", headers=owner.headers)
    assert response.status_code == 204
    for task in doomed_tasks:
        response = await client.get(f"{API}/tasks/{task['id']}", headers=owner.headers)
        assert response.status_code == 404
    response = await client.get(f"{API}/tasks/", headers=owner.headers)
    assert [task["id"] for task in response.json()["data"]] == [kept_task["id"]]
    assert response.json()["count"] == 1


# --- Lists ---------------------------------------------------------------------------------


async def test_q_matches_anywhere_case_insensitively_with_wildcards_taken_literally(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    all_names = ["100% done_x", "plain", "Mixed CASE", "under_score", "back\\slash", "percentless"]
    for name in all_names:
        await make.project(owner, name=name)

    async def found(q: str) -> list[str]:
        page = await list_projects(client, owner, q=q, sort="name")
        assert page["count"] == len(page["data"])
        return sorted(names(page))

    assert await found("%") == ["100% done_x"]
    assert await found("_") == ["100% done_x", "under_score"]
    assert await found("0% d") == ["100% done_x"]
    assert await found("DONE") == ["100% done_x"]
    assert await found("case") == ["Mixed CASE"]
    assert await found("r_s") == ["under_score"]
    assert await found("n_s") == []  # `_` is not "any character"
    assert await found("p%t") == []  # `%` is not "anything"
    assert await found("\\") == ["back\\slash"]
    assert await found("A") == sorted(name for name in all_names if "a" in name.lower())
    assert await found("A") == ["Mixed CASE", "back\\slash", "plain"]
    assert await found("zzz") == []


async def test_sort_orders(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    created = ["bravo", "delta", "alpha", "charlie"]
    for name in created:
        await make.project(owner, name=name)
    assert names(await list_projects(client, owner)) == created[::-1]  # -created_at default
    assert names(await list_projects(client, owner, sort="-created_at")) == created[::-1]
    assert names(await list_projects(client, owner, sort="created_at")) == created
    assert names(await list_projects(client, owner, sort="name")) == sorted(created)
    assert names(await list_projects(client, owner, sort="-name")) == sorted(created)[::-1]


@pytest.mark.parametrize("sort", ["title", "updated_at", "+name", "NAME", "name,id", ""])
async def test_unknown_sort_is_422(client: AsyncClient, make: Factories, sort: str) -> None:
    owner = await make.signup()
    response = await client.get(f"{API}/projects/", params={"sort": sort}, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "sort"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": -1}, {"skip": -1}, {"limit": "x"}, {"skip": "1.5"}],
    ids=str,
)
async def test_out_of_range_pages_are_422(
    client: AsyncClient, make: Factories, params: dict[str, Any]
) -> None:
    owner = await make.signup()
    response = await client.get(f"{API}/projects/", params=params, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", next(iter(params))]


async def test_count_is_the_total_not_the_page(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    for i in range(5):
        await make.project(owner, name=f"p{i}")
    await make.project(owner, name="other")
    page = await list_projects(client, owner, sort="name", limit=2, skip=1)
    assert names(page) == ["p0", "p1"]
    assert page["count"] == 6
    page = await list_projects(client, owner, sort="name", q="p", limit=2, skip=3)
    assert names(page) == ["p3", "p4"]
    assert page["count"] == 5
    page = await list_projects(client, owner, skip=50)
    assert page == {"data": [], "count": 6}
    assert (await list_projects(client, owner, limit=1))["count"] == 6
    assert len((await list_projects(client, owner, limit=100))["data"]) == 6


async def test_lists_never_show_another_tenants_projects(
    client: AsyncClient, make: Factories
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    mine = await make.project(a, name="Same")
    await make.project(b, name="Same")
    await make.project(b, name="Only B")
    page = await list_projects(client, a)
    assert page == {"data": [mine], "count": 1}
    assert await list_projects(client, a, q="Only") == {"data": [], "count": 0}


async def test_superuser_lists_cover_all_tenants_and_tenant_id_narrows(
    client: AsyncClient, make: Factories
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    root = await make.superuser()
    marker = uuid.uuid4().hex
    of_a = await make.project(a, name=f"{marker} a")
    of_b = await make.project(b, name=f"{marker} b")
    page = await list_projects(client, root, q=marker, sort="name")
    assert page == {"data": [of_a, of_b], "count": 2}
    assert await list_projects(client, root, q=marker, tenant_id=b.tenant_id) == {
        "data": [of_b],
        "count": 1,
    }
    everything = await list_projects(client, root, tenant_id=a.tenant_id)
    assert everything == {"data": [of_a], "count": 1}


async def test_superuser_reaches_any_tenants_project_and_creates_in_its_own(
    client: AsyncClient, make: Factories
) -> None:
    a = await make.signup(tenant_name="A")
    root = await make.superuser()
    project = await make.project(a, name="Of A")
    assert (await get_project(client, root, project["id"])).json() == project
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "By root"}, headers=root.headers
    )
    assert response.status_code == 200
    assert response.json()["tenant_id"] == a.tenant_id
    own = await make.project(root, name="Root's")
    assert own["tenant_id"] == root.tenant_id
    response = await client.delete(f"{API}/projects/{project['id']}", headers=root.headers)
    assert response.status_code == 204


# --- Versions and If-Match -----------------------------------------------------------------


async def test_version_counts_every_change_and_etag_follows(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    project = await make.project(owner, name="V")
    assert project["version"] == 1
    url = f"{API}/projects/{project['id']}"
    response = await client.patch(url, json={"name": "V2"}, headers=owner.headers)
    assert response.json()["version"] == 2
    assert response.json()["updated_at"] >= project["updated_at"]
    response = await client.get(url, headers=owner.headers)
    assert response.headers["ETag"] == 'W/"2"'
    response = await client.patch(
        url, json={"description": "d"}, headers={**owner.headers, "If-Match": 'W/"2"'}
    )
    assert response.status_code == 200
    assert response.json()["version"] == 3
    assert (await client.get(url, headers=owner.headers)).headers["ETag"] == 'W/"3"'


async def test_stale_if_match_is_412_and_changes_nothing(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    project = await make.project(owner, name="Guarded")
    url = f"{API}/projects/{project['id']}"
    current = (await client.patch(url, json={"name": "Now"}, headers=owner.headers)).json()
    for if_match in ('W/"1"', '"1"', 'W/"3"', "garbage", 'W/"x"', ""):
        stale = {**owner.headers, "If-Match": if_match}
        response = await client.patch(url, json={"name": "Lost"}, headers=stale)
        assert (response.status_code, response.json()) == (412, STALE), if_match
        response = await client.delete(url, headers=stale)
        assert (response.status_code, response.json()) == (412, STALE), if_match
        assert (await client.get(url, headers=owner.headers)).json() == current
    response = await client.delete(url, headers={**owner.headers, "If-Match": 'W/"2"'})
    assert response.status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404


@pytest.mark.parametrize(
    "raw",
    ['{"name": "a\\u0000b"}', '{"name": "P", "description": "\\u0000"}', '{"name": "\\ud800"}'],
    ids=["nul-name", "nul-description", "lone-surrogate"],
)
async def test_hostile_json_is_422(client: AsyncClient, make: Factories, raw: str) -> None:
    owner = await make.signup()
    project = await make.project(owner, name="Safe")
    headers = {**owner.headers, "Content-Type": "application/json"}
    response = await client.post(f"{API}/projects/", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    response = await client.patch(f"{API}/projects/{project['id']}", content=raw, headers=headers)
    assert response.status_code == 422, response.text
    assert await list_projects(client, owner) == {"data": [project], "count": 1}


async def test_fields_the_service_owns_cannot_be_set_through_the_body(
    client: AsyncClient, make: Factories
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    owned = {"id": str(uuid.uuid4()), "tenant_id": b.tenant_id, "version": 50}
    project = await make.project(a, name="Mine", **owned)
    assert (project["tenant_id"], project["version"]) == (a.tenant_id, 1)
    assert project["id"] != owned["id"]
    response = await client.patch(
        f"{API}/projects/{project['id']}", json={"name": "Still mine", **owned}, headers=a.headers
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["id"], changed["tenant_id"], changed["version"]) == (
        project["id"],
        a.tenant_id,
        2,
    )
    assert (await list_projects(client, b))["count"] == 0
