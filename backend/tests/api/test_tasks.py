"""Tasks: validation, references, roles, lists (filters, sorts, pages, query count), versions
and the lost-update race."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import event
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import engine
from tests.conftest import API
from tests.factories import Actor, Factories, bearer

TASK_FIELDS = {
    "id",
    "tenant_id",
    "project_id",
    "title",
    "description",
    "status",
    "assignee_id",
    "due_date",
    "created_at",
    "updated_at",
    "version",
}
FORBIDDEN = {"detail": "The user doesn't have enough privileges"}
STALE = {"detail": "Precondition failed: the If-Match is stale"}
NOT_FOUND = {"detail": "Task not found"}


@asynccontextmanager
async def recorded_statements(session: AsyncSession) -> AsyncIterator[list[str]]:
    """The statements the app sends while inside: through SQLAlchemy, and straight on the
    test's asyncpg connection (the tenant context riding on BEGIN)."""
    statements: list[str] = []

    def orm(*args: Any) -> None:
        statements.append(args[2])

    def raw(record: Any) -> None:
        statements.append(record.query)

    connection = (await (await session.connection()).get_raw_connection()).driver_connection
    event.listen(engine.sync_engine, "before_cursor_execute", orm)
    connection.add_query_logger(raw)
    try:
        yield statements
    finally:
        connection.remove_query_logger(raw)
        event.remove(engine.sync_engine, "before_cursor_execute", orm)


# The test harness's own statements (join_transaction_mode's savepoints and the test's own
# tenant context), not the app's.
HARNESS_STATEMENTS = (
    "SAVEPOINT",
    "RELEASE SAVEPOINT",
    "ROLLBACK TO SAVEPOINT",
    "SELECT current_setting('app.tenant_id', true)",
    "SELECT set_config('app.tenant_id', $1, true)",
)


def bad_project() -> dict[str, Any]:
    return {
        "detail": [
            {"type": "value_error", "loc": ["body", "project_id"], "msg": "Project not found"}
        ]
    }


def bad_assignee() -> dict[str, Any]:
    return {
        "detail": [
            {
                "type": "value_error",
                "loc": ["body", "assignee_id"],
                "msg": "Assignee must be an active user of the tenant",
            }
        ]
    }


