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

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse

from bridge.service import BridgeCA
from bridge.verification import VerificationService

from . import problems
from .limits import BodyLimitMiddleware
from .problems import Problem
from .schemas import (
    EnrollRequest,
    ReverseCertificateRequest,
    RevokeRequest,
    SignatureResultModel,
    VerificationResultModel,
    VerifyChainRequest,
    VerifySignatureRequest,
)
from .security import Admin, AnyUser, IssuerOrAdmin, PlatformOrAdmin

PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
PKCS7 = "application/pkcs7-mime"
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
DEFAULT_MAX_BODY = 1 << 20


def _b64(value: str | None, field: str) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "invalid_base64", f"{field} is not valid base64") from None


def create_app(ca: BridgeCA, *, max_body_bytes: int | None = None, close_on_shutdown: bool = False) -> FastAPI:
    limit = max_body_bytes or getattr(ca.settings, "max_body_bytes", DEFAULT_MAX_BODY)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if close_on_shutdown:
            ca.close()

    app = FastAPI(
        title="bridgeca",
        version="1",
        summary="Bridge CA and certificate verification for the Guangdong cross-certification platform",
        lifespan=lifespan,
    )
    app.state.ca = ca
    app.state.verification = VerificationService(ca)
    problems.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limit)

    def verification(request: Request) -> VerificationService:
        return request.app.state.verification

    # ------------------------------------------------------------------ health

    @app.get("/v1/health", tags=["service"])
    def health() -> dict:
        return {"status": "ok"}

    # ------------------------------------------------------------------ verification

    @app.post("/v1/verify/chain", response_model=VerificationResultModel, response_model_exclude_none=False, tags=["verification"])
    def verify_chain(body: VerifyChainRequest, request: Request, _who: PlatformOrAdmin) -> JSONResponse:
        result = verification(request).verify_chain(
            body.certificate, intermediates=body.intermediates, trust_anchor=body.trust_anchor,
            policies=body.policies, require_explicit_policy=body.require_explicit_policy,
            inhibit_policy_mapping=body.inhibit_policy_mapping, inhibit_any_policy=body.inhibit_any_policy,
            at=body.at, revocation=body.revocation,
        )
        return JSONResponse(result)

    @app.post("/v1/verify/signature", response_model=SignatureResultModel, tags=["verification"])
    def verify_signature(body: VerifySignatureRequest, request: Request, _who: PlatformOrAdmin) -> JSONResponse:
        options = dict(
            intermediates=body.intermediates, trust_anchor=body.trust_anchor, policies=body.policies,
            require_explicit_policy=body.require_explicit_policy, inhibit_policy_mapping=body.inhibit_policy_mapping,
            inhibit_any_policy=body.inhibit_any_policy, at=body.at, revocation=body.revocation,
        )
        if body.cms is not None:
            if body.certificate is not None or body.signature is not None:
                raise Problem(400, "invalid_request", "give either cms, or certificate + signature + data")
            result = verification(request).verify_cms(_b64(body.cms, "cms"), content=_b64(body.content, "content"), **options)
        elif body.certificate is not None and body.signature is not None and body.data is not None:
            result = verification(request).verify_raw(
                body.certificate, _b64(body.signature, "signature"), _b64(body.data, "data"), algorithm=body.algorithm, **options
            )
        else:
            raise Problem(400, "invalid_request", "give either cms, or certificate + signature + data")
        return JSONResponse(result)

    # ------------------------------------------------------------------ issuers

    @app.post("/v1/issuers", status_code=201, tags=["issuers"])
    def enroll(body: EnrollRequest, request: Request, who: IssuerOrAdmin) -> JSONResponse:
        view = request.app.state.ca.enroll(
            name=body.name, jurisdiction=body.jurisdiction, root_certificate=body.root_certificate,
            policy_mappings=[m.model_dump() for m in body.policy_mappings],
            permitted_subtrees=[s.model_dump() for s in body.permitted_subtrees] if body.permitted_subtrees else None,
            excluded_subtrees=[s.model_dump() for s in body.excluded_subtrees] if body.excluded_subtrees else None,
            path_length=body.path_length, actor=who.actor, owner=who.token_id,
        )
        return JSONResponse(view, status_code=201)

    def _owner(who) -> int | None:
        return who.token_id if who.role == "issuer" else None

    @app.get("/v1/issuers", tags=["issuers"])
    def list_issuers(request: Request, who: AnyUser) -> list[dict]:
        return request.app.state.ca.issuers(owner=_owner(who))

    @app.get("/v1/issuers/{issuer_id}", tags=["issuers"])
    def show_issuer(issuer_id: str, request: Request, who: AnyUser) -> dict:
        return request.app.state.ca.issuer(issuer_id, owner=_owner(who))

    @app.post("/v1/issuers/{issuer_id}/approve", tags=["issuers"])
    def approve(issuer_id: str, request: Request, who: Admin) -> dict:
        view = request.app.state.ca.approve(issuer_id, actor=who.actor)
        request.app.state.verification.invalidate()
        return view

    @app.post("/v1/issuers/{issuer_id}/reverse-certificate", status_code=201, tags=["issuers"])
    def reverse_certificate(issuer_id: str, body: ReverseCertificateRequest, request: Request, who: IssuerOrAdmin) -> JSONResponse:
        ca = request.app.state.ca
        ca.issuer(issuer_id, owner=_owner(who))  # 404 for another issuer's enrollment
        view = ca.upload_reverse(issuer_id, body.certificate, actor=who.actor)
        request.app.state.verification.invalidate()
        return JSONResponse(view, status_code=201)

    @app.post("/v1/cross-certificates/{serial}/revoke", tags=["issuers"])
    def revoke(serial: str, request: Request, who: Admin, body: RevokeRequest | None = None) -> dict:
        reason = body.reason if body is not None else "unspecified"
        result = request.app.state.ca.revoke(serial, reason, actor=who.actor)
        request.app.state.verification.invalidate()
        return result

    # ------------------------------------------------------------------ publication

    def _cache_control(request: Request, max_age: int) -> dict:
        return {"Cache-Control": f"public, max-age={max(0, max_age)}"}

    @app.get("/v1/ca/certificate", tags=["publication"], responses={200: {"content": {PKIX_CERT: {}, "application/x-pem-file": {}}}})
    def ca_certificate(request: Request) -> Response:
        ca = request.app.state.ca
        if PKIX_CERT in request.headers.get("accept", ""):
            return Response(ca.certificate_der(), media_type=PKIX_CERT)
        return PlainTextResponse(ca.certificate_pem(), media_type="application/x-pem-file")

    @app.get("/v1/crl", tags=["publication"], responses={200: {"content": {PKIX_CRL: {}}}})
    def crl(request: Request) -> Response:
        ca = request.app.state.ca
        der = ca.current_crl()
        return Response(der, media_type=PKIX_CRL, headers=_cache_control(request, _seconds_to_next_update(der)))

    @app.get("/v1/ca/issued-by-bridge.p7c", tags=["publication"], responses={200: {"content": {PKCS7: {}}}})
    def issued_by(request: Request) -> Response:
        return Response(request.app.state.ca.issued_by_bridge_p7c(), media_type=PKCS7, headers={"Cache-Control": "public, max-age=300"})

    @app.get("/v1/ca/issued-to-bridge.p7c", tags=["publication"], responses={200: {"content": {PKCS7: {}}}})
    def issued_to(request: Request) -> Response:
        return Response(request.app.state.ca.issued_to_bridge_p7c(), media_type=PKCS7, headers={"Cache-Control": "public, max-age=300"})

    async def _ocsp(request: Request, der: bytes) -> Response:
        response = await run_in_threadpool(request.app.state.ca.ocsp_response, der)
        return Response(response, media_type=OCSP_RESPONSE, headers={"Cache-Control": "max-age=60"})

    @app.post("/v1/ocsp", tags=["publication"], responses={200: {"content": {OCSP_RESPONSE: {}}}})
    async def ocsp_post(request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != OCSP_REQUEST:
            raise Problem(415, "unsupported_media_type", f"OCSP requests are {OCSP_REQUEST}")
        return await _ocsp(request, await request.body())

    @app.get("/v1/ocsp/{encoded:path}", tags=["publication"], responses={200: {"content": {OCSP_RESPONSE: {}}}})
    async def ocsp_get(encoded: str, request: Request) -> Response:
        from urllib.parse import unquote

        der = _b64(unquote(encoded), "OCSP request")
        return await _ocsp(request, der)

    return app


def _seconds_to_next_update(crl_der: bytes) -> int:
    from cryptography import x509

    crl = x509.load_der_x509_crl(crl_der)
    next_update = crl.next_update_utc
    if next_update is None:
        return 0
    return int((next_update - dt.datetime.now(dt.timezone.utc)).total_seconds())


def create_app_from_home(home: Path | str, **kwargs) -> FastAPI:
    return create_app(BridgeCA.open(home), close_on_shutdown=True, **kwargs)
