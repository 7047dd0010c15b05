"""PostgreSQL itself keeps tenants apart (row-level security), whatever the crud layer does.

The app connects as a role that is not superuser, has no BYPASSRLS and owns nothing; every
tenant-owned table has RLS enabled and forced with a policy on `app.tenant_id` and
`app.cross_tenant` (see app/core/rls.py and app/core/db.py).
"""

import os
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import crud
from app.core import roles
from app.core.config import settings
from app.core.db import make_engine, set_tenant_context
from app.models import Project, Tenant
from tests.conftest import API, OWNER_URL, SERVICE_ROLE
from tests.factories import Factories, across_tenants, purge

ROOT_DIR = Path(__file__).resolve().parents[2]

# --- The crud layer with its tenant filters forgotten ----------------------------------------

filtered_list_projects = crud.list_projects
filtered_list_tasks = crud.list_tasks
filtered_list_users = crud.list_users
filtered_create_project = crud.create_project
filtered_create_user = crud.create_user


filtered_get_caller = crud.get_caller


async def row_anywhere(*, session: AsyncSession, model: Any, row_id: uuid.UUID, **_: Any) -> Any:
    return (await session.exec(select(model).where(model.id == row_id))).first()


async def caller_and_row_anywhere(
    *, session: AsyncSession, model: Any, row_id: uuid.UUID, **caller: Any
) -> Any:
    """The path loaders' statement with the row's tenant condition gone."""
    user = await filtered_get_caller(session=session, **caller)
    return (
        None
        if user is None
        else (user, await row_anywhere(session=session, model=model, row_id=row_id))
    )


async def list_projects_anywhere(**kwargs: Any) -> Any:
    return await filtered_list_projects(**{**kwargs, "tenant_id": None})


async def list_tasks_anywhere(**kwargs: Any) -> Any:
    return await filtered_list_tasks(**{**kwargs, "tenant_id": None})


async def list_users_anywhere(**kwargs: Any) -> Any:
    return await filtered_list_users(**{**kwargs, "tenant_id": None})


def forget_tenant_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tenant filter of the reads the routes and path loaders use, gone."""
    for name, unfiltered in {
        "get_caller_and_row": caller_and_row_anywhere,
        "get_row": row_anywhere,
        "list_projects": list_projects_anywhere,
        "list_tasks": list_tasks_anywhere,
        "list_users": list_users_anywhere,
    }.items():
        monkeypatch.setattr(crud, name, unfiltered)


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["data"]}


async def test_without_the_crud_filters_the_database_still_shows_one_tenant(
    client: AsyncClient, make: Factories, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await make.tenant("A"), await make.tenant("B")
    project_a, project_b = await make.project(a.owner), await make.project(b.owner)
    task_a = await make.task(a.owner, project_a["id"], assignee_id=a.member.id)
    task_b = await make.task(b.owner, project_b["id"], assignee_id=b.member.id)
    forget_tenant_filters(monkeypatch)

    # The patched queries do reach across tenants: the test's own (cross-tenant) session
    # gets B's rows through them when asking for A's.
    leaked, _ = await crud.list_projects(
        session=session, tenant_id=uuid.UUID(a.id), q=None, sort="name", skip=0, limit=100
    )
    assert project_b["id"] in {str(p.id) for p in leaked}

    # Through the API, as A's users, the database hides B entirely.
    for actor in (a.owner, a.member):
        for path in (
            f"/projects/{project_b['id']}",
            f"/tasks/{task_b['id']}",
            f"/users/{b.owner.id}",
            f"/users/{b.member.id}",
        ):
            response = await client.get(f"{API}{path}", headers=actor.headers)
            assert response.status_code == 404, (actor.user["role"], path, response.text)
        assert ids(await client.get(f"{API}/projects/", headers=actor.headers)) == {project_a["id"]}
        assert ids(await client.get(f"{API}/tasks/", headers=actor.headers)) == {task_a["id"]}
        assert ids(await client.get(f"{API}/users/", headers=actor.headers)) == {
            a.owner.id,
            a.admin.id,
            a.member.id,
        }
        # Filters that name B's rows find nothing either.
        query = {"project_id": project_b["id"], "assignee_id": b.member.id}
        assert ids(await client.get(f"{API}/tasks/", params=query, headers=actor.headers)) == set()

    # Changes and deletes of B's rows: not found, and B's rows stay as they were.
    for path, body in (
        (f"/projects/{project_b['id']}", {"name": "taken over"}),
        (f"/tasks/{task_b['id']}", {"title": "taken over"}),
        (f"/users/{b.member.id}", {"full_name": "taken over"}),
    ):
        assert (
            await client.patch(f"{API}{path}", json=body, headers=a.owner.headers)
        ).status_code == 404
        assert (await client.delete(f"{API}{path}", headers=a.owner.headers)).status_code == 404
        kept = await client.get(f"{API}{path}", headers=b.owner.headers)
        assert kept.status_code == 200
        assert "taken over" not in kept.text


async def test_a_loader_fooled_into_another_tenants_row_changes_nothing(
    client: AsyncClient, make: Factories, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even handed B's row (a stale cache, a bug), the app's UPDATE and DELETE touch nothing."""
    a, b = await make.signup(tenant_name="A"), await make.signup(tenant_name="B")
    project_b = await make.project(b, name="B's")
    row = await session.get(Project, uuid.UUID(project_b["id"]))

    async def fooled(*, session: AsyncSession, model: Any, row_id: uuid.UUID, **caller: Any) -> Any:
        return (await filtered_get_caller(session=session, **caller), row)

    monkeypatch.setattr(crud, "get_caller_and_row", fooled)
    path = f"{API}/projects/{project_b['id']}"
    assert (await client.patch(path, json={"name": "taken"}, headers=a.headers)).status_code == 404
    assert (await client.delete(path, headers=a.headers)).status_code == 404
    monkeypatch.undo()
    kept = await client.get(path, headers=b.headers)
    assert kept.status_code == 200
    assert (kept.json()["name"], kept.json()["version"]) == ("B's", 1)


