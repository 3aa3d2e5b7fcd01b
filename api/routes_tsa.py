"""The bridge's RFC 3161 time-stamping authority over HTTP (bridge/tsa.py):
``POST /v1/tsa`` takes ``application/timestamp-query`` and answers
``application/timestamp-reply`` (RFC 3161 3.4), a request the TSA refuses
included (a TimeStampResp with status rejection and its failure bit). Only a
body of another media type, or none, gets a problem+json (415 / 400): it is
not a time-stamp request at all. ``GET /v1/tsa/certificate`` is the TSA's
certificate (PEM), for ``openssl ts -verify -untrusted``.
"""
# No ``from __future__ import annotations``: FastAPI must see the dependency annotations as objects.
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from bridge.service_keys import TSA

from .problems import Problem
from .routes_evidence import PlatformOrAdmin, evidence_services
from .schemas import ProblemDetails

QUERY = "application/timestamp-query"
REPLY = "application/timestamp-reply"

router = APIRouter(tags=["time-stamping"])


class TimeStampReply(Response):
    media_type = REPLY


@router.post("/v1/tsa", response_class=TimeStampReply,
             summary="RFC 3161 time-stamping: a TimeStampReq in, a TimeStampResp out (rejections included)",
             responses={200: {"description": "a TimeStampResp, DER: granted with a token, or rejection with its failure info",
                              "content": {REPLY: {"schema": {"type": "string", "format": "binary"}}}},
                        400: {"model": ProblemDetails, "description": "an empty body (code: invalid_request)"},
                        401: {"model": ProblemDetails, "description": "no token, or an unknown or revoked one"},
                        403: {"model": ProblemDetails, "description": "the token's role may not use this route"},
                        413: {"model": ProblemDetails, "description": "request body over the limit (code: body_too_large)"},
                        415: {"model": ProblemDetails, "description": f"the body is not {QUERY} (code: unsupported_media_type)"}},
             openapi_extra={"requestBody": {"required": True, "content": {QUERY: {"schema": {"type": "string", "format": "binary"}}}}})
async def time_stamp(request: Request, _who: PlatformOrAdmin) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != QUERY:
        raise Problem(415, "unsupported_media_type", f"time-stamp requests are {QUERY}")
    body = await request.body()
    if not body:
        raise Problem(400, "invalid_request", "the body is empty: send a DER TimeStampReq")
    tsa = evidence_services(request.app).tsa
    return Response(await run_in_threadpool(tsa.respond, body), media_type=REPLY, headers={"Cache-Control": "no-store"})


@router.get("/v1/tsa/certificate", response_class=Response, summary="The TSA's certificate (PEM), issued by the bridge",
            responses={200: {"description": "PEM", "content": {"application/x-pem-file": {"schema": {"type": "string"}}}}})
async def tsa_certificate(request: Request) -> Response:
    from cryptography.hazmat.primitives.serialization import Encoding

    key = await run_in_threadpool(evidence_services(request.app).keys.get, TSA)
    return Response(key.certificate.public_bytes(Encoding.PEM), media_type="application/x-pem-file",
                    headers={"Cache-Control": "public, max-age=3600"})
