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


async def test_task_pointing_into_another_tenants_project_is_refused(
    make: Factories, session: AsyncSession
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    project_of_b = await make.project(b)
    with pytest.raises(IntegrityError, match="fk_task_tenant_id_project_id_project"):
        async with session.begin_nested():
            await session.exec(  # type: ignore[call-overload]
                INSERT_TASK,
                params={
                    "id": uuid.uuid4(),
                    "tenant_id": a.tenant_id,
                    "project_id": project_of_b["id"],
                    "assignee_id": None,
                },
            )


async def test_task_assigned_to_another_tenants_user_is_refused(
    make: Factories, session: AsyncSession
) -> None:
    a = await make.signup(tenant_name="A")
    b = await make.signup(tenant_name="B")
    project_of_a = await make.project(a)
    with pytest.raises(IntegrityError, match="fk_task_tenant_id_assignee_id_user"):
        async with session.begin_nested():
            await session.exec(  # type: ignore[call-overload]
                INSERT_TASK,
                params={
                    "id": uuid.uuid4(),
                    "tenant_id": a.tenant_id,
                    "project_id": project_of_a["id"],
                    "assignee_id": b.id,
                },
            )


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
