"""The schema itself keeps the tenancy rule and the delete rules, whatever the app does."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.factories import Factories

INSERT_TASK = text(
    "INSERT INTO task (id, tenant_id, project_id, title, status, assignee_id, created_at,"
    " updated_at, version) VALUES (:id, :tenant_id, :project_id, 'x', 'todo', :assignee_id,"
    " now(), now(), 1)"
)


@pytest.mark.parametrize(
    ("foreign", "constraint"),
    [
        ("project", "fk_task_tenant_id_project_id_project"),
        ("assignee", "fk_task_tenant_id_assignee_id_user"),
    ],
)
async def test_task_pointing_into_another_tenant_is_refused(
    make: Factories, session: AsyncSession, foreign: str, constraint: str
) -> None:
    """Its project, or its assignee, of another tenant: the composite keys refuse both."""
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    project_of_a, project_of_b = await make.project(a), await make.project(b)
    params = {
        "id": uuid.uuid4(),
        "tenant_id": a.tenant_id,
        "project_id": project_of_b["id"] if foreign == "project" else project_of_a["id"],
        "assignee_id": b.id if foreign == "assignee" else None,
    }
    with pytest.raises(IntegrityError, match=constraint):
        async with session.begin_nested():
            await session.exec(INSERT_TASK, params=params)  # type: ignore[call-overload]


async def test_uppercase_email_is_refused_by_the_database(
    make: Factories, session: AsyncSession
) -> None:
    a = await make.signup()
    with pytest.raises(IntegrityError, match="ck_user_email_lowercase"):
        async with session.begin_nested():
            await session.exec(  # type: ignore[call-overload]
                text("UPDATE \"user\" SET email = 'UPPER@EXAMPLE.COM' WHERE id = :id"),
                params={"id": a.id},
            )


async def test_deleting_a_user_unassigns_their_tasks_but_keeps_the_tenant(
    make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup()
    member = await make.user(owner)
    project = await make.project(owner)
    task = await make.task(owner, project["id"], assignee_id=member.id)
    await session.exec(text('DELETE FROM "user" WHERE id = :id'), params={"id": member.id})  # type: ignore[call-overload]
    row = (
        await session.exec(  # type: ignore[call-overload]
            text("SELECT tenant_id, assignee_id FROM task WHERE id = :id"),
            params={"id": task["id"]},
        )
    ).one()
    assert str(row.tenant_id) == owner.tenant_id
    assert row.assignee_id is None


async def test_deleting_a_tenant_removes_all_of_its_rows(
    make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup()
    project = await make.project(owner)
    await make.task(owner, project["id"], assignee_id=owner.id)
    await session.exec(text("DELETE FROM tenant WHERE id = :id"), params={"id": owner.tenant_id})  # type: ignore[call-overload]
    for table in ("project", "task", '"user"'):
        count = (
            await session.exec(  # type: ignore[call-overload]
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :id"),
                params={"id": owner.tenant_id},
            )
        ).scalar_one()
        assert count == 0, table
