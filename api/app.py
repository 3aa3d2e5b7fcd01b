"""The FastAPI application: ``create_app`` wires the bridge, the middleware
and the routers (api/routes_*.py, thin handlers: parse, one domain call,
errors as problem+json through api.problems) into one app.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from bridge.service import BridgeCA

from . import docs, problems
from .limits import BodyLimitMiddleware
from .observability import Metrics, ObservabilityMiddleware, measured_verification
from .problems import PROBLEM
from .ratelimit import FailureLimiter, RateLimitMiddleware, TokenBuckets
from .schemas import problem_responses
from .security import AdminJson, PrincipalCache, authenticate_before_body


def create_app(ca: BridgeCA, *, max_body_bytes: int | None = None, close_on_shutdown: bool = False) -> FastAPI:
    # The body limit is the bridge's settings (BridgeSettings.max_body_bytes,
    # read once when the bridge was opened); the argument overrides it for tests.
    settings = ca.settings
    limit = settings.max_body_bytes if max_body_bytes is None else max_body_bytes
    from . import routes_governance  # proposals, audit; its checkpoint loop runs in the lifespan

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        from .routes_lifecycle import start_maintenance

        stop_maintenance = start_maintenance(ca)  # expiry and near-expiry warnings, periodically (bridge/lifecycle.py)
        stop_checkpoints = routes_governance.start_checkpoints(ca)  # the audit head signed every T minutes
        yield
        stop_maintenance()
        stop_checkpoints()
        if close_on_shutdown:
            ca.close()

    app = FastAPI(
        title="bridgeca",
        version="1",
        summary="Bridge CA and certificate verification for the Guangdong cross-certification platform",
        description=(
            "Relying platforms verify certificate chains and signatures through the bridge; issuers enroll their "
            "roots; administrators approve and revoke. Send `Authorization: Bearer TOKEN`. Errors are RFC 9457 "
            "problem details (`application/problem+json`) with a stable `code`. A verification that runs and finds "
            f"the certificate invalid is a 200 with `\"valid\": false`. Request bodies are limited to {limit} bytes."
        ),
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves /docs and /redoc from packaged files, not a CDN
        redoc_url=None,
    )
    app.state.ca = ca
    app.state.metrics = Metrics()
    app.state.verification = measured_verification(ca, app.state.metrics)  # counts each answer
    app.state.principals = PrincipalCache()
    app.state.max_body_bytes = limit
    problems.install(app)
    from . import routes_batch, routes_issuers, routes_publication, routes_service, routes_verify

    # The hot routes first, and in the app's own table: FastAPI matches an
    # included router's routes in a second pass of its own (about a tenth
    # of a cached answer's cost), a route of the app's table directly.
    # GET /v1/health too, the reference the hot routes are measured against.
    app.router.routes.extend(routes_verify.router.routes + routes_batch.router.routes + routes_service.router.routes)
    docs.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limit)
    app.state.auth_failures = (FailureLimiter(settings.auth_failure_limit, settings.auth_failure_window_seconds,
                                              settings.auth_failure_max_addresses)
                               if settings.auth_failure_limit > 0 else None)
    app.state.verify_buckets = (TokenBuckets(settings.verify_rate_per_token, settings.auth_failure_max_addresses)
                                if settings.verify_rate_per_token > 0 else None)
    # Outermost: a refused request costs no body read and no token lookup.
    app.add_middleware(RateLimitMiddleware, failures=app.state.auth_failures, verify_buckets=app.state.verify_buckets)
    # Outermost of all: every response, a 413 or 429 sent by the middlewares
    # inside included, gets a request id, a count and an access-log line.
    app.add_middleware(ObservabilityMiddleware, fastapi_app=app, metrics=app.state.metrics,
                       access_log_enabled=getattr(ca.settings, "access_log", True))

    app.include_router(routes_issuers.router)
    from . import admin_routes  # reject, CRL now, tokens: so `bridgeca ... --url` covers every admin command

    admin_routes.install(app, AdminJson, problem_responses)
    from . import routes_blacklist, routes_governance_public  # issue 13: the blacklist, the public register
    app.include_router(routes_blacklist.router(AdminJson, problem_responses))
    app.include_router(routes_governance_public.router())
    from . import routes_lifecycle  # withdraw, suspend, reinstate, renew, terms, history, expiring

    app.include_router(routes_lifecycle.router)
    from . import routes_trust_lists  # external TS 119 612 lists: register, fetch, versions; list:<id> anchors

    app.include_router(routes_trust_lists.router)
    from . import routes_trust_list  # our federation as a signed TS 119 612 list: /v1/trust-list.xml, .json, .json.p7s
    app.include_router(routes_trust_list.router)
    app.include_router(routes_governance.router)  # proposals, GET /v1/audit, GET /v1/audit/checkpoints
    from . import routes_evidence, routes_tsa  # issue 12: POST /v1/tsa, GET /v1/evidence/{sha256}

    app.include_router(routes_tsa.router)
    app.include_router(routes_evidence.router)
    from .console.pages import router as console  # issue 16: the administrator's console, the verification page
    app.include_router(console())

    app.include_router(routes_publication.router)

    # FastAPI's documented way to customise the schema (docs: "Extending OpenAPI") replaces the method.
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    authenticate_before_body(app)  # last: after every route is added
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, with error responses under application/problem+json
    and without its default 422 HTTPValidationError (validation is a 400 here)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in list(operation.get("responses", {}).items()):
                content = response.get("content", {})
                if "HTTPValidationError" in str(content):
                    del operation["responses"][status]
                elif status[0] in "45":
                    problem = next((v for v in content.values() if "ProblemDetails" in str(v)), None)
                    if problem is not None:
                        response["content"] = {PROBLEM: problem}
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    docs.add_bearer_security(schema)
    app.openapi_schema = schema
    return schema


def create_app_from_home(home: Path | str, **kwargs) -> FastAPI:
    return create_app(BridgeCA.open(home), close_on_shutdown=True, **kwargs)
