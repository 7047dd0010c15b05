import re

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from app.api.routes import invitations, login, projects, tasks, tenants, users, utils

api_routers: tuple[APIRouter, ...] = tuple(
    module.router for module in (login, users, tenants, projects, tasks, invitations, utils)
)


def include_flat(app: FastAPI, prefix: str) -> None:
    """Add every route of `api_routers` to the app's own router under `prefix`.

    `include_router` keeps included routers nested, and matching a request walks through
    each level; copied into one flat list, a request is matched in one pass.
    """
    for router in api_routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)
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
                route_class_override=type(route),
                callbacks=route.callbacks,
                openapi_extra=route.openapi_extra,
            )
    # Starlette anchors a route's pattern with `$`, which also matches before a final
    # newline: `/tasks/%0A` would be the list. `\Z` ends at the end of the path only.
    for added in app.router.routes:
        if isinstance(added, APIRoute) and added.path_regex.pattern.endswith("$"):
            added.path_regex = re.compile(added.path_regex.pattern[:-1] + r"\Z")
