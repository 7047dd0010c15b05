"""One pure ASGI middleware for every request: its id, its access log line, security headers.

- `X-Request-ID`: the caller's when it is 1-128 characters of `A-Z a-z 0-9 . _ : / + = -`,
  else a new random one; set in a context variable for the logs and echoed on every
  response (errors included: an unhandled error becomes a JSON 500 here).
- One log line per request on `app.access`: method, route template, status, duration,
  request id, user and tenant ids when known. Never the query, headers or body.
- `X-Content-Type-Options`, `X-Frame-Options`, `Referrer-Policy`, and HSTS when the
  service is served over HTTPS only.

Everything constant is built once; per request it costs one header scan, one list of
response headers and one log record.
"""

import logging
import random
import re
import time
from collections.abc import Iterable
from typing import Any

import sentry_sdk
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logs import caller_var, request_id_var

logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.error")

REQUEST_ID_HEADER = b"x-request-id"
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
HSTS_HEADER = (b"strict-transport-security", b"max-age=31536000")

_ERROR_BODY = b'{"detail":"Internal Server Error"}'
_ERROR_HEADERS = (
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_ERROR_BODY)).encode()),
)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.extra_headers = (*SECURITY_HEADERS, HSTS_HEADER) if hsts else SECURITY_HEADERS
        self.templates: dict[int, str] | None = None  # id(route) -> full path template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        start = time.perf_counter()
        request_id = _request_id(scope["headers"])
        id_token = request_id_var.set(request_id)
        caller_token = caller_var.set(None)
        response_headers = (*self.extra_headers, (REQUEST_ID_HEADER, request_id.encode()))
        status = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), *response_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            status = 500
            error_logger.exception("Unhandled error in %s %s", scope["method"], self.route(scope))
            exc._logged_by_request_middleware = True  # type: ignore[attr-defined]
            sentry_sdk.set_tag("request_id", request_id)  # a no-op without SENTRY_DSN
            if not started:
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": list(_ERROR_HEADERS),
                    }
                )
                await send({"type": "http.response.body", "body": _ERROR_BODY})
            raise  # the server and error reporting see it too
        finally:
            if logger.isEnabledFor(logging.INFO):
                duration_ms = round((time.perf_counter() - start) * 1000, 2)
                method, route = scope["method"], self.route(scope)
                logger.info(
                    "%s %s %s %.2f ms",
                    method,
                    route or "-",
                    status,
                    duration_ms,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
            caller_var.reset(caller_token)
            request_id_var.reset(id_token)

    def route(self, scope: Scope) -> str | None:
        """The matched route's template (`/api/v1/tasks/{task_id}`), never the raw path."""
        route = scope.get("route")
        if route is None:
            return None
        if self.templates is None:
            self.templates = route_templates(getattr(scope.get("app"), "routes", ()))
        return self.templates.get(id(route)) or getattr(route, "path", None)


def _request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if VALID_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    # Unique, not secret: 128 random bits from the process's PRNG (reseeded in a forked
    # worker) cost a tenth of a system call for each request.
    return f"{random.getrandbits(128):032x}"


def route_templates(routes: Iterable[Any]) -> dict[int, str]:
    """Full path templates of the app's routes, built once.

    A route of an included router knows only its path inside that router; FastAPI keeps
    the prefixes in the inclusion's route contexts.
    """
    templates: dict[int, str] = {}
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            if isinstance(getattr(route, "path", None), str):
                templates[id(route)] = route.path
            continue
        for context in contexts():
            path = getattr(context, "path_format", None)
            if isinstance(path, str):
                templates[id(context.original_route)] = path
    return templates
