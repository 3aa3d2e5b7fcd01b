"""Our federation as a signed trusted list (bridge/trust_list.py): the ETSI
TS 119 612 XML, its JSON equivalent, and the JSON's detached CMS signature.
Public (no token), conditional GET and HEAD through api/http_cache.py.

The documents follow the revocation epoch this process polls (at most every
0.25 s), so a change made through any worker is published within that.
Caches must revalidate (``no-cache``): an ETag makes that a 304.
"""
# No ``from __future__ import annotations``: FastAPI must see the annotations as objects.
from fastapi import APIRouter, Request, Response

from . import http_cache
from .problems import Problem
from .schemas import ProblemDetails

XML = "application/xml"
JSON = "application/json"
PKCS7_SIGNATURE = "application/pkcs7-signature"
CACHE_CONTROL = "public, no-cache"

router = APIRouter(tags=["publication"])


class XmlResponse(Response):
    media_type = XML


class JsonDocumentResponse(Response):
    media_type = JSON


class SignatureResponse(Response):
    media_type = PKCS7_SIGNATURE


def _published(request: Request):
    # The epoch the verification service polls: every trust change moves it.
    return request.app.state.ca.published_trust_list(request.app.state.verification.current_epoch())


_UNSIGNABLE = {503: {"model": ProblemDetails, "description": "no key of this bridge can sign the XML list (an SM2-only bridge; code: trust_list_unsignable), "
                                    "or the signer or database is unavailable"}}


@http_cache.publication(router, "/v1/trust-list.xml", response_class=XmlResponse,
                        summary="The federation as an ETSI TS 119 612 v2.4.1 trusted list, XAdES-signed (enveloped)",
                        responses={200: {"description": "the signed list", "content": {XML: {"schema": {"type": "string"}}}},
                                   **_UNSIGNABLE})
def trust_list_xml(request: Request) -> Response:
    published = _published(request)
    if published.xml is None:
        raise Problem(503, "trust_list_unsignable", published.xml_problem or "this bridge cannot sign an XML trust list")
    return http_cache.respond(request, published.xml, XML, cache_control=CACHE_CONTROL, last_modified=published.issued_at)


@http_cache.publication(router, "/v1/trust-list.json", response_class=JsonDocumentResponse,
                        summary="The same list as JSON; its detached CMS signature is /v1/trust-list.json.p7s",
                        responses={200: {"description": "the list, UTF-8 JSON (sign and verify these exact bytes)",
                                         "content": {JSON: {"schema": {"type": "object"}}}}})
def trust_list_json(request: Request) -> Response:
    published = _published(request)
    return http_cache.respond(request, published.json, JSON, cache_control=CACHE_CONTROL, last_modified=published.issued_at)


@http_cache.publication(router, "/v1/trust-list.json.p7s", response_class=SignatureResponse,
                        summary="Detached CMS SignedData (DER) over the exact bytes of /v1/trust-list.json, by the bridge",
                        responses={200: {"description": "openssl cms -verify -binary -inform DER -in trust-list.json.p7s "
                                                        "-content trust-list.json -CAfile bridge.pem -purpose any",
                                         "content": {PKCS7_SIGNATURE: {"schema": {"type": "string", "format": "binary"}}}}})
def trust_list_json_signature(request: Request) -> Response:
    published = _published(request)
    return http_cache.respond(request, published.json_signature, PKCS7_SIGNATURE, cache_control=CACHE_CONTROL,
                              last_modified=published.issued_at)