@pytest.mark.parametrize("resource", ["project", "user"])
async def test_an_insert_into_another_tenant_is_refused_by_the_database(
    client: AsyncClient, make: Factories, monkeypatch: pytest.MonkeyPatch, resource: str
) -> None:
    a, b = await make.signup(tenant_name="A"), await make.signup(tenant_name="B")
    tenant_b = uuid.UUID(b.tenant_id)

    async def create_project_in_b(**kwargs: Any) -> Any:
        return await filtered_create_project(**{**kwargs, "tenant_id": tenant_b})

    async def create_user_in_b(**kwargs: Any) -> Any:
        return await filtered_create_user(**{**kwargs, "tenant_id": tenant_b})

    if resource == "project":
        monkeypatch.setattr(crud, "create_project", create_project_in_b)
        request = client.post(f"{API}/projects/", json={"name": "planted"}, headers=a.headers)
    else:
        monkeypatch.setattr(crud, "create_user", create_user_in_b)
        body = {"email": "planted@example.com", "password": "correct horse battery"}
        request = client.post(f"{API}/users/", json=body, headers=a.headers)
    with pytest.raises(DBAPIError, match="row-level security"):
        await request

    listed = await client.get(f"{API}/{resource}s/", headers=b.headers)
    assert listed.json()["count"] == (0 if resource == "project" else 1)
    assert "planted" not in listed.text


