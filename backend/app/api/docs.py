"""/docs (Swagger UI) and /redoc from files installed with the project, never from a CDN.

The JavaScript and CSS come from the `fastapi-offline` package (a maintained build of
Swagger UI and ReDoc, shipped in its wheel) and are served under `/docs-static`. The
pages carry a Content-Security-Policy that lets them load nothing from another host, so
they work offline and leak no visit to third parties.
"""

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS_DIR = files("fastapi_offline") / "static"
ASSETS_URL = "/docs-static"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

# Scripts and styles inline and from this service only; workers from blobs (ReDoc's search).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}


def install_docs(app: FastAPI, *, openapi_url: str) -> None:
    """Serve the two documentation pages and their assets (after the API's routes)."""
    title = app.title

    def root(request: Request) -> str:
        """The path the service is mounted under behind a proxy (`--root-path`), or ''."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root(request)
        page = get_swagger_ui_html(
            openapi_url=f"{prefix}{openapi_url}",
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=f"{prefix}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{prefix}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{ASSETS_URL}/favicon.png",
            # No badge from the online validator (validator.swagger.io).
            swagger_ui_parameters={"validatorUrl": None},
        )
        return HTMLResponse(page.body, headers=HEADERS)

    async def swagger_ui_redirect(_: Request) -> HTMLResponse:
        return HTMLResponse(get_swagger_ui_oauth2_redirect_html().body, headers=HEADERS)

    async def redoc(request: Request) -> HTMLResponse:
        prefix = root(request)
        page = get_redoc_html(
            openapi_url=f"{prefix}{openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{prefix}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{prefix}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        return HTMLResponse(page.body, headers=HEADERS)

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, swagger_ui_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-static")
