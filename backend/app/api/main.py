import inspect

from fastapi import APIRouter, FastAPI
from starlette.routing import Match
from starlette.types import Scope

from app.api.errors import StrictJSONRoute
from app.api.routes import invitations, login, projects, tasks, tenants, users, utils

api_routers: tuple[APIRouter, ...] = tuple(
    module.router for module in (login, users, tenants, projects, tasks, invitations, utils)
)

# Every option `add_api_route` takes, read from the route of the same name: a new FastAPI
# option is carried without a change here (tests/api/test_utils.py checks they all are).
ROUTE_OPTIONS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in ("self", "path", "route_class_override")
)


class FlatRoute(StrictJSONRoute):
    """A route of the app's one flat list. A request is matched against the routes in
    order, and most routes cannot match it: a route whose literal head (`/api/v1/tasks/`
    of `/api/v1/tasks/{task_id}`) is not in the path says so without running its pattern."""

    def __init__(self, path: str, *args: object, **kwargs: object) -> None:
        super().__init__(path, *args, **kwargs)  # type: ignore[arg-type]
        self.literal_head = path.split("{", 1)[0]
        self.ends_in_text = not path.endswith("}")

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope["path"]
        # The path may carry a root path before the route's own part: "in", not startswith.
        if self.literal_head not in path:
            return Match.NONE, {}
        # Starlette ends a route's pattern with `$`, which also matches before a final
        # newline: `/tasks/%0A` would be the task list. A path parameter takes the newline
        # in; a route whose path ends in text of its own cannot match such a path.
        if self.ends_in_text and path.endswith("\n"):
            return Match.NONE, {}
        return super().matches(scope)


def include_flat(app: FastAPI, prefix: str) -> None:
    """Add every route of `api_routers` to the app's own router under `prefix`.

    FastAPI's `include_router` keeps each router a level of its own, and a request is
    matched through the levels twice (to choose, then to handle): 12 % of a GET by id's
    time in a profile (docs/performance.md). One flat list is matched in one pass.
    """
    for router in api_routers:
        for route in router.routes:
            assert type(route) is StrictJSONRoute, "every router uses StrictJSONRoute"
            options = {name: getattr(route, name) for name in ROUTE_OPTIONS}
            app.router.add_api_route(prefix + route.path, route_class_override=FlatRoute, **options)
