import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sentry_sdk
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from app import __version__
from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.limits import RequestLimits, trusted_proxies
from app.api.main import include_flat
from app.api.middleware import RequestContextMiddleware
from app.core.config import settings
from app.core.db import engine
from app.core.logs import setup_logging
from app.jobs import in_process_worker

setup_logging(level=settings.LOG_LEVEL, fmt=settings.log_format)

# Error reporting, as in the FastAPI template: off unless SENTRY_DSN is set (and not local).
if settings.SENTRY_DSN and settings.ENVIRONMENT != "local":
    sentry_sdk.init(dsn=str(settings.SENTRY_DSN), environment=settings.ENVIRONMENT)


def custom_generate_unique_id(route: APIRoute) -> str:
    """Operation ids `{tag}-{route name}`: the client reads `ProjectsService.createProject`."""
    return f"{route.tags[0]}-{route.name}"


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with in_process_worker():  # background jobs, unless WORKER_IN_PROCESS=false
        yield
    await engine.dispose()


OPENAPI_URL = f"{settings.API_V1_STR}/openapi.json"

app = FastAPI(
    title=settings.PROJECT_NAME,
    version=__version__,
    # The schema and the docs pages (served offline, see api/docs.py) only when enabled;
    # app.openapi() still builds the schema for scripts/generate-client.sh.
    openapi_url=OPENAPI_URL if settings.docs_enabled else None,
    docs_url=None,
    redoc_url=None,
    generate_unique_id_function=custom_generate_unique_id,
    lifespan=lifespan,
)

if settings.all_cors_origins:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.all_cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["ETag", "Retry-After", "X-Request-ID"],
    )
# Added last is outermost. From the outside in: the trusted-proxy rewrite of the client
# address (every layer sees the real client); request ids, the access log and the security
# headers (they reach every response: 413s, CORS preflights and 500s included); the size
# limits (nothing below reads an unbounded request); CORS.
app.add_middleware(RequestLimits)
app.add_middleware(RequestContextMiddleware, hsts=settings.SERVED_OVER_HTTPS)
app.add_middleware(trusted_proxies)
install_error_handlers(app)
include_flat(app, settings.API_V1_STR)
if settings.docs_enabled:
    install_docs(app, openapi_url=OPENAPI_URL)

# Everything loaded so far lives as long as the process: moved out of the collector's
# generations, it is no longer rescanned by every full collection under load.
gc.freeze()
