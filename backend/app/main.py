import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware

from app.api.errors import install_error_handlers
from app.api.main import include_flat
from app.core.config import settings
from app.core.db import engine

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def custom_generate_unique_id(route: APIRoute) -> str:
    """Operation ids `{tag}-{route name}`: the client reads `ProjectsService.createProject`."""
    return f"{route.tags[0]}-{route.name}"


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(
    title=settings.PROJECT_NAME,
    openapi_url=f"{settings.API_V1_STR}/openapi.json",
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
        expose_headers=["ETag", "Retry-After"],
    )

install_error_handlers(app)
include_flat(app, settings.API_V1_STR)

# Everything loaded so far lives as long as the process: moved out of the collector's
# generations, it is no longer rescanned by every full collection under load.
gc.freeze()
