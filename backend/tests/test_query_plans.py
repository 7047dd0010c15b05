"""The task list stays on an index when a tenant holds many tasks."""

import re
import uuid

from sqlalchemy import text
from sqlalchemy.sql import ClauseElement
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud
from app.core.db import engine
from app.models import TaskStatus
from tests.factories import Factories

TASKS = 100_000
PROJECTS = 20
# "Index Scan [Backward] using ix_task_...", "Index Only Scan using ...", "Bitmap Index Scan on ..."
INDEX_SCAN = re.compile(
    r"(Index Scan( Backward)?|Index Only Scan( Backward)?) using ix_task_|Bitmap Index Scan on ix_task_"
)

INSERT_PROJECTS = text(
    "INSERT INTO project (id, tenant_id, name, created_at, updated_at, version)"
    " SELECT gen_random_uuid(), :tenant_id, 'bulk ' || n, now(), now(), 1"
    " FROM generate_series(1, :projects) AS n"
)
# Round-robin over the tenant's projects and the three statuses, one second apart.
INSERT_TASKS = text(
    "INSERT INTO task (id, tenant_id, project_id, title, status, created_at, updated_at, version)"
    " SELECT gen_random_uuid(), :tenant_id, p.ids[1 + n % array_length(p.ids, 1)],"
    " 'task ' || n, (ARRAY['todo', 'in_progress', 'done'])[1 + (n / 7) % 3],"
    " now() - n * interval '1 second', now(), 1"
    " FROM generate_series(1, :tasks) AS n,"
    " (SELECT array_agg(id ORDER BY name) AS ids FROM project WHERE tenant_id = :tenant_id) AS p"
)


def explain_sql(statement: ClauseElement) -> str:
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    return f"EXPLAIN {compiled}"


async def test_tenant_project_status_list_uses_an_index(
    make: Factories, session: AsyncSession
) -> None:
    owner = await make.signup(tenant_name="Big")
    tenant_id = uuid.UUID(owner.tenant_id)
    params = {"tenant_id": tenant_id, "projects": PROJECTS, "tasks": TASKS}
    await session.exec(INSERT_PROJECTS, params=params)  # type: ignore[call-overload]
    await session.exec(INSERT_TASKS, params=params)  # type: ignore[call-overload]
    await session.exec(text("ANALYZE task"))  # type: ignore[call-overload]
    project_id = (
        await session.exec(  # type: ignore[call-overload]
            text("SELECT id FROM project WHERE tenant_id = :tenant_id AND name = 'bulk 7'"),
            params=params,
        )
    ).scalar_one()
    matching = (
        await session.exec(  # type: ignore[call-overload]
            text(
                "SELECT count(*) FROM task WHERE tenant_id = :tenant_id"
                " AND project_id = :project_id AND status = 'done'"
            ),
            params={**params, "project_id": project_id},
        )
    ).scalar_one()
    assert 1_000 < matching < 2_500  # the filter picks about 1/60 of the tenant's tasks

    statement = crud.tasks_statement(
        tenant_id=tenant_id,
        project_id=project_id,
        status=TaskStatus.done,
        assignee_id=None,
        q=None,
        sort="-created_at",
    )
    page_sql = explain_sql(statement.offset(0).limit(100))
    assert "ORDER BY task.created_at DESC, task.id" in page_sql
    # The count query, built as crud.page builds it.
    count_sql = explain_sql(select(func.count()).select_from(statement.order_by(None).subquery()))
    for sql in (page_sql, count_sql):
        plan = "\n".join(
            (await session.exec(text(sql))).scalars().all()  # type: ignore[call-overload]
        )
        assert "Seq Scan on task" not in plan, plan
        assert INDEX_SCAN.search(plan), plan
