"""The FastAPI application: thin handlers over bridge/ and pki/.

Each handler parses, makes one domain call, and returns; errors leave as
problem+json through api.problems.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse

from bridge import governance
from bridge.service import BridgeCA

from . import docs, http_cache, problems
from .inputs import check_issuer_id, check_serial, require_json_body
from .limits import BodyLimitMiddleware
from .observability import Metrics, ObservabilityMiddleware, ReadyView, measured_verification, ready_response, scrape
from .problems import PROBLEM, Problem
from .ratelimit import FailureLimiter, RateLimitMiddleware, TokenBuckets
from .schemas import (
    ApprovedIssuerView,
    EnrollRequest,
    Health,
    IssuerView,
    ReverseCertificateRequest,
    ReverseCertificateView,
    RevokeRequest,
    RevokeResult,
    problem_responses,
)
from .security import Admin, AnyUser, AuthCheck, Principal, PrincipalCache, auth_first, require

PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
PKCS7 = "application/pkcs7-mime"
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
PEM = "application/x-pem-file"


def _b64(value: str, field: str) -> bytes:
    """Strict base64; whitespace (line breaks of ``base64 -w76``) is ignored."""
    try:
        compact = "".join(value.split()).encode("ascii")
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "invalid_base64", f"{field} is not valid base64") from None


def _json_caller(*roles: str) -> AuthCheck:
    """One dependency for a JSON route: token, role, then media type (in that
    order, as separate dependencies would answer), at a third of the cost of
    three dependencies."""
    check_role = require(*roles)

    @auth_first  # see security.authenticate_before_body
    async def caller(request: Request) -> Principal:
        principal = await check_role(request)
        require_json_body(request)
        return principal

    return caller


PlatformOrAdminJson = Annotated[Principal, Depends(_json_caller("platform", "admin"))]
IssuerOrAdminJson = Annotated[Principal, Depends(_json_caller("issuer", "admin"))]
AdminJson = Annotated[Principal, Depends(_json_caller("admin"))]


class _Binary(Response):
    """Base for the publication routes' binary responses."""


class PkixCertResponse(_Binary):
    media_type = PKIX_CERT


class PkixCrlResponse(_Binary):
    media_type = PKIX_CRL


class Pkcs7Response(_Binary):
    media_type = PKCS7


class OcspResponse(_Binary):
    media_type = OCSP_RESPONSE


