import inspect

from fastapi import APIRouter
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient

from app.api.main import ROUTE_OPTIONS, FlatRoute, api_routers
from app.main import app
from tests.conftest import API
from tests.factories import Factories


async def test_health_check(client: AsyncClient) -> None:
    response = await client.get(f"{API}/utils/health-check/")
    assert response.status_code == 200
    assert response.json() is True


async def test_ready_when_the_database_answers(client: AsyncClient) -> None:
    response = await client.get(f"{API}/utils/ready/")
    assert response.status_code == 200
    assert response.json() is True


async def test_test_email_is_for_superusers(client: AsyncClient, make: Factories) -> None:
    owner = await make.signup()
    response = await client.post(
        f"{API}/utils/test-email/", params={"email_to": "x@example.com"}, headers=owner.headers
    )
    assert response.status_code == 403
    root = await make.superuser()
    response = await client.post(
        f"{API}/utils/test-email/", params={"email_to": "x@example.com"}, headers=root.headers
    )
    assert response.status_code == 201
    assert response.json() == {"message": "Test email sent"}


async def test_ready_answers_503_when_the_database_does_not(client: AsyncClient) -> None:
    from collections.abc import AsyncIterator

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlmodel.ext.asyncio.session import AsyncSession

    from app.api.deps import get_session
    from app.main import app

    # A port nothing listens on: the connection is refused at once.
    dead = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")

    async def unreachable_session() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(dead) as session:
            yield session

    app.dependency_overrides[get_session] = unreachable_session
    try:
        response = await client.get(f"{API}/utils/ready/")
    finally:
        await dead.dispose()
    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable"}
    assert int(response.headers["Retry-After"]) > 0


async def test_routes_match_behind_a_root_path(client: AsyncClient, make: Factories) -> None:
    """Served under a proxy's prefix (uvicorn --root-path), the path carries it before the
    route's own part: the flat routes' literal-head check (api/main.py) must still match."""
    owner = await make.signup()
    task = await make.task(owner, (await make.project(owner))["id"])
    transport = ASGITransport(app=app, root_path="/behind/proxy")
    async with AsyncClient(transport=transport, base_url="http://test") as proxied:
        found = await proxied.get(f"/behind/proxy{API}/tasks/{task['id']}", headers=owner.headers)
        health = await proxied.get(f"/behind/proxy{API}/utils/health-check/")
    assert found.status_code == 200, found.text
    assert found.json()["id"] == task["id"]
    assert health.status_code == 200


def unwrapped(value: object) -> object:
    """A default FastAPI resolves when the copy is made, or keeps as a placeholder."""
    return value.value if isinstance(value, DefaultPlaceholder) else value


def test_the_flat_routes_carry_every_option_of_their_routers() -> None:
    """api/main.py copies each route into the app's flat list: every option FastAPI's
    `add_api_route` takes must arrive as the router had it (a new option included)."""
    carried = set(ROUTE_OPTIONS) | {"path", "route_class_override"}
    taken = set(inspect.signature(APIRouter.add_api_route).parameters) - {"self"}
    assert taken == carried
    flat = {
        (route.path, tuple(sorted(route.methods))): route
        for route in app.routes
        if isinstance(route, FlatRoute)
    }
    originals = [route for router in api_routers for route in router.routes]
    assert len(flat) == len(originals)
    for original in originals:
        assert isinstance(original, APIRoute)
        copy = flat[(API + original.path, tuple(sorted(original.methods)))]
        for name in ROUTE_OPTIONS:
            if name == "generate_unique_id_function":
                continue  # the router's default gives way to the app's, as with include_router
            assert unwrapped(getattr(copy, name)) == unwrapped(getattr(original, name)), (
                original.path,
                name,
            )
        assert copy.operation_id is None
        assert copy.unique_id == f"{original.tags[0]}-{original.name}"
