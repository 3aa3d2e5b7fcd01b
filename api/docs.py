"""/docs (Swagger UI) and /redoc (ReDoc) from files installed with bridgeca,
and the bearer security scheme that gives Swagger its Authorize button.

FastAPI's own pages load their scripts from a CDN, so they are blank on the
offline networks bridges run on. The scripts come from the fastapi-offline
wheel (a PyPI dependency that ships swagger-ui-dist and ReDoc's standalone
bundle): a pip install brings them, and upgrading them is a version bump
rather than megabytes of minified JavaScript in this repository.
"""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from .problems import Problem

ASSETS_URL = "/docs-assets"
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}
BEARER = "bearer"


def assets_dir() -> Path:
    """The installed fastapi-offline's static directory, checked whole: a
    layout change in a new release fails at start, not as a blank page."""
    import fastapi_offline

    directory = Path(fastapi_offline.__file__).parent / "static"
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline at {directory} lacks {', '.join(missing)}: the API docs cannot be served")
    return directory


def _offline(page: HTMLResponse) -> HTMLResponse:
    """Forbid the page any host but its own (Content-Security-Policy).

    The bundles have outside URLs of their own (ReDoc's side menu shows a logo
    from cdn.redoc.ly whatever its options say): offline such a request only
    waits to fail, online it tells a third party who reads the docs. The
    page's one inline script is allowed by its hash; styles inline because
    both UIs set them from JavaScript; blob: workers for ReDoc's search.
    """
    scripts = re.findall(rb"<script>(.*?)</script>", page.body, flags=re.DOTALL)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts)
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return page


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc; the app must be made with docs_url=None and
    redoc_url=None so that FastAPI's CDN pages are not registered first."""
    directory = assets_dir()

    # A route over a fixed list rather than a static mount: nothing else in
    # the package directory is served, and an unknown name is the usual 404 problem.
    @app.api_route(ASSETS_URL + "/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise Problem(404, "not_found", f"no documentation asset {name!r}")
        return FileResponse(directory / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _offline(get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # validatorUrl: Swagger would otherwise send the spec to
            # validator.swagger.io; offline that is a broken badge, online a leak.
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        ))

    @app.api_route("/redoc", methods=["GET", "HEAD"], include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _offline(get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API reference",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        ))


def add_bearer_security(schema: dict) -> dict:
    """Declare the bearer scheme and put it on every operation that documents
    a 401, i.e. every route that asks for a token.

    Only the document changes: api/security.py still decides who gets in,
    with its own 401/403 problems (a FastAPI HTTPBearer dependency would add
    a dependency level to each request and answer its own 403s). That the
    document and the behaviour agree is tested route by route
    (tests/api/test_docs_browser.py).
    """
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from `bridgeca token create --role admin|issuer|platform` (starts with `bca_`).",
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{BEARER: []}]
    return schema
