"""The bridge's publications: its certificate(s), CRL, certs-only bundles
(every public GET through http_cache: ETag, 304, HEAD) and the OCSP
responder (RFC 6960, POST and GET)."""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations as objects.
import datetime as dt
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from . import http_cache
from .inputs import base64_field
from .problems import Problem
from .schemas import problem_responses

PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
PKCS7 = "application/pkcs7-mime"
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
PEM = "application/x-pem-file"


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


router = APIRouter(tags=["publication"])


# Every public GET that publishes goes through http_cache: ETag, 304, HEAD.

@http_cache.publication(router, "/v1/ca/certificate", response_class=PkixCertResponse,
                        summary="The bridge certificate: PEM, or DER with Accept: application/pkix-cert",
                        responses={200: {"description": "the bridge certificate", "content": {
                            PEM: {"schema": {"type": "string"}}, PKIX_CERT: {"schema": {"type": "string", "format": "binary"}}}}})
def ca_certificate(request: Request) -> Response:
    ca = request.app.state.ca
    der = PKIX_CERT in request.headers.get("accept", "").lower()
    return http_cache.respond(request, ca.certificate_der() if der else ca.certificate_pem().encode(),
                              PKIX_CERT if der else PEM, cache_control="public, max-age=3600",
                              last_modified=ca.certificate.not_valid_before_utc, vary="Accept")


@http_cache.publication(router, "/v1/ca/certificates", response_class=PkixCertResponse,
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


@http_cache.publication(router, "/v1/crl", response_class=PkixCrlResponse,
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

@http_cache.publication(router, "/v1/ca/issued-by-bridge.p7c", response_class=Pkcs7Response,
                        summary="Certs-only CMS bundle of the cross-certificates the bridge issued",
                        responses=_binary(PKCS7, "certs-only CMS SignedData (RFC 5652), DER"))
def issued_by(request: Request) -> Response:
    return http_cache.respond(request, request.app.state.ca.issued_by_bridge_p7c(), PKCS7, cache_control="public, max-age=300")


@http_cache.publication(router, "/v1/ca/issued-to-bridge.p7c", response_class=Pkcs7Response,
                        summary="Certs-only CMS bundle of the certificates members issued to the bridge",
                        responses=_binary(PKCS7, "certs-only CMS SignedData (RFC 5652), DER"))
def issued_to(request: Request) -> Response:
    return http_cache.respond(request, request.app.state.ca.issued_to_bridge_p7c(), PKCS7, cache_control="public, max-age=300")


async def _ocsp(request: Request, der: bytes) -> Response:
    response = await run_in_threadpool(request.app.state.ca.ocsp_response, der)
    return Response(response, media_type=OCSP_RESPONSE, headers={"Cache-Control": _ocsp_cache_control(response)})


ocsp_doc = _binary(OCSP_RESPONSE, "an RFC 6960 OCSPResponse, DER (malformedRequest for a request that does not parse)")


@router.post("/v1/ocsp", response_class=OcspResponse, summary="OCSP responder (RFC 6960), POST",
             responses={**ocsp_doc, **problem_responses(413, 415)},
             openapi_extra={"requestBody": {"required": True, "content": {
                 OCSP_REQUEST: {"schema": {"type": "string", "format": "binary"}}}}})
async def ocsp_post(request: Request) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != OCSP_REQUEST:
        raise Problem(415, "unsupported_media_type", f"OCSP requests are {OCSP_REQUEST}")
    return await _ocsp(request, await request.body())


@router.get("/v1/ocsp/{encoded:path}", response_class=OcspResponse,
            summary="OCSP responder (RFC 6960 appendix A.1), GET with the url-encoded base64 request",
            responses={**ocsp_doc, **problem_responses(400)})
async def ocsp_get(encoded: str, request: Request) -> Response:
    return await _ocsp(request, base64_field(unquote(encoded), "OCSP request") or b"")


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
