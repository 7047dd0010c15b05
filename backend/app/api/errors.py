"""Error shapes: documented responses, a 422 that never echoes input, strict JSON bodies."""

import json
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from app.models import ErrorDetail

ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, invalid or expired credentials",
    403: "The caller's role does not allow this",
    404: "Not found, or another tenant's",
    409: "Conflict with the current state (duplicate, last owner, ...)",
    412: "The If-Match version is stale",
    429: "Too many failed logins; see Retry-After",
}


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


async def data_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    sqlstate = getattr(exc.orig.__cause__, "sqlstate", None) if exc.orig else None
    if isinstance(sqlstate, str) and sqlstate.startswith(DATA_EXCEPTION_CLASS):
        detail = [{"type": "value_error", "loc": ["request"], "msg": "Invalid value"}]
        return JSONResponse(status_code=422, content={"detail": detail})
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_exception_handler)
    app.add_exception_handler(DBAPIError, data_error_handler)
