"""The evidence service's state in the app, the receipt hook of the verify
routes, and ``GET /v1/evidence/{sha256}`` (bridge/evidence.py).

The service keys, the TSA and the receipt issuer are made on first use in
each worker (bridge/service_keys.py makes a key an old home lacks), so a
service that never time-stamps or signs a receipt never opens those keys.
"""
# No ``from __future__ import annotations``: FastAPI must see the dependency annotations as objects.
import logging
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from bridge.evidence import EvidenceStore
from bridge.receipts import ReceiptIssuer, ReceiptRequest
from bridge.service_keys import ServiceKeyError, ServiceKeys
from bridge.signer import SignerError
from bridge.store import StoreError
from bridge.tsa import TimeStampAuthority

from .inputs import base64_field
from .problems import Problem
from .schemas import ProblemDetails
from .security import Principal, require

router = APIRouter(tags=["evidence"])
log = logging.getLogger("bridgeca.api")
_lock = threading.Lock()

PlatformOrAdmin = Annotated[Principal, Depends(require("platform", "admin"))]
# The fields of a verify request that are inputs (named by hash in a receipt); the rest are its options.
_INPUT_FIELDS = {"certificate", "intermediates", "cms", "content", "signature", "data", "receipt", "kind"}


@dataclass(frozen=True)
class EvidenceServices:
    keys: ServiceKeys
    tsa: TimeStampAuthority
    receipts: ReceiptIssuer
    store: EvidenceStore


def evidence_services(app) -> EvidenceServices:
    """This app's evidence services, made on first use."""
    services = getattr(app.state, "evidence_services", None)
    if services is None:
        with _lock:
            services = getattr(app.state, "evidence_services", None)
            if services is None:
                ca = app.state.ca
                keys = ServiceKeys(ca.settings, ca.authority, ca.store)
                store = EvidenceStore(ca.store, ca.settings)
                services = EvidenceServices(keys, TimeStampAuthority(keys, ca.store, ca.settings.tsa_policy),
                                            ReceiptIssuer(ca, keys, app.state.verification, store), store)
                app.state.evidence_services = services
    return services


def receipt_request(route: str, body) -> ReceiptRequest:
    """What a chain or signature request asked, for its receipt (``body``: its request model)."""
    options = body.model_dump(mode="json", exclude=_INPUT_FIELDS)
    if route == "chain":
        return ReceiptRequest("chain", options, certificate=body.certificate, intermediates=tuple(body.intermediates))
    return ReceiptRequest("signature", options, certificate=body.certificate, intermediates=tuple(body.intermediates),
                          cms=base64_field(body.cms, "cms"), content=base64_field(body.content, "content"),
                          signature=base64_field(body.signature, "signature"), data=base64_field(body.data, "data"))


def with_receipt(app, route: str, body, result: dict) -> dict:
    """``result`` with ``"receipt"`` (base64 CMS) when the request asked for one; blocking (call it in a thread)."""
    if not getattr(body, "receipt", False):
        return result
    try:
        receipt = evidence_services(app).receipts.issue(receipt_request(route, body), result)
    except (ServiceKeyError, SignerError, StoreError) as exc:
        log.error("receipt not issued: %s", exc)
        raise Problem(503, "receipt_unavailable", "the receipt key or the evidence store is unavailable; ask again later") from None
    return {**result, "receipt": receipt}


_EVIDENCE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "the evidence's bytes (DER for certificates, CMS, CRLs, OCSP responses and time-stamp tokens)",
          "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    401: {"model": ProblemDetails, "description": "no token, or an unknown or revoked one (code: unauthorized)"},
    403: {"model": ProblemDetails, "description": "the token's role may not use this route (code: forbidden)"},
    404: {"model": ProblemDetails, "description": "no evidence with that SHA-256, or kept no longer (code: not_found)"},
}
_MEDIA_TYPES = {
    "certificate": "application/pkix-cert",
    "crl": "application/pkix-crl",
    "ocsp": "application/ocsp-response",
    "cms": "application/pkcs7-mime",
    "timestamp": "application/pkcs7-mime",
    "content": "application/octet-stream",
}


@router.get("/v1/evidence/{sha256}", responses=_EVIDENCE_DOC, response_class=Response,
            summary="Evidence a signed receipt names, by the SHA-256 of its bytes (kept for a bounded time)")
async def evidence(sha256: str, request: Request, _who: PlatformOrAdmin) -> Response:
    store = evidence_services(request.app).store
    record = await run_in_threadpool(store.get, sha256)
    if record is None:
        raise Problem(404, "not_found", "no evidence with that SHA-256 is kept")
    return Response(record.data, media_type=_MEDIA_TYPES.get(record.kind, "application/octet-stream"),
                    headers={"X-Evidence-Kind": record.kind, "Cache-Control": "private, max-age=86400, immutable"})
