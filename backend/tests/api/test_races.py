"""Races on unique values: requests fired side by side on committed data answer 409, never
500, and leave exactly one row behind."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import sqlalchemy as sa
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud
from app.core.db import set_tenant_context
from app.models import Project, Tenant, User, UserCreate
from tests.conftest import API
from tests.factories import PASSWORD, across_tenants, bearer, purge, unique_email

SIDE_BY_SIDE = 4


async def side_by_side(http: AsyncClient, calls: list[Awaitable[Response]]) -> list[int]:
    """Warm the pool first, so the calls really run at once; their statuses, in order."""
    await asyncio.gather(*(http.get(f"{API}/utils/ready/") for _ in calls))
    responses = await asyncio.gather(*calls, return_exceptions=True)
    return [getattr(r, "status_code", repr(r)) for r in responses]


async def count(engine: AsyncEngine, statement: Any) -> int:
    async with across_tenants(engine) as connection:
        return int((await connection.execute(statement)).scalar_one())


class Made:
    """Tenants and emails a test commits, purged at its end."""

    def __init__(self, http: AsyncClient) -> None:
        self.http = http
        self.tenant_ids: set[str] = set()
        self.emails: list[str] = []

    async def owner(self) -> dict[str, str]:
        """A new tenant by signup; its owner's auth headers."""
        email = unique_email("racer")
        body = {"email": email, "password": PASSWORD, "tenant_name": "Race"}
        response = await self.http.post(f"{API}/users/signup", json=body)
        assert response.status_code == 201, response.text
        self.tenant_ids.add(response.json()["tenant_id"])
        return await self.headers(email)

    async def headers(self, email: str) -> dict[str, str]:
        self.emails.append(email)
        response = await self.http.post(
            f"{API}/login/access-token", data={"username": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])


@pytest.fixture
async def made(committed_client: AsyncClient, engine: AsyncEngine) -> AsyncIterator[Made]:
    made = Made(committed_client)
    try:
        yield made
    finally:
        await purge(engine, made.tenant_ids, made.emails)


async def test_two_projects_with_one_name_at_once(made: Made, engine: AsyncEngine) -> None:
    headers = await made.owner()
    name = f"Launch {uuid.uuid4()}"
    statuses = await side_by_side(
        made.http,
        [
            made.http.post(f"{API}/projects/", json={"name": name}, headers=headers)
            for _ in range(SIDE_BY_SIDE)
        ],
    )
    assert sorted(statuses) == [201] + [409] * (SIDE_BY_SIDE - 1), statuses
    query = sa.select(sa.func.count()).select_from(Project).where(col(Project.name) == name)
    assert await count(engine, query) == 1


async def test_two_projects_renamed_to_one_name_at_once(made: Made, engine: AsyncEngine) -> None:
    headers = await made.owner()
    ids = []
    for _ in range(SIDE_BY_SIDE):
        response = await made.http.post(
            f"{API}/projects/", json={"name": f"P {uuid.uuid4()}"}, headers=headers
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    name = f"Renamed {uuid.uuid4()}"
    statuses = await side_by_side(
        made.http,
        [
            made.http.patch(f"{API}/projects/{id_}", json={"name": name}, headers=headers)
            for id_ in ids
        ],
    )
    assert sorted(statuses) == [200] + [409] * (SIDE_BY_SIDE - 1), statuses
    query = sa.select(sa.func.count()).select_from(Project).where(col(Project.name) == name)
    assert await count(engine, query) == 1


async def test_two_tenants_with_one_first_owner_at_once(made: Made, engine: AsyncEngine) -> None:
    root_email = unique_email("root")
    async with AsyncSession(engine, expire_on_commit=False) as session:
        await set_tenant_context(session, tenant_id=None, cross_tenant=True)  # as seeding does
        created = await crud.create_tenant_with_owner(
            session=session,
            tenant_name="Platform",
            owner_in=UserCreate(email=root_email, password=PASSWORD),
            is_superuser=True,
        )
        assert created is not None
    made.tenant_ids.add(str(created[0].id))
    root = await made.headers(root_email)
    owner_email = unique_email("first-owner")
    made.emails.append(owner_email)
    name = f"Twin tenant {uuid.uuid4()}"
    body = {"name": name, "owner_email": owner_email, "owner_password": PASSWORD}
    statuses = await side_by_side(
        made.http,
        [made.http.post(f"{API}/tenants/", json=body, headers=root) for _ in range(SIDE_BY_SIDE)],
    )
    async with across_tenants(engine) as connection:
        made.tenant_ids |= {
            str(id_)
            for id_ in (
                await connection.execute(sa.select(Tenant.id).where(col(Tenant.name) == name))
            ).scalars()
        }
    assert sorted(statuses) == [201] + [409] * (SIDE_BY_SIDE - 1), statuses
    assert len(made.tenant_ids) == 2  # the platform's and one new: no tenant without owner
    query = sa.select(sa.func.count()).select_from(User).where(col(User.email) == owner_email)
    assert await count(engine, query) == 1


async def test_two_users_with_one_email_at_once(made: Made, engine: AsyncEngine) -> None:
    first, second = await made.owner(), await made.owner()
    email = unique_email("contested")
    made.emails.append(email)
    body = {"email": email, "password": PASSWORD}
    statuses = await side_by_side(
        made.http,
        [
            made.http.post(f"{API}/users/", json=body, headers=first),
            made.http.post(f"{API}/users/", json=body, headers=second),
            made.http.patch(f"{API}/users/me", json={"email": email}, headers=first),
            made.http.patch(f"{API}/users/me", json={"email": email}, headers=second),
        ],
    )
    assert sorted(statuses) in ([200, 409, 409, 409], [201, 409, 409, 409]), statuses
    query = sa.select(sa.func.count()).select_from(User).where(col(User.email) == email)
    assert await count(engine, query) == 1


async def blocked_on_a_lock(engine: AsyncEngine, at_least: int = 1) -> None:
    """Return once `at_least` of the service's connections wait for a row lock (bounded)."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(200):
        async with engine.connect() as connection:
            if (await connection.execute(waiting)).scalar_one() >= at_least:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("no request came to wait for the lock")


async def test_an_assignee_deactivated_while_a_task_is_written_is_not_assigned(
    made: Made, engine: AsyncEngine
) -> None:
    """The assignee check and the task's write share one transaction, the assignee held
    until the commit: a deactivation under way when a task names them decides first."""
    headers = await made.owner()
    email = unique_email("assignee")
    body = {"email": email, "password": PASSWORD}
    member = await made.http.post(f"{API}/users/", json=body, headers=headers)
    assert member.status_code == 201, member.text
    made.emails.append(email)
    project = await made.http.post(f"{API}/projects/", json={"name": "P"}, headers=headers)
    task = {"project_id": project.json()["id"], "title": "t", "assignee_id": member.json()["id"]}
    async with across_tenants(engine) as connection:  # a deactivation, not yet committed
        await connection.execute(
            sa.update(User).where(col(User.id) == member.json()["id"]).values(is_active=False)
        )
        created = asyncio.create_task(made.http.post(f"{API}/tasks/", json=task, headers=headers))
        await blocked_on_a_lock(engine)
    response = await created
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "assignee_id"]
