import re
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from app.api.errors import StrictJSONRoute
from app.api.routes import invitations, login, projects, tasks, tenants, users, utils

api_routers: tuple[APIRouter, ...] = tuple(
    module.router for module in (login, users, tenants, projects, tasks, invitations, utils)
)


class FlatRoute(StrictJSONRoute):
    """A route of the flat list. A request is matched against the routes in order, and
    most routes cannot match it: a route whose literal head (`/api/v1/tasks/` of
    `/api/v1/tasks/{task_id}`) is not in the path says so without running its pattern."""

    def __init__(self, path: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(path, *args, **kwargs)
        self.literal_head = path.split("{", 1)[0]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # The path may carry a root path before the route's own part: "in", not startswith.
        if self.literal_head not in scope["path"]:
            return Match.NONE, {}
        return super().matches(scope)


def include_flat(app: FastAPI, prefix: str) -> None:
    """Add every route of `api_routers` to the app's own router under `prefix`.

    `include_router` keeps included routers nested, and matching a request walks through
    each level; copied into one flat list, a request is matched in one pass.
    """
    for router in api_routers:
        for route in router.routes:
            assert type(route) is StrictJSONRoute, "every router uses StrictJSONRoute"
            app.router.add_api_route(
                prefix + route.path,
                route.endpoint,
                response_model=route.response_model,
                status_code=route.status_code,
                tags=route.tags,
                dependencies=route.dependencies,
                summary=route.summary,
                description=route.description,
                response_description=route.response_description,
                responses=route.responses,
                deprecated=route.deprecated,
                methods=route.methods,
                operation_id=route.operation_id,
                response_model_include=route.response_model_include,
                response_model_exclude=route.response_model_exclude,
                response_model_by_alias=route.response_model_by_alias,
                response_model_exclude_unset=route.response_model_exclude_unset,
                response_model_exclude_defaults=route.response_model_exclude_defaults,
                response_model_exclude_none=route.response_model_exclude_none,
                include_in_schema=route.include_in_schema,
                response_class=route.response_class,
                name=route.name,
                route_class_override=FlatRoute,
                callbacks=route.callbacks,
                openapi_extra=route.openapi_extra,
            )
    # Starlette anchors a route's pattern with `$`, which also matches before a final
    # newline: `/tasks/%0A` would be the list. `\Z` ends at the end of the path only.
    for added in app.router.routes:
        if isinstance(added, APIRoute) and added.path_regex.pattern.endswith("$"):
            added.path_regex = re.compile(added.path_regex.pattern[:-1] + r"\Z")
