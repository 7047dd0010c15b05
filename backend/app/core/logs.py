"""Logging: JSON lines or readable console lines, each tagged with the request it belongs to.

The request id, user id and tenant id live in context variables: the request middleware
sets the id, the caller dependency the user and tenant. Every log line written while a
request is handled (errors and background tasks included) carries them.
"""

import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# (user id, tenant id) of the authenticated caller, set by deps.get_caller.
caller_var: ContextVar[tuple[uuid.UUID, uuid.UUID] | None] = ContextVar("caller", default=None)

# Fields of a LogRecord that are not extras passed with `extra=` (ours are added apart).
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
    "request_id",
    "user_id",
    "tenant_id",
}


def current_request_id() -> str | None:
    """The id of the request being handled, for work that outlives it (jobs, tasks)."""
    return request_id_var.get()


@contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Log the enclosed work (a job run by a worker) under the id of the request behind it."""
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def set_caller(user_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """Tag the rest of this request's log lines with the caller."""
    caller_var.set((user_id, tenant_id))


_CONTEXT_FIELDS = ("request_id", "user_id", "tenant_id")


def _record_factory(
    base: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Stamp each record with the request's ids when it is made (not when it is written)."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.request_id = request_id_var.get()
        caller = caller_var.get()
        record.user_id, record.tenant_id = caller if caller is not None else (None, None)
        return record

    make.stamps_request_context = True  # type: ignore[attr-defined]
    return make


def context_fields(record: logging.LogRecord) -> dict[str, str]:
    return {
        name: str(value)
        for name in _CONTEXT_FIELDS
        if (value := getattr(record, name, None)) is not None
    }


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context_fields(record))
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """`LEVEL logger: message [request_id=... user_id=...]`, for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = context_fields(record)
        if not fields:
            return line
        tags = " ".join(f"{key}={value}" for key, value in fields.items())
        head, newline, rest = line.partition("\n")  # keep a traceback below the tags
        return f"{head} [{tags}]{newline}{rest}"


class _AlreadyLogged(logging.Filter):
    """Drop uvicorn's traceback of an error the request middleware has logged already."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not getattr(error, "_logged_by_request_middleware", False)


def setup_logging(*, level: str, fmt: Literal["json", "console"]) -> None:
    """Route every log (uvicorn's included) to one stderr handler in the chosen format.

    Our access log replaces uvicorn's, which is silenced (also pass `--no-access-log`).
    """
    # Record fields no formatter here prints are not gathered for every line (see the
    # logging HOWTO, "Optimization"): the caller's file and line, thread, process.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "stamps_request_context", False):
        logging.setLogRecordFactory(_record_factory(factory))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.error").addFilter(_AlreadyLogged())
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.setLevel(logging.WARNING)