def _binary(media_type: str, description: str) -> dict:
    return {200: {"description": description, "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}}


_problems = problem_responses


def create_app(ca: BridgeCA, *, max_body_bytes: int | None = None, close_on_shutdown: bool = False) -> FastAPI:
    # The body limit is the bridge's settings (BridgeSettings.max_body_bytes,
    # read once when the bridge was opened); the argument overrides it for tests.
    settings = ca.settings
    limit = settings.max_body_bytes if max_body_bytes is None else max_body_bytes
    from . import routes_governance  # imports this module: here, not at the top

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
    from . import routes_batch, routes_verify

    # The hot routes first, and in the app's own table: FastAPI matches an
    # included router's routes in a second pass of its own (about a tenth
    # of a cached answer's cost), a route of the app's table directly.
    app.router.routes.extend(routes_verify.router.routes + routes_batch.router.routes)
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

    common = _problems(401, 403, 413)
    json_errors = _problems(400, 401, 403, 413, 415)

    # ------------------------------------------------------------------ health

    @app.get("/v1/health", tags=["service"], response_model=Health, summary="Liveness")
    async def health() -> JSONResponse:
        # On the event loop, not in the threadpool: a pool full of slow
        # verifications (a CRL server that hangs) must not make a live
        # worker look dead to whoever probes it.
        return JSONResponse({"status": "ok"})

    @app.get("/v1/ready", tags=["service"], response_model=ReadyView, summary="Readiness: database, signer, CRL, epoch poll",
             responses=_problems(503))
    def ready(request: Request) -> JSONResponse:
        return ready_response(request.app.state)

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse, summary="Prometheus metrics (all workers)",
             responses={200: {"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics(request: Request) -> Response:
        body, media_type = scrape(request.app.state)
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ issuers

    def _owner(who) -> int | None:
        return who.token_id if who.role == "issuer" else None

    @app.post("/v1/issuers", status_code=201, response_model=IssuerView, tags=["issuers"],
              summary="Enroll a member root (pending until an administrator approves)",
              responses={**json_errors, **_problems(409, 422)})
    def enroll(body: EnrollRequest, request: Request, who: IssuerOrAdminJson) -> JSONResponse:
        view = request.app.state.ca.enroll(
            name=body.name, jurisdiction=body.jurisdiction, root_certificate=body.root_certificate,
            policy_mappings=[m.model_dump() for m in body.policy_mappings],
            permitted_subtrees=[s.model_dump() for s in body.permitted_subtrees] if body.permitted_subtrees else None,
            excluded_subtrees=[s.model_dump() for s in body.excluded_subtrees] if body.excluded_subtrees else None,
            path_length=body.path_length, actor=who.actor, owner=who.token_id, rollover_of=body.rollover_of,
        )
        return JSONResponse(view, status_code=201)

    @app.get("/v1/issuers", response_model=list[IssuerView], tags=["issuers"],
             summary="List enrollments (an issuer token sees only its own)", responses=_problems(401))
    def list_issuers(request: Request, who: AnyUser) -> JSONResponse:
        return JSONResponse(request.app.state.ca.issuers(owner=_owner(who)))

    @app.get("/v1/issuers/{issuer_id}", response_model=IssuerView, tags=["issuers"],
             summary="One enrollment, with its cross-certificates", responses=_problems(401, 404))
    def show_issuer(issuer_id: str, request: Request, who: AnyUser) -> JSONResponse:
        return JSONResponse(request.app.state.ca.issuer(check_issuer_id(issuer_id), owner=_owner(who)))

    @app.post("/v1/issuers/{issuer_id}/approve", response_model=ApprovedIssuerView, tags=["issuers"],
              summary="Issue the cross-certificate (bridge → member root)",
              responses={**common, **_problems(404, 409, 422, 503)})
    def approve(issuer_id: str, request: Request, who: Admin) -> JSONResponse:
        # Through the governance gate: done now, or (approvals_required 2) a 202 proposal.
        result = governance.perform(request.app.state.ca, "approve", {"enrollment_id": check_issuer_id(issuer_id)}, actor=who.actor)
        return routes_governance.performed(request, result)

    @app.post("/v1/issuers/{issuer_id}/reverse-certificate", status_code=201, response_model=ReverseCertificateView,
              tags=["issuers"], summary="Publish the certificate the member root issued to the bridge",
              responses={**json_errors, **_problems(404, 409, 422)})
    def reverse_certificate(issuer_id: str, body: ReverseCertificateRequest, request: Request,
                            who: IssuerOrAdminJson) -> JSONResponse:
        ca = request.app.state.ca
        ca.issuer(check_issuer_id(issuer_id), owner=_owner(who))  # 404 for another issuer's enrollment
        view = ca.upload_reverse(issuer_id, body.certificate, actor=who.actor)
        request.app.state.verification.invalidate()
        return JSONResponse(view, status_code=201)

    @app.post("/v1/cross-certificates/{serial}/revoke", response_model=RevokeResult, tags=["issuers"],
              summary="Revoke a cross-certificate; the next CRL and OCSP answers list it",
              responses={**json_errors, **_problems(404, 409, 422, 503)})
    def revoke(serial: str, request: Request, who: AdminJson, body: RevokeRequest | None = None) -> JSONResponse:
        reason = body.reason if body is not None else "unspecified"
        result = governance.perform(request.app.state.ca, "revoke", {"serial": check_serial(serial), "reason": reason}, actor=who.actor)
        return routes_governance.performed(request, result)

    from . import admin_routes  # reject, CRL now, tokens: so `bridgeca ... --url` covers every admin command

    admin_routes.install(app, AdminJson, _problems)
    from . import routes_blacklist, routes_governance_public  # issue 13: the blacklist, the public register
    app.include_router(routes_blacklist.router(AdminJson, _problems))
    app.include_router(routes_governance_public.router())
    from . import routes_lifecycle  # withdraw, suspend, reinstate, renew, terms, history, expiring

    app.include_router(routes_lifecycle.router)
    from . import routes_trust_lists  # external TS 119 612 lists: register, fetch, versions; list:<id> anchors

    app.include_router(routes_trust_lists.router)
    from . import routes_trust_list  # our federation as a signed TS 119 612 list: /v1/trust-list.xml, .json, .json.p7s
    app.include_router(routes_trust_list.router)
    app.include_router(routes_governance.router)  # proposals, GET /v1/audit, GET /v1/audit/checkpoints
    from .console.pages import router as console  # issue 16: the administrator's console, the verification page
    app.include_router(console())

    # ------------------------------------------------------------------ publication

    # Every public GET that publishes goes through http_cache: ETag, 304, HEAD.

    @http_cache.publication(app, "/v1/ca/certificate", tags=["publication"], response_class=PkixCertResponse,
                            summary="The bridge certificate: PEM, or DER with Accept: application/pkix-cert",
                            responses={200: {"description": "the bridge certificate", "content": {
                                PEM: {"schema": {"type": "string"}}, PKIX_CERT: {"schema": {"type": "string", "format": "binary"}}}}})
    def ca_certificate(request: Request) -> Response:
        ca = request.app.state.ca
        der = PKIX_CERT in request.headers.get("accept", "").lower()
        return http_cache.respond(request, ca.certificate_der() if der else ca.certificate_pem().encode(),
                                  PKIX_CERT if der else PEM, cache_control="public, max-age=3600",
                                  last_modified=ca.certificate.not_valid_before_utc, vary="Accept")

    @http_cache.publication(app, "/v1/ca/certificates", tags=["publication"], response_class=PkixCertResponse,
                            summary="Every certificate of the bridge itself: each key's self-signed certificate, then the link "
                                    "certificates of a dual-key bridge. PEM, or a certs-only CMS bundle with Accept: application/pkcs7-mime",
                            responses={200: {"description": "the bridge's own certificates", "content": {
                                PEM: {"schema": {"type": "string"}}, PKCS7: {"schema": {"type": "string", "format": "binary"}}}}})
    def ca_certificates(request: Request) -> Response:
        # A dual-key bridge (SM2 and ECDSA under one name) has a second
        # self-signed certificate: relying parties that anchor on its SM2 key
        # need it, and /v1/ca/certificate serves the primary only.
        ca = request.app.state.ca
        bundle = PKCS7 in request.headers.get("accept", "").lower()
        # Certificates are only ever added to this set, each dated by its
        # notBefore, so the newest notBefore is when the set last changed.
        newest = max(c.not_valid_before_utc for c in ca.bridge_certificates() + ca.link_certificates())
        return http_cache.respond(request, ca.own_certificates_p7c() if bundle else ca.own_certificates_pem().encode(),
                                  PKCS7 if bundle else PEM, cache_control="public, max-age=3600",
                                  last_modified=newest, vary="Accept")

    @http_cache.publication(app, "/v1/crl", tags=["publication"], response_class=PkixCrlResponse,
                            summary="The bridge's current CRL (DER)",
                            responses=_binary(PKIX_CRL, "the current CRL, DER; Cache-Control max-age runs no later than its nextUpdate"))
    def crl(request: Request) -> Response:
        from cryptography import x509

        der = request.app.state.ca.current_crl()
        parsed = x509.load_der_x509_crl(der)
        return http_cache.respond(request, der, PKIX_CRL, last_modified=parsed.last_update_utc,
                                  cache_control=f"public, max-age={max(0, _seconds_to_next_update(parsed))}")

    # The bundles carry no Last-Modified: a revocation or an expiry removes a
    # certificate, and nothing left in the bundle dates that removal, so a
    # date taken from the members would answer a changed bundle with 304.

    @http_cache.publication(app, "/v1/ca/issued-by-bridge.p7c", tags=["publication"], response_class=Pkcs7Response,
                            summary="Certs-only CMS bundle of the cross-certificates the bridge issued",
                            responses=_binary(PKCS7, "certs-only CMS SignedData (RFC 5652), DER"))
    def issued_by(request: Request) -> Response:
        return http_cache.respond(request, request.app.state.ca.issued_by_bridge_p7c(), PKCS7, cache_control="public, max-age=300")

    @http_cache.publication(app, "/v1/ca/issued-to-bridge.p7c", tags=["publication"], response_class=Pkcs7Response,
                            summary="Certs-only CMS bundle of the certificates members issued to the bridge",
                            responses=_binary(PKCS7, "certs-only CMS SignedData (RFC 5652), DER"))
    def issued_to(request: Request) -> Response:
        return http_cache.respond(request, request.app.state.ca.issued_to_bridge_p7c(), PKCS7, cache_control="public, max-age=300")

    async def _ocsp(request: Request, der: bytes) -> Response:
        response = await run_in_threadpool(request.app.state.ca.ocsp_response, der)
        return Response(response, media_type=OCSP_RESPONSE, headers={"Cache-Control": _ocsp_cache_control(response)})

    ocsp_doc = _binary(OCSP_RESPONSE, "an RFC 6960 OCSPResponse, DER (malformedRequest for a request that does not parse)")

    @app.post("/v1/ocsp", tags=["publication"], response_class=OcspResponse, summary="OCSP responder (RFC 6960), POST",
              responses={**ocsp_doc, **_problems(413, 415)},
              openapi_extra={"requestBody": {"required": True, "content": {
                  OCSP_REQUEST: {"schema": {"type": "string", "format": "binary"}}}}})
    async def ocsp_post(request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != OCSP_REQUEST:
            raise Problem(415, "unsupported_media_type", f"OCSP requests are {OCSP_REQUEST}")
        return await _ocsp(request, await request.body())

    @app.get("/v1/ocsp/{encoded:path}", tags=["publication"], response_class=OcspResponse,
             summary="OCSP responder (RFC 6960 appendix A.1), GET with the url-encoded base64 request",
             responses={**ocsp_doc, **_problems(400)})
    async def ocsp_get(encoded: str, request: Request) -> Response:
        der = _b64(unquote(encoded), "OCSP request")
        return await _ocsp(request, der)

    # FastAPI's documented way to customise the schema (docs: "Extending OpenAPI") replaces the method.
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    from .security import authenticate_before_body  # last: after every route is added
    authenticate_before_body(app)
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


def _ocsp_cache_control(response_der: bytes) -> str:
    """max-age no later than the response's nextUpdate (RFC 5019 6.2); error responses are not cached."""
    from cryptography.x509 import ocsp

    try:
        response = ocsp.load_der_ocsp_response(response_der)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return "no-store"
        next_update = response.next_update_utc
    except ValueError:
        return "no-store"
    if next_update is None:
        return "no-cache"
    seconds = int((next_update - dt.datetime.now(dt.timezone.utc)).total_seconds())
    return f"public, max-age={max(0, seconds)}"


def _seconds_to_next_update(crl) -> int:
    next_update = crl.next_update_utc
    if next_update is None:
        return 0
    return int((next_update - dt.datetime.now(dt.timezone.utc)).total_seconds())


def create_app_from_home(home: Path | str, **kwargs) -> FastAPI:
    return create_app(BridgeCA.open(home), close_on_shutdown=True, **kwargs)
