"""The service behind a real PgBouncer in transaction pooling mode, seen from outside.

As deployed behind a pooler (docs/deployment.md, "Behind a connection pooler"): the service
role's DATABASE_URL goes through PgBouncer (pool_mode = transaction, default_pool_size = 3),
MIGRATIONS_DATABASE_URL (the owner) and WORKER_DATABASE_URL (the job worker's LISTEN
connection) go straight to the server, and DB_STATEMENT_CACHE_SIZE=0 (PgBouncer 1.18 does
not track prepared statements). A database of this module's own is set up the way a
deployment is: by scripts/prestart.sh, then the service runs under uvicorn.

Requests from many clients share 3 server connections, so anything a request leaves on a
server connection (a session-level setting, a prepared statement) reaches whichever request
gets that connection next: the tests check that every answer is the one a direct connection
would give, and that no tenant setting outlives its transaction on a server connection.

PgBouncer missing: these tests skip (fail when REQUIRE_PGBOUNCER is set, as in CI).
"""

import asyncio
import os
import random
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core import roles
from tests.conftest import ROOT_DIR, SERVER_URL, SERVICE_SERVER_URL, create_database, drop_database
from tests.databases import url_for_database
from tests.live_service import API, BIN_DIR, PASSWORD, Service, running_service, service_env
from tests.mail import Sink, eventually
from tests.pooler import PgBouncer, running_pgbouncer

POOL_SIZE = 3
SUPERUSER_EMAIL = f"admin-{secrets.token_hex(4)}@example.com"
SUPERUSER_PASSWORD = "pooler superuser password"
PRESTART_TIMEOUT = 180
# Requests per tenant in the concurrent burst, and how many each client has in flight.
BURST = 50
IN_FLIGHT = 20


@dataclass(frozen=True)
class Deployment:
    bouncer: PgBouncer
    database: str
    pooled_url: str  # the service role, through PgBouncer
    direct_url: str  # the service role, straight to the server
    owner_url: str  # the owner, straight to the server

    def env(self) -> dict[str, str]:
        """What the service (and prestart) is given behind the pooler."""
        return {
            "MIGRATIONS_DATABASE_URL": self.owner_url,
            "WORKER_DATABASE_URL": self.direct_url,
            "DB_STATEMENT_CACHE_SIZE": "0",
            "FIRST_SUPERUSER": SUPERUSER_EMAIL,
            "FIRST_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD,
        }


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    owner, service = make_url(SERVER_URL), make_url(SERVICE_SERVER_URL)
    users = {
        str(service.username): service.password or "",
        str(owner.username): owner.password or "",
    }
    with running_pgbouncer(SERVER_URL, users=users, pool_size=POOL_SIZE) as running:
        yield running


@pytest.fixture(scope="module")
async def database(bouncer: PgBouncer) -> AsyncIterator[Deployment]:
    """A fresh database of this module's own, with the service role (nothing migrated)."""
    name = f"app_pool_{secrets.token_hex(4)}"
    await create_database(name)
    try:
        found = Deployment(
            bouncer=bouncer,
            database=name,
            pooled_url=bouncer.url(SERVICE_SERVER_URL, name),
            direct_url=url_for_database(SERVICE_SERVER_URL, name),
            owner_url=url_for_database(SERVER_URL, name),
        )
        await roles.ensure_service_role(found.owner_url, found.direct_url)
        yield found
    finally:
        await drop_database(name)