async def list_tasks(client: AsyncClient, by: Actor, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/tasks/", params=params, headers=by.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def titles(page: dict[str, Any]) -> list[str]:
    return [task["title"] for task in page["data"]]


async def get_task(client: AsyncClient, by: Actor, task_id: str) -> Response:
    return await client.get(f"{API}/tasks/{task_id}", headers=by.headers)


async def patch_task(
    client: AsyncClient, by: Actor, task_id: str, body: Any, **headers: str
) -> Response:
    return await client.patch(
        f"{API}/tasks/{task_id}", json=body, headers={**by.headers, **headers}
    )


# --- Create, read, validation --------------------------------------------------------------


async def test_create_with_defaults_and_read(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    response = await client.post(
        f"{API}/tasks/", json={"project_id": project["id"], "title": "Write"}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert set(task) == TASK_FIELDS
    assert task["tenant_id"] == owner.tenant_id
    assert task["project_id"] == project["id"]
    assert (task["title"], task["description"], task["status"]) == ("Write", None, "todo")
    assert (task["assignee_id"], task["due_date"], task["version"]) == (None, None, 1)
    response = await get_task(client, owner, task["id"])
    assert response.json() == task
    assert response.headers["ETag"] == 'W/"1"'


async def test_create_with_every_field(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    project = await make.project(tenant.owner)
    task = await make.task(
        tenant.owner,
        project["id"],
        title="Full",
        description="All of it",
        status="in_progress",
        assignee_id=tenant.member.id,
        due_date="2030-02-28",
    )
    assert task["description"] == "All of it"
    assert task["status"] == "in_progress"
    assert task["assignee_id"] == tenant.member.id
    assert task["due_date"] == "2030-02-28"


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"title": ""}, "title"),
        ({"title": "t" * 256}, "title"),
        ({"description": "d" * 10_001}, "description"),
        ({"status": "blocked"}, "status"),
        ({"status": None}, "status"),
        ({"due_date": "2030-13-01"}, "due_date"),
        ({"due_date": "tomorrow"}, "due_date"),
        ({"title": None}, "title"),
        ({"project_id": None}, "project_id"),
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"assignee_id": "not-a-uuid"}, "assignee_id"),
    ],
    ids=str,
)
async def test_invalid_create_is_422(
    client: AsyncClient, make: Factories, fields: dict[str, Any], loc: str
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    body = {"project_id": project["id"], "title": "T", **fields}
    response = await client.post(f"{API}/tasks/", json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", loc]
    assert (await list_tasks(client, owner))["count"] == 0


@pytest.mark.parametrize(("length", "expected"), [(1, 201), (255, 201)], ids=str)
async def test_title_length_limits_accept(
    client: AsyncClient, make: Factories, length: int, expected: int
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    body = {"project_id": project["id"], "title": "t" * length, "description": "d" * 10_000}
    response = await client.post(f"{API}/tasks/", json=body, headers=owner.headers)
    assert response.status_code == expected, response.text


@pytest.mark.parametrize(
    "field", ["title", "status", "project_id"], ids=lambda field: f"null-{field}"
)
async def test_patch_null_for_a_required_field_is_422(
    client: AsyncClient, make: Factories, field: str
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    task = await make.task(owner, project["id"])
    response = await patch_task(client, owner, task["id"], {field: None})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert (await get_task(client, owner, task["id"])).json() == task


async def test_patch_null_clears_the_optional_fields(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    task = await make.task(
        owner, project["id"], description="d", assignee_id=owner.id, due_date="2031-01-01"
    )
    response = await patch_task(
        client, owner, task["id"], {"description": None, "assignee_id": None, "due_date": None}
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["description"], changed["assignee_id"], changed["due_date"]) == (None,) * 3
    assert changed["title"] == task["title"]
    assert changed["version"] == 2


async def test_patch_moves_a_task_to_another_project(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    first = await make.project(owner)
    second = await make.project(owner)
    task = await make.task(owner, first["id"])
    response = await patch_task(client, owner, task["id"], {"project_id": second["id"]})
    assert response.status_code == 200
    assert response.json()["project_id"] == second["id"]


async def test_missing_task_is_404(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    missing = str(uuid.uuid4())
    assert (await get_task(client, owner, missing)).json() == NOT_FOUND
    response = await patch_task(client, owner, missing, {"title": "x"})
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    response = await client.delete(f"{API}/tasks/{missing}", headers=owner.headers)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


# --- References: project and assignee ------------------------------------------------------


async def test_project_of_another_tenant_is_422_like_a_random_one(
    client: AsyncClient, make: Factories
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    project_of_a = await make.project(a)
    project_of_b = await make.project(b)
    task = await make.task(a, project_of_a["id"])
    for project_id in (project_of_b["id"], str(uuid.uuid4())):
        response = await client.post(
            f"{API}/tasks/", json={"project_id": project_id, "title": "T"}, headers=a.headers
        )
        assert (response.status_code, response.json()) == (422, bad_project())
        response = await patch_task(client, a, task["id"], {"project_id": project_id})
        assert (response.status_code, response.json()) == (422, bad_project())
    assert (await get_task(client, a, task["id"])).json() == task
    assert (await list_tasks(client, b))["count"] == 0


async def test_assignee_must_be_an_active_user_of_the_tenant(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    owner = tenant.owner
    other = await make.signup(tenant_name="Other")
    inactive = await make.user(owner)
    response = await client.patch(
        f"{API}/users/{inactive.id}", json={"is_active": False}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    project = await make.project(owner)
    task = await make.task(owner, project["id"])
    for assignee_id in (other.id, str(uuid.uuid4()), inactive.id):
        body = {"project_id": project["id"], "title": "T", "assignee_id": assignee_id}
        response = await client.post(f"{API}/tasks/", json=body, headers=owner.headers)
        assert (response.status_code, response.json()) == (422, bad_assignee())
        response = await patch_task(client, owner, task["id"], {"assignee_id": assignee_id})
        assert (response.status_code, response.json()) == (422, bad_assignee())
    assert (await get_task(client, owner, task["id"])).json() == task
    assert (await list_tasks(client, owner))["count"] == 1
    # Any active user of the tenant, whatever the role, may be assigned.
    for actor in (tenant.member, tenant.admin, owner):
        response = await patch_task(client, owner, task["id"], {"assignee_id": actor.id})
        assert response.status_code == 200, response.text
        assert response.json()["assignee_id"] == actor.id


async def test_deleting_a_user_leaves_their_tasks_unassigned(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    project = await make.project(tenant.owner)
    theirs = await make.task(tenant.owner, project["id"], assignee_id=tenant.member.id)
    others = await make.task(tenant.owner, project["id"], assignee_id=tenant.admin.id)
    response = await client.delete(f"{API}/users/{tenant.member.id}", headers=tenant.owner.headers)
    assert response.status_code == 204, response.text
    after = (await get_task(client, tenant.owner, theirs["id"])).json()
    assert after["assignee_id"] is None
    assert after["title"] == theirs["title"]
    assert (await get_task(client, tenant.owner, others["id"])).json() == others


# --- Roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
async def test_every_role_creates_and_updates_tasks(
    client: AsyncClient, make: Factories, role: str
) -> None:
    tenant = await make.tenant()
    actor = tenant.by_role(role)
    project = await make.project(tenant.owner)
    task = await make.task(actor, project["id"], title=f"By {role}", assignee_id=actor.id)
    response = await patch_task(client, actor, task["id"], {"status": "done"})
    assert response.status_code == 200
    assert response.json()["status"] == "done"
    # Also a task somebody else created.
    other = await make.task(tenant.owner, project["id"])
    response = await patch_task(client, actor, other["id"], {"title": "Taken over"})
    assert response.status_code == 200


async def test_members_may_not_delete_tasks(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    project = await make.project(tenant.owner)
    task = await make.task(tenant.member, project["id"], assignee_id=tenant.member.id)
    response = await client.delete(f"{API}/tasks/{task['id']}", headers=tenant.member.headers)
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    assert (await get_task(client, tenant.member, task["id"])).json() == task


@pytest.mark.parametrize("role", ["admin", "owner"])
async def test_admins_and_owners_delete_tasks(
    client: AsyncClient, make: Factories, role: str
) -> None:
    tenant = await make.tenant()
    actor = tenant.by_role(role)
    project = await make.project(tenant.owner)
    task = await make.task(tenant.member, project["id"])
    response = await client.delete(f"{API}/tasks/{task['id']}", headers=actor.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await get_task(client, actor, task["id"])).status_code == 404


# --- Lists: filters ------------------------------------------------------------------------


async def test_filters(client: AsyncClient, make: Factories) -> None:
    tenant = await make.tenant()
    owner, member = tenant.owner, tenant.member
    first = await make.project(owner)
    second = await make.project(owner)
    await make.task(owner, first["id"], title="a1", status="todo", assignee_id=member.id)
    await make.task(owner, first["id"], title="a2", status="done", assignee_id=owner.id)
    await make.task(owner, first["id"], title="a3", status="in_progress")
    await make.task(owner, second["id"], title="b1", status="done", assignee_id=member.id)
    await make.task(owner, second["id"], title="b2", status="todo")

    async def found(by: Actor = owner, **params: Any) -> list[str]:
        page = await list_tasks(client, by, sort="title", **params)
        assert page["count"] == len(page["data"])
        return titles(page)

    assert await found() == ["a1", "a2", "a3", "b1", "b2"]
    assert await found(project_id=first["id"]) == ["a1", "a2", "a3"]
    assert await found(project_id=second["id"]) == ["b1", "b2"]
    assert await found(project_id=str(uuid.uuid4())) == []
    assert await found(status="done") == ["a2", "b1"]
    assert await found(status="todo") == ["a1", "b2"]
    assert await found(status="in_progress") == ["a3"]
    assert await found(assignee_id=member.id) == ["a1", "b1"]
    assert await found(assignee_id=owner.id) == ["a2"]
    assert await found(assignee_id=tenant.admin.id) == []
    assert await found(assignee_id="me") == ["a2"]
    assert await found(member, assignee_id="me") == ["a1", "b1"]
    assert await found(tenant.admin, assignee_id="me") == []
    assert await found(project_id=first["id"], status="done") == ["a2"]
    assert await found(project_id=second["id"], assignee_id=member.id, status="done") == ["b1"]
    assert await found(project_id=second["id"], status="in_progress") == []
    assert await found(q="A") == ["a1", "a2", "a3"]
    assert await found(q="2", status="todo") == ["b2"]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "blocked"},
        {"status": "DONE"},
        {"project_id": "x"},
        {"assignee_id": "you"},
        {"assignee_id": "ME"},
        {"tenant_id": "x"},
    ],
    ids=str,
)
async def test_invalid_filters_are_422(
    client: AsyncClient, make: Factories, params: dict[str, str]
) -> None:
    owner = await make.signup()
    response = await client.get(f"{API}/tasks/", params=params, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["query", next(iter(params))]


async def test_q_matches_anywhere_case_insensitively_with_wildcards_taken_literally(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    all_titles = ["100% done_x", "Fix THE bug", "snake_case", "plain", "a\\b"]
    for title in all_titles:
        await make.task(owner, project["id"], title=title)

    async def found(q: str) -> list[str]:
        page = await list_tasks(client, owner, q=q, sort="title")
        assert page["count"] == len(page["data"])
        return sorted(titles(page))

    assert await found("%") == ["100% done_x"]
    assert await found("_") == ["100% done_x", "snake_case"]
    assert await found("e_c") == ["snake_case"]
    assert await found("x_c") == []
    assert await found("1%0") == []
    assert await found("the BUG") == ["Fix THE bug"]
    assert await found("\\") == ["a\\b"]
    assert await found("") == sorted(all_titles)
    assert await found("E") == sorted(t for t in all_titles if "e" in t.lower())


# --- Lists: sorts and pages ----------------------------------------------------------------


async def test_sort_orders(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    # Creation order, title and due date all disagree; two tasks have no due date.
    rows = [
        ("charlie", "2030-03-01"),
        ("alpha", None),
        ("echo", "2030-01-01"),
        ("bravo", "2030-02-01"),
        ("delta", None),
    ]
    for title, due in rows:
        await make.task(owner, project["id"], title=title, due_date=due)
    created = [title for title, _ in rows]

    async def order(sort: str | None) -> list[str]:
        params = {} if sort is None else {"sort": sort}
        return titles(await list_tasks(client, owner, **params))

    assert await order(None) == created[::-1]
    assert await order("-created_at") == created[::-1]
    assert await order("created_at") == created
    assert await order("title") == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert await order("-title") == ["echo", "delta", "charlie", "bravo", "alpha"]
    due_first = await order("due_date")
    assert due_first[:3] == ["echo", "bravo", "charlie"]
    assert sorted(due_first[3:]) == ["alpha", "delta"]  # no due date: last
    due_last = await order("-due_date")
    assert due_last[:3] == ["charlie", "bravo", "echo"]
    assert sorted(due_last[3:]) == ["alpha", "delta"]  # no due date: last here too


@pytest.mark.parametrize("sort", ["name", "-name", "status", "due", "+title", "-", "TITLE"])
async def test_unknown_sort_is_422(client: AsyncClient, make: Factories, sort: str) -> None:
    owner = await make.signup()
    response = await client.get(f"{API}/tasks/", params={"sort": sort}, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "sort"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"skip": -1}, {"skip": 10**20}, {"limit": ""}],
    ids=str,
)
async def test_out_of_range_pages_are_422(
    client: AsyncClient, make: Factories, params: dict[str, Any]
) -> None:
    owner = await make.signup()
    response = await client.get(f"{API}/tasks/", params=params, headers=owner.headers)
    assert response.status_code == 422, response.text
    # The session still works afterwards.
    assert (await list_tasks(client, owner))["count"] == 0


async def test_count_is_the_total_matching_not_the_page(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    for i in range(7):
        await make.task(owner, project["id"], title=f"t{i}", status="done" if i % 2 else "todo")
    page = await list_tasks(client, owner, sort="title", limit=3, skip=2)
    assert (titles(page), page["count"]) == (["t2", "t3", "t4"], 7)
    page = await list_tasks(client, owner, sort="title", status="todo", limit=2, skip=1)
    assert (titles(page), page["count"]) == (["t2", "t4"], 4)
    assert await list_tasks(client, owner, skip=7) == {"data": [], "count": 7}
    assert len((await list_tasks(client, owner, limit=1))["data"]) == 1


async def test_a_list_costs_the_same_few_queries_whatever_the_page_size(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    tenant = await make.tenant()
    project = await make.project(tenant.owner)
    for i in range(30):
        await make.task(tenant.owner, project["id"], assignee_id=tenant.member.id, title=f"t{i}")
    harness = HARNESS_STATEMENTS

    async def run(limit: int) -> list[str]:
        async with recorded_statements(session) as statements:
            page = await list_tasks(client, tenant.member, limit=limit)
        assert (len(page["data"]), page["count"]) == (limit, 30)
        # SAVEPOINT / RELEASE come from the test harness (join_transaction_mode), not the app.
        return [statement for statement in statements if not statement.startswith(harness)]

    small, large = await run(3), await run(30)
    assert len(small) == len(large), large
    # One transaction, opened with the tenant context (rls: both settings sent with the
    # BEGIN outside the tests' outer transaction): the caller (user and login in one
    # query), the page and the count.
    assert len(large) == 3, large


async def test_a_short_page_knows_its_count_without_a_count_query(
    client: AsyncClient, make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    for i in range(5):
        await make.task(owner, project["id"], title=f"t{i}")
    cases = [
        ({"limit": 10}, 5, 5, False),  # one short page: the whole list
        ({"skip": 3, "limit": 10}, 2, 5, False),  # the short last page
        ({"limit": 5}, 5, 5, True),  # a full page may have more behind it
        ({"skip": 10, "limit": 10}, 0, 5, True),  # past the end: only a count tells
    ]
    for params, rows, total, counted in cases:
        async with recorded_statements(session) as statements:
            page = await list_tasks(client, owner, **params)
        assert (len(page["data"]), page["count"]) == (rows, total), params
        assert any("count(" in statement for statement in statements) is counted, params


# --- Versions and If-Match -----------------------------------------------------------------


async def test_version_counts_every_change_and_etag_follows(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    task = await make.task(owner, project["id"])
    assert task["version"] == 1
    response = await patch_task(client, owner, task["id"], {"status": "in_progress"})
    assert response.json()["version"] == 2
    response = await get_task(client, owner, task["id"])
    assert response.headers["ETag"] == 'W/"2"'
    response = await patch_task(
        client, owner, task["id"], {"title": "New"}, **{"If-Match": 'W/"2"'}
    )
    assert response.status_code == 200
    assert response.json()["version"] == 3
    assert response.json()["status"] == "in_progress"
    response = await patch_task(client, owner, task["id"], {"due_date": "2030-01-01"})
    assert response.json()["version"] == 4
    assert (await get_task(client, owner, task["id"])).headers["ETag"] == 'W/"4"'


async def test_stale_if_match_is_412_and_changes_nothing(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    task = await make.task(owner, project["id"])
    current = (await patch_task(client, owner, task["id"], {"title": "Now"})).json()
    url = f"{API}/tasks/{task['id']}"
    for if_match in ('W/"1"', "1", 'W/"99"', "garbage", "W/", '"-2"', "9" * 30):
        headers = {**owner.headers, "If-Match": if_match}
        response = await client.patch(url, json={"title": "Lost"}, headers=headers)
        assert (response.status_code, response.json()) == (412, STALE), if_match
        response = await client.delete(url, headers=headers)
        assert (response.status_code, response.json()) == (412, STALE), if_match
        assert (await get_task(client, owner, task["id"])).json() == current
    response = await client.delete(url, headers={**owner.headers, "If-Match": 'W/"2"'})
    assert response.status_code == 204
    assert (await get_task(client, owner, task["id"])).status_code == 404


async def test_concurrent_patches_with_one_if_match_let_exactly_one_win(
    committed_client: AsyncClient, session: AsyncSession
) -> None:
    make = Factories(client=committed_client, session=session)
    owner = await make.signup(tenant_name="Race")
    try:
        project = await make.project(owner)
        task = await make.task(owner, project["id"])
        for round_ in range(6):
            read = await get_task(committed_client, owner, task["id"])
            etag = read.headers["ETag"]
            version = read.json()["version"]
            titles = [f"left {round_}", f"right {round_}"]
            responses = await asyncio.gather(
                *(
                    patch_task(
                        committed_client, owner, task["id"], {"title": title}, **{"If-Match": etag}
                    )
                    for title in titles
                )
            )
            statuses = sorted(response.status_code for response in responses)
            assert statuses == [200, 412], [response.text for response in responses]
            winner = next(response.json() for response in responses if response.status_code == 200)
            after = (await get_task(committed_client, owner, task["id"])).json()
            assert after == winner
            assert after["version"] == version + 1
            assert after["title"] in titles
    finally:
        response = await committed_client.delete(f"{API}/tenants/me", headers=owner.headers)
        assert response.status_code == 204, response.text


# --- Superuser -----------------------------------------------------------------------------


async def test_superuser_lists_cover_all_tenants_and_tenant_id_narrows(
    client: AsyncClient, make: Factories
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    root = await make.superuser()
    marker = uuid.uuid4().hex
    of_a = await make.task(a, (await make.project(a))["id"], title=f"{marker} a")
    of_b = await make.task(b, (await make.project(b))["id"], title=f"{marker} b")
    assert await list_tasks(client, root, q=marker, sort="title") == {
        "data": [of_a, of_b],
        "count": 2,
    }
    assert await list_tasks(client, root, tenant_id=a.tenant_id) == {"data": [of_a], "count": 1}
    assert await list_tasks(client, root, tenant_id=str(uuid.uuid4())) == {"data": [], "count": 0}
    # A tenant's own list stays its own.
    assert await list_tasks(client, b) == {"data": [of_b], "count": 1}


async def test_superuser_changes_another_tenants_task_within_that_tenant(
    client: AsyncClient, make: Factories
) -> None:
    tenant = await make.tenant()
    root = await make.superuser()
    task = await make.task(tenant.owner, (await make.project(tenant.owner))["id"])
    response = await patch_task(client, root, task["id"], {"assignee_id": tenant.member.id})
    assert response.status_code == 200, response.text
    assert response.json()["tenant_id"] == tenant.id
    # The superuser's own account is not of that tenant.
    response = await patch_task(client, root, task["id"], {"assignee_id": root.id})
    assert (response.status_code, response.json()) == (422, bad_assignee())
    response = await client.delete(f"{API}/tasks/{task['id']}", headers=root.headers)
    assert response.status_code == 204


# --- Hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"project_id": "%s", "title": "a\\u0000b"}',
        '{"project_id": "%s", "title": "T", "description": "\\u0000"}',
        '{"project_id": "%s", "title": "\\ud800"}',
        '{"project_id": "%s", "title": "T", "description": "x\\udfff"}',
        '{"project_id": "%s", "title": "T",',
    ],
    ids=["nul-title", "nul-description", "lone-high-surrogate", "lone-low-surrogate", "truncated"],
)
async def test_hostile_json_is_422(client: AsyncClient, make: Factories, raw: str) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    task = await make.task(owner, project["id"])
    headers = {**owner.headers, "Content-Type": "application/json"}
    response = await client.post(f"{API}/tasks/", content=raw % project["id"], headers=headers)
    assert response.status_code == 422, response.text
    response = await client.patch(
        f"{API}/tasks/{task['id']}", content=raw % project["id"], headers=headers
    )
    assert response.status_code == 422, response.text
    assert (await list_tasks(client, owner)) == {"data": [task], "count": 1}


@pytest.mark.parametrize("q", ["\x00", "abc\x00", "%00"], ids=repr)
async def test_nul_in_q_is_422(client: AsyncClient, make: Factories, q: str) -> None:
    owner = await make.signup()
    response = await client.get(f"{API}/tasks/", params={"q": q}, headers=owner.headers)
    if q == "%00":  # a literal "%00" is just three characters
        assert response.status_code == 200
        return
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "q"]
    response = await client.get(f"{API}/projects/", params={"q": q}, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert (await list_tasks(client, owner))["count"] == 0


async def test_invalid_utf8_in_the_query_string_is_not_a_500(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    for raw in ("q=%ED%A0%80", "q=%FF%FE", "q=%C0%80"):
        response = await client.get(f"{API}/tasks/?{raw}", headers=owner.headers)
        assert response.status_code in (200, 422), (raw, response.text)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"])
async def test_non_uuid_ids_in_the_path_are_422(
    client: AsyncClient, make: Factories, method: str, bad_id: str
) -> None:
    owner = await make.signup()
    for resource, loc in (("tasks", "task_id"), ("projects", "project_id")):
        response = await client.request(
            method,
            f"{API}/{resource}/{bad_id}",
            json={"title": "x"} if method == "PATCH" else None,
            headers=owner.headers,
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["path", loc]


async def test_fields_the_service_owns_cannot_be_set_through_the_body(
    client: AsyncClient, make: Factories
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    project = await make.project(a)
    owned = {"id": str(uuid.uuid4()), "tenant_id": b.tenant_id, "version": 50}
    task = await make.task(a, project["id"], **owned)
    assert (task["tenant_id"], task["version"]) == (a.tenant_id, 1)
    assert task["id"] != owned["id"]
    response = await patch_task(client, a, task["id"], {"title": "Moved?", **owned})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["id"], changed["tenant_id"], changed["version"]) == (task["id"], a.tenant_id, 2)
    assert (await list_tasks(client, b))["count"] == 0


async def test_deleting_the_assignee_bumps_the_version_of_their_tasks(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    member = await make.user(owner)
    project = await make.project(owner)
    task = await make.task(owner, project["id"], assignee_id=member.id)
    response = await client.delete(f"{API}/users/{member.id}", headers=owner.headers)
    assert response.status_code == 204
    response = await client.get(f"{API}/tasks/{task['id']}", headers=owner.headers)
    assert response.json()["assignee_id"] is None
    assert response.json()["version"] == task["version"] + 1
    assert response.headers["ETag"] == f'W/"{task["version"] + 1}"'
    stale = await client.patch(
        f"{API}/tasks/{task['id']}",
        json={"title": "stale write"},
        headers={**owner.headers, "If-Match": f'W/"{task["version"]}"'},
    )
    assert stale.status_code == 412


# --- Every route checks the caller on every request -----------------------------------------


async def test_a_revoked_login_stops_at_once_on_every_task_route(
    client: AsyncClient, make: Factories
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    task = await make.task(owner, project["id"])
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{API}/users/me", None),
        ("GET", f"{API}/tasks/?project_id={project['id']}&limit=20", None),
        ("GET", f"{API}/tasks/{task['id']}", None),
        ("POST", f"{API}/tasks/", {"project_id": project["id"], "title": "after"}),
        ("PATCH", f"{API}/tasks/{task['id']}", {"title": "after"}),
        # A malformed id or body still answers 401 first.
        ("GET", f"{API}/tasks/not-a-uuid", None),
        ("PATCH", f"{API}/tasks/not-a-uuid", {"title": ""}),
        ("POST", f"{API}/tasks/", {"title": ""}),
    ]
    for (method, url, body), expected in zip(
        requests, (200, 200, 200, 201, 200, 422, 422, 422), strict=True
    ):
        response = await client.request(method, url, json=body, headers=owner.headers)
        assert response.status_code == expected, (method, url, response.text)
    assert (await client.post(f"{API}/logout", headers=owner.headers)).status_code == 204
    for method, url, body in requests:
        response = await client.request(method, url, json=body, headers=owner.headers)
        assert response.status_code == 401, (method, url, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # The refused writes changed nothing: two tasks (one created before), one PATCH applied.
    again = bearer((await make.login(owner.email))["access_token"])
    listed = await client.get(f"{API}/tasks/?project_id={project['id']}", headers=again)
    assert listed.json()["count"] == 2
    assert (await client.get(f"{API}/tasks/{task['id']}", headers=again)).json()["version"] == 2
