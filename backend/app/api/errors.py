"""Error shapes: documented responses, a 422 that never echoes input, strict JSON bodies."""

import json
import logging
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any

import asyncpg
import pydantic_core
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.models import ErrorDetail

ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or expired credentials",
    403: "The caller's role does not allow this",
    404: "Not found, or another tenant's",
    409: "Conflict with the current state (duplicate, last owner, ...)",
    412: "The If-Match version is stale",
    429: "Too many attempts; see Retry-After",
}

logger = logging.getLogger("app.errors")


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer (422 is FastAPI's own)."""
    return {
        code: {"model": ErrorDetail, "description": ERROR_DESCRIPTIONS[code]}
        for code in codes
        if code != 422
    }


def json_error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses` for a route whose success is not JSON (HTML): its errors still are."""
    schema = {"$ref": f"#/components/schemas/{ErrorDetail.__name__}"}
    return {
        code: {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": schema}},
        }
        for code in codes
    }


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


class StrictJSONRequest(Request):
    """Parse JSON with pydantic's parser, which refuses lone surrogates; refuse NUL too.

    Both would otherwise reach PostgreSQL (or the 422 renderer) and fail there as a 500.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                parsed = pydantic_core.from_json(body)
            except ValueError as exc:
                raise json.JSONDecodeError(str(exc), body.decode(errors="replace"), 0) from None
            if has_nul(parsed):
                raise json.JSONDecodeError("NUL characters are not allowed", "", 0)
            self._json = parsed
        return self._json


class StrictJSONRoute(APIRoute):
    """Every route of the API: bodies parsed strictly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:  # no body to parse: spare a second Request per call
            return handler

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def invalid(field: str, message: str, where: str = "body") -> RequestValidationError:
    """A 422 in FastAPI's shape for a field that fails a check against the database."""
    return RequestValidationError([{"type": "value_error", "loc": (where, field), "msg": message}])


async def validation_exception_handler(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape without `input` and `ctx`, which may echo secrets back."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"type": error["type"], "loc": error["loc"], "msg": error["msg"]} for error in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


# SQLSTATE class 22 is "data exception": a value PostgreSQL cannot store or compare
# (a NUL byte in a query parameter, an out-of-range number). That is bad input, not a bug.
DATA_EXCEPTION_CLASS = "22"

# SQLSTATEs of a database that is down, restarting or full: class 08 (connection
# exception), 57P01-57P03 (shutting down, crashed, starting up), 53300 (too many connections).
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# Seconds a client is asked to wait before retrying while the database is unavailable.
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "Database unavailable"


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then its causes and contexts (SQLAlchemy wraps the driver's error)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def raised_by_driver(tb: TracebackType | None) -> bool:
    """The traceback passes through asyncpg: an OSError from the socket to PostgreSQL,
    not from a file or another service."""
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False


def database_unavailable(exc: BaseException) -> bool:
    """The error says the database cannot be reached now (down, restarting, unreachable,
    pool exhausted), through SQLAlchemy or raw asyncpg. Anything else is not ours to hide."""
    for link in exception_chain(exc):
        if isinstance(link, PoolTimeoutError):
            return True
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, asyncpg.PostgresError):
            sqlstate = getattr(link, "sqlstate", None)
            if isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES):
                return True
        if isinstance(link, asyncpg.InterfaceError) and "connection is closed" in str(link):
            return True
        # ConnectionRefusedError, socket.gaierror, TimeoutError (connect)
        # and FileNotFoundError (a unix socket that is gone) are all OSErrors.
        if isinstance(link, OSError) and raised_by_driver(link.__traceback__):
            return True
    return False


def data_exception(exc: BaseException) -> bool:
    for link in exception_chain(exc):
        sqlstate = getattr(link, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate.startswith(DATA_EXCEPTION_CLASS)
    return False


def database_unavailable_response() -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"detail": DATABASE_UNAVAILABLE},
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """503 + Retry-After while the database is unreachable, 422 for a value it refuses;
    any other error is re-raised and stays a 500 (a bug to fix, not to hide)."""
    if database_unavailable(exc):
        logger.warning(
            "Database unavailable during %s %s: %r", request.method, request.url.path, exc
        )
        return database_unavailable_response()
    if data_exception(exc):
        detail = [{"type": "value_error", "loc": ["request"], "msg": "Invalid value"}]
        return JSONResponse(status_code=422, content={"detail": detail})
    raise exc


# Handled by class, so by Starlette's ExceptionMiddleware: registering `Exception` would
# move the handler to ServerErrorMiddleware, which logs and re-raises after answering.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_exception_handler)
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, database_error_handler)