@pytest.fixture(scope="module")
async def deployment(database: Deployment) -> Deployment:
    """The database prepared by scripts/prestart.sh exactly as a deployment behind the
    pooler runs it (wait, service role, migrations, first superuser, role check)."""
    env = service_env(database.pooled_url, **database.env())
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", str(ROOT_DIR / "scripts" / "prestart.sh")],
        cwd=ROOT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=PRESTART_TIMEOUT,
    )
    if done.returncode != 0:
        output = f"{done.stdout}{done.stderr}"
        pytest.fail(
            f"prestart through PgBouncer failed (status {done.returncode}):\n{output[-3000:]}"
        )
    return database


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    box = Sink()
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def service(
    deployment: Deployment, sink: Sink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("pooler") / "service.log"
    with running_service(
        deployment.pooled_url,
        log,
        **deployment.env(),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(sink.port),
        SMTP_TLS="false",
        SMTP_SSL="false",
        SMTP_TIMEOUT="5",
        # Longer than any wait here: a job delivered in time was woken by its NOTIFY.
        JOB_POLL_SECONDS="600",
    ) as running:
        yield running
    output = running.output()
    if "Traceback" in output:
        pytest.fail(
            f"the service logged an error:\n{output[output.index('Traceback') - 300 :][:4000]}"
        )


# Clients ------------------------------------------------------------------------------


async def log_in(http: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    response = await http.post(
        f"{API}/login/access-token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


@dataclass
class Tenant:
    id: str
    email: str
    headers: dict[str, str]
    projects: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)


async def sign_up(http: httpx.AsyncClient) -> Tenant:
    email = f"owner-{secrets.token_hex(4)}@example.com"
    signup = await http.post(
        f"{API}/users/signup",
        json={"email": email, "password": PASSWORD, "tenant_name": "Pooled"},
    )
    assert signup.status_code == 201, signup.text
    token = await log_in(http, email, PASSWORD)
    return Tenant(id=signup.json()["tenant_id"], email=email, headers=bearer(token))


async def seed(http: httpx.AsyncClient, tenant: Tenant, projects: int, tasks: int) -> None:
    """`projects` projects of the tenant's with `tasks` tasks each (ids kept on `tenant`)."""
    for p in range(projects):
        created = await http.post(
            f"{API}/projects/",
            json={"name": f"Project {p} {secrets.token_hex(3)}"},
            headers=tenant.headers,
        )
        assert created.status_code == 201, created.text
        tenant.projects.append(created.json()["id"])
        for t in range(tasks):
            task = await http.post(
                f"{API}/tasks/",
                json={"project_id": created.json()["id"], "title": f"Task {p}.{t}"},
                headers=tenant.headers,
            )
            assert task.status_code == 201, task.text
            tenant.tasks.append(task.json()["id"])


# Server connections ---------------------------------------------------------------------

TENANT_SETTINGS = (
    "SELECT pg_backend_pid() AS pid,"
    " current_setting('app.tenant_id', true) AS tenant_id,"
    " current_setting('app.cross_tenant', true) AS cross_tenant"
)


async def through_pooler(deployment: Deployment) -> asyncpg.Connection:
    """A client connection to PgBouncer as the service's role, on its database: the same
    pool, so the same server connections, as the service's."""
    url = make_url(deployment.pooled_url)
    connection: asyncpg.Connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
        statement_cache_size=0,
        timeout=10,
    )
    return connection


async def on_every_server_connection(
    deployment: Deployment, statement: str, *, commit: bool = False
) -> list[asyncpg.Record]:
    """Run `statement` once on each of the pool's server connections: `pool_size`
    transactions held open at once through PgBouncer each pin a server connection of their
    own, so together they cover every connection the service's requests ran on."""
    clients = [await through_pooler(deployment) for _ in range(deployment.bouncer.pool_size)]
    try:
        rows = []
        for client in clients:
            await client.execute("BEGIN")
            row = await client.fetchrow(statement)
            assert row is not None
            rows.append(row)
        for client in clients:
            await client.execute("COMMIT" if commit else "ROLLBACK")
    finally:
        await asyncio.gather(*(client.close(timeout=5) for client in clients))
    pids = {row["pid"] for row in rows}
    assert len(pids) == deployment.bouncer.pool_size, f"not one server connection each: {rows}"
    return rows


async def leftover_tenant_settings(deployment: Deployment) -> list[dict[str, Any]]:
    """The server connections on which a tenant setting outlived its transaction (unset
    reads NULL; '' once a transaction-local value has come and gone)."""
    rows = await on_every_server_connection(deployment, TENANT_SETTINGS)
    return [
        dict(row)
        for row in rows
        if row["tenant_id"] not in (None, "") or row["cross_tenant"] not in (None, "")
    ]


async def clear_tenant_settings(deployment: Deployment) -> None:
    await on_every_server_connection(
        deployment,
        "SELECT pg_backend_pid() AS pid, set_config('app.tenant_id', '', false),"
        " set_config('app.cross_tenant', '', false)",
        commit=True,
    )


# Tests ------------------------------------------------------------------------------------


async def test_the_api_works_through_the_pooler(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
        email = f"owner-{secrets.token_hex(4)}@example.com"
        signup = await http.post(
            f"{API}/users/signup",
            json={"email": email, "password": PASSWORD, "tenant_name": "Through PgBouncer"},
        )
        assert signup.status_code == 201, signup.text
        tenant_id = signup.json()["tenant_id"]
        token = await log_in(http, email, PASSWORD)
        refreshed = await http.post(
            f"{API}/login/refresh", json={"refresh_token": token["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        http.headers.update(bearer(refreshed.json()))

        me = await http.get(f"{API}/users/me")
        assert me.status_code == 200, me.text
        assert (me.json()["email"], me.json()["tenant_id"]) == (email, tenant_id)
        tenant = await http.get(f"{API}/tenants/me")
        assert tenant.status_code == 200, tenant.text
        assert tenant.json()["id"] == tenant_id

        project = await http.post(f"{API}/projects/", json={"name": "Pooled project"})
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        listed = await http.get(f"{API}/projects/")
        assert listed.status_code == 200, listed.text
        assert [row["id"] for row in listed.json()["data"]] == [project_id]
        assert (await http.get(f"{API}/projects/{project_id}")).status_code == 200
        renamed = await http.patch(f"{API}/projects/{project_id}", json={"name": "Renamed"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "Renamed"

        task = await http.post(f"{API}/tasks/", json={"project_id": project_id, "title": "One"})
        assert task.status_code == 201, task.text
        task_id = task.json()["id"]
        tasks = await http.get(f"{API}/tasks/")
        assert tasks.status_code == 200, tasks.text
        assert [row["id"] for row in tasks.json()["data"]] == [task_id]
        fetched = await http.get(f"{API}/tasks/{task_id}")
        assert fetched.status_code == 200, fetched.text
        patched = await http.patch(
            f"{API}/tasks/{task_id}",
            json={"title": "Two"},
            headers={"If-Match": fetched.headers["ETag"]},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["title"] == "Two"

        invited = await http.post(
            f"{API}/invitations/", json={"email": f"invitee-{secrets.token_hex(4)}@example.com"}
        )
        assert invited.status_code == 201, invited.text
        invitations = await http.get(f"{API}/invitations/")
        assert invitations.status_code == 200, invitations.text
        assert [row["id"] for row in invitations.json()["data"]] == [invited.json()["id"]]

        assert (await http.delete(f"{API}/tasks/{task_id}")).status_code == 204
        assert (await http.get(f"{API}/tasks/{task_id}")).status_code == 404
        assert (await http.delete(f"{API}/projects/{project_id}")).status_code == 204
        assert (await http.get(f"{API}/projects/{project_id}")).status_code == 404


async def test_an_email_job_enqueued_in_a_request_is_delivered(
    service: Service, sink: Sink
) -> None:
    """The invitation's job is inserted in the request's transaction (through PgBouncer) and
    the worker, LISTENing on its direct connection, is woken by its NOTIFY and delivers it
    (the service polls only every 600 s here: a worker LISTENing through PgBouncer is never
    woken, and this test times out)."""
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
        owner = await sign_up(http)
        invitee = f"invitee-{secrets.token_hex(4)}@example.com"
        invited = await http.post(
            f"{API}/invitations/", json={"email": invitee}, headers=owner.headers
        )
        assert invited.status_code == 201, invited.text

    async def delivered() -> bool:
        return bool(sink.messages_to(invitee))

    await eventually(delivered, f"the invitation email to {invitee}")


Check = Callable[[httpx.Response], str | None]


def expect(status: int, check: Check | None = None) -> Check:
    def verdict(response: httpx.Response) -> str | None:
        if response.status_code != status:
            return f"{response.status_code} instead of {status}: {response.text[:300]}"
        return check(response) if check else None

    return verdict


def only_tenant(tenant_id: str, must_include: list[str] = []) -> Check:  # noqa: B006 (read only)
    def check(response: httpx.Response) -> str | None:
        rows = response.json()["data"]
        foreign = [row["id"] for row in rows if row["tenant_id"] != tenant_id]
        missing = set(must_include) - {row["id"] for row in rows}
        if foreign or missing:
            return f"rows of another tenant {foreign}, own rows missing {sorted(missing)}"
        return None

    return check


def owned_by(tenant_id: str) -> Check:
    def check(response: httpx.Response) -> str | None:
        found = response.json()["tenant_id"]
        return None if found == tenant_id else f"a row of tenant {found}"

    return check


def mixed_requests(
    tenant: Tenant, other: Tenant, rng: random.Random
) -> list[tuple[str, str, dict[str, Any], Check]]:
    """BURST requests of `tenant`'s: reads and writes of its own rows, and reads and writes
    of the other tenant's rows by id (404: they do not exist for it)."""
    own = tenant.id
    kinds: list[Callable[[], tuple[str, str, dict[str, Any], Check]]] = [
        lambda: ("GET", "/projects/", {}, expect(200, only_tenant(own, tenant.projects))),
        lambda: ("GET", "/tasks/", {}, expect(200, only_tenant(own, tenant.tasks))),
        lambda: ("GET", f"/tasks/{rng.choice(tenant.tasks)}", {}, expect(200, owned_by(own))),
        lambda: ("GET", f"/projects/{rng.choice(tenant.projects)}", {}, expect(200, owned_by(own))),
        lambda: ("GET", "/users/me", {}, expect(200, owned_by(own))),
        lambda: (
            "POST",
            "/tasks/",
            {"json": {"project_id": rng.choice(tenant.projects), "title": "Burst"}},
            expect(201, owned_by(own)),
        ),
        lambda: (
            "PATCH",
            f"/tasks/{rng.choice(tenant.tasks)}",
            {"json": {"description": secrets.token_hex(4)}},
            expect(200, owned_by(own)),
        ),
        lambda: ("GET", f"/tasks/{rng.choice(other.tasks)}", {}, expect(404)),
        lambda: ("GET", f"/projects/{rng.choice(other.projects)}", {}, expect(404)),
        lambda: (
            "PATCH",
            f"/tasks/{rng.choice(other.tasks)}",
            {"json": {"description": "not mine"}},
            expect(404),
        ),
    ]
    return [kinds[n % len(kinds)]() for n in rng.sample(range(BURST), BURST)]


async def test_two_tenants_at_once_get_only_their_own_answers(
    service: Service, deployment: Deployment
) -> None:
    """2 x 50 concurrent mixed requests (up to 40 in flight) over 3 server connections:
    every answer is the one each tenant gets on its own, and nothing is left behind."""
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
        a, b = await sign_up(http), await sign_up(http)
        for tenant in (a, b):
            await seed(http, tenant, projects=2, tasks=2)
    rng = random.Random(1234)
    failures: list[str] = []

    async def run(tenant: Tenant, other: Tenant) -> None:
        limits = httpx.Limits(max_connections=IN_FLIGHT)
        async with httpx.AsyncClient(
            base_url=f"{service.base_url}{API}", headers=tenant.headers, timeout=60, limits=limits
        ) as http:

            async def one(method: str, path: str, kwargs: dict[str, Any], check: Check) -> None:
                response = await http.request(method, path, **kwargs)
                problem = check(response)
                if problem:
                    failures.append(f"tenant {tenant.id}: {method} {path}: {problem}")

            await asyncio.gather(*(one(*request) for request in mixed_requests(tenant, other, rng)))

    await asyncio.gather(run(a, b), run(b, a))
    assert failures == [], f"{len(failures)} wrong answers, e.g.:\n" + "\n".join(failures[:10])
    assert await leftover_tenant_settings(deployment) == []


async def test_the_check_sees_a_session_setting_left_on_a_server_connection(
    database: Deployment,
) -> None:
    """The check of the next test can fail: a session-level set_config through PgBouncer
    stays on its server connection, and the check finds it there."""
    await clear_tenant_settings(database)  # whatever the service's requests left
    leaky = await through_pooler(database)
    try:
        await leaky.execute("SELECT set_config('app.cross_tenant', 'on', false)")
    finally:
        await leaky.close()
    try:
        leftovers = await leftover_tenant_settings(database)
        assert [row["cross_tenant"] for row in leftovers] == ["on"], leftovers
    finally:  # the connections as clean for the tests after this one
        await clear_tenant_settings(database)
    assert await leftover_tenant_settings(database) == []


async def test_a_superusers_requests_leave_no_cross_tenant_setting_behind(
    service: Service, deployment: Deployment
) -> None:
    """The seeded superuser reads and writes another tenant's rows (the cross-tenant paths,
    every route alike); afterwards no server connection carries a tenant setting."""
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
        tenant = await sign_up(http)
        await seed(http, tenant, projects=1, tasks=2)
        admin = bearer(await log_in(http, SUPERUSER_EMAIL, SUPERUSER_PASSWORD))
        me = await http.get(f"{API}/users/me", headers=admin)
        assert me.status_code == 200, me.text
        assert me.json()["is_superuser"] is True

        async def as_superuser() -> None:
            tenants = await http.get(f"{API}/tenants/", params={"limit": 100}, headers=admin)
            assert tenants.status_code == 200, tenants.text
            for path in ("/projects/", "/tasks/"):
                rows = await http.get(
                    f"{API}{path}", params={"tenant_id": tenant.id}, headers=admin
                )
                assert rows.status_code == 200, rows.text
                assert {row["tenant_id"] for row in rows.json()["data"]} == {tenant.id}
            for task_id in tenant.tasks:
                task = await http.get(f"{API}/tasks/{task_id}", headers=admin)
                assert task.status_code == 200, task.text
                patched = await http.patch(
                    f"{API}/tasks/{task_id}", json={"description": "seen"}, headers=admin
                )
                assert patched.status_code == 200, patched.text
            project = await http.get(f"{API}/projects/{tenant.projects[0]}", headers=admin)
            assert project.status_code == 200, project.text

        # Several at once, so they spread over the server connections.
        await asyncio.gather(*(as_superuser() for _ in range(6)))
    assert await leftover_tenant_settings(deployment) == []