async def test_without_a_tenant_context_nothing_is_visible(
    make: Factories, session: AsyncSession
) -> None:
    a, b = await make.signup(tenant_name="A"), await make.signup(tenant_name="B")
    count_users = text('SELECT count(*) FROM "user" WHERE tenant_id IN (:a, :b)')
    params = {"a": a.tenant_id, "b": b.tenant_id}

    async def visible() -> int:
        return int((await session.exec(count_users, params=params)).scalar_one())  # type: ignore[call-overload]

    assert await visible() == 2  # the test's own cross-tenant context
    await set_tenant_context(session, tenant_id=uuid.UUID(a.tenant_id))
    assert await visible() == 1
    await set_tenant_context(session, tenant_id=None)
    assert await visible() == 0
    for table in ("tenant", "project", "task", "login", "refresh_token", "password_reset_token"):
        rows = (await session.exec(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()  # type: ignore[call-overload]
        assert rows == 0, table


async def test_in_production_the_context_rides_on_begin_and_never_outlives_its_session(
    engine: AsyncEngine,
) -> None:
    """Real sessions (no outer test transaction): the settings go out with each BEGIN, no
    statement of their own; a context stashed for a BEGIN that never came is dropped when
    the connection returns to the pool, so the next session does not inherit it."""
    one_connection = make_engine(str(settings.DATABASE_URL))  # used one session at a time
    sessions = async_sessionmaker(one_connection, class_=AsyncSession, expire_on_commit=False)
    a, b = (
        Tenant(name="A", slug=f"a-{uuid.uuid4().hex}"),
        Tenant(name="B", slug=f"b-{uuid.uuid4().hex}"),
    )
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    async def visible(session: AsyncSession) -> set[uuid.UUID]:
        found = await session.exec(select(Tenant.id).where(col(Tenant.id).in_([a.id, b.id])))
        return set(found.all())

    try:
        async with across_tenants(one_connection) as connection:
            for tenant in (a, b):
                await connection.execute(sa.insert(Tenant).values(tenant.model_dump()))
        event.listen(one_connection.sync_engine, "before_cursor_execute", record)
        async with sessions() as session:
            await set_tenant_context(session, tenant_id=a.id)
            first = await visible(session)
            await session.commit()
            second = await visible(session)  # a new transaction: the context again
        async with sessions() as session:
            await set_tenant_context(session, tenant_id=None, cross_tenant=True)
            await session.connection()  # BEGIN pending, never sent
        async with sessions() as session:  # the same pooled connection, no context
            third = await visible(session)
        event.remove(one_connection.sync_engine, "before_cursor_execute", record)
    finally:
        await purge(one_connection, [a.id, b.id], [])
        await one_connection.dispose()
    assert (first, second, third) == ({a.id}, {a.id}, set())
    assert len(statements) == 3
    assert not [statement for statement in statements if "set_config" in statement]


# --- The catalogue: RLS everywhere it is needed, and a role it binds ---------------------------

TENANT_OWNED = text(
    """
    SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                   AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant_id,
           ARRAY(SELECT f.confrelid::regclass::text FROM pg_constraint f
                 WHERE f.conrelid = c.oid AND f.contype = 'f') AS references
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
    """
)


async def rls_gaps(connection: AsyncConnection) -> list[str]:
    """Tenant-owned tables without RLS enabled, forced and with a policy. Tenant-owned: the
    tenant table, a table with a tenant_id column, or one referencing a tenant-owned table
    (logins and tokens hang off users)."""
    tables = {row.name: row for row in (await connection.execute(TENANT_OWNED)).all()}
    owned = {"tenant"} | {name for name, row in tables.items() if row.has_tenant_id}
    while True:
        more = {
            name
            for name, row in tables.items()
            if {ref.strip('"') for ref in row.references} & owned
        }
        if more <= owned:
            break
        owned |= more
    return sorted(
        f"{name}: enabled={tables[name].enabled} forced={tables[name].forced} "
        f"policies={tables[name].policies}"
        for name in owned
        if not (tables[name].enabled and tables[name].forced and tables[name].policies)
    )


async def test_every_tenant_owned_table_has_row_level_security_forced(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        assert await rls_gaps(connection) == []
        names = set((await connection.execute(TENANT_OWNED)).scalars())
    assert {"user", "project", "task", "login", "refresh_token", "password_reset_token"} <= names


async def test_a_new_tenant_owned_table_without_a_policy_fails_the_catalogue() -> None:
    owner = create_async_engine(OWNER_URL)
    try:
        async with owner.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(text("CREATE TABLE widget (id uuid, tenant_id uuid)"))
            await connection.execute(
                text('CREATE TABLE widget_part (id uuid, user_id uuid REFERENCES "user" (id))')
            )
            gaps = await rls_gaps(connection)
            await connection.execute(text("ALTER TABLE widget ENABLE ROW LEVEL SECURITY"))
            await connection.execute(text("ALTER TABLE widget FORCE ROW LEVEL SECURITY"))
            still = await rls_gaps(connection)  # enabled and forced, but no policy
            await transaction.rollback()
    finally:
        await owner.dispose()
    assert [gap.split(":")[0] for gap in gaps] == ["widget", "widget_part"]
    assert [gap.split(":")[0] for gap in still] == ["widget", "widget_part"]


async def test_the_app_connects_as_a_role_row_level_security_binds(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        row = (await connection.execute(roles.CURRENT_ROLE)).one()
        settings_left = (
            await connection.execute(
                text(
                    "SELECT current_setting('app.tenant_id', true),"
                    " current_setting('app.cross_tenant', true)"
                )
            )
        ).one()
        owners = set(
            (
                await connection.execute(
                    text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
        )
        # Not the owner: it can neither switch the policies off nor change the schema.
        with pytest.raises(DBAPIError, match="must be owner"):
            async with connection.begin_nested():
                await connection.execute(text("ALTER TABLE project DISABLE ROW LEVEL SECURITY"))
    # ... and the migrations granted it every table it works with.
    assert (row.name, row.superuser, row.bypassrls, row.owned_tables, row.ungranted_tables) == (
        SERVICE_ROLE,
        False,
        False,
        0,
        0,
    )
    assert SERVICE_ROLE not in owners
    # A pooled connection carries no tenant over from an earlier test or request.
    assert all(value in (None, "", "off") for value in settings_left), settings_left


async def test_run_sh_serves_the_embedded_database_as_the_service_role() -> None:
    """What scripts/run.sh does on the embedded server (common.sh: use_service_role): the
    superuser's URL becomes MIGRATIONS_DATABASE_URL, the service's is app_service's, which
    prestart creates (`roles ensure`) and checks (`roles check`, as below)."""
    env = {**os.environ, "DATABASE_URL": OWNER_URL, "PYTHONPATH": str(ROOT_DIR / "backend")}
    result = await anyio.run_process(
        [
            "bash",
            "-c",
            'source scripts/common.sh && use_service_role && echo "$MIGRATIONS_DATABASE_URL"'
            ' && echo "$DATABASE_URL"',
        ],
        cwd=ROOT_DIR,
        env=env,
    )
    migrations_url, service_url = result.stdout.decode().split()
    assert migrations_url == OWNER_URL
    assert make_url(service_url).username == roles.DEFAULT_SERVICE_ROLE
    assert make_url(service_url).database == make_url(OWNER_URL).database

    await roles.ensure_service_role(OWNER_URL, service_url)
    assert not await roles.ensure_service_role(OWNER_URL, service_url)  # exists: unchanged
    role = await roles.current_role(service_url)
    assert role.name == roles.DEFAULT_SERVICE_ROLE
    assert role.bound_by_rls, role.describe()
    assert role.describe() == "app_service: not a superuser, no BYPASSRLS, owns no tables"
