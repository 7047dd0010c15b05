"""Bounds on every request before any route reads it, and the client address behind proxies.

Pure ASGI and cheap: a request without a body costs one pass over its headers. Only a
chunked body (no Content-Length) has its chunks counted as the route reads them.
"""

from typing import Any, cast

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.core.config import settings

MAX_BODY_BYTES = 1024 * 1024
MAX_URL_BYTES = 8 * 1024  # the path, and the query string, each
MAX_HEADER_BYTES = 8 * 1024  # one header's value (Authorization, If-Match, ...)
MAX_HEADERS_BYTES = 32 * 1024  # all headers together

BODY_TOO_LARGE = f"Request body larger than {MAX_BODY_BYTES} bytes"


async def reject(scope: Scope, send: Send, status_code: int, detail: str) -> None:
    # The unread body stays on the connection: close it rather than read it.
    response = JSONResponse({"detail": detail}, status_code, headers={"Connection": "close"})
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class RequestLimits:
    """413 for a body over MAX_BODY_BYTES, 414 for a long path or query, 431 for long headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope["query_string"]) > MAX_URL_BYTES or len(scope["path"]) > MAX_URL_BYTES:
            await reject(scope, send, 414, "URL too long")
            return
        chunked = False
        total = 0
        for name, value in scope["headers"]:
            total += len(name) + len(value)
            if len(value) > MAX_HEADER_BYTES or total > MAX_HEADERS_BYTES:
                await reject(scope, send, 431, "Request headers too large")
                return
            if name == b"content-length":
                # The server has checked that it is a number and will hold the body to it.
                if int(value) > MAX_BODY_BYTES:
                    await reject(scope, send, 413, BODY_TOO_LARGE)
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked:
            await self.app(scope, receive, send)
            return
        await self.limit_chunked(scope, receive, send)

    async def limit_chunked(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    # FastAPI lets an HTTPException out of body parsing: a JSON 413.
                    raise HTTPException(413, BODY_TOO_LARGE, headers={"Connection": "close"})
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await reject(scope, send, 413, BODY_TOO_LARGE)


def trusted_proxies(app: ASGIApp) -> ASGIApp:
    """Take the client address from X-Forwarded-For only when the peer is a trusted proxy.

    Starlette builds the middleware stack on the first request, so this reads the setting
    then; with no proxy configured it adds nothing.
    """
    hosts = settings.trusted_proxies
    if not hosts:
        return app
    # uvicorn types ASGI apps more narrowly than Starlette; the protocol is the same.
    return cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=hosts))
