"""POST /v1/verify/chain and /v1/verify/signature: the service's hot routes.

Each has one handler, called with the request and its body model. FastAPI's
per-request machinery (dependency solving, its body reading, the response
model) is not used on these routes: ``VerifyRoute`` authenticates
(api/security.py's ``authenticate``, shared with every route), reads the
body once (api/inputs.py's ``read_json``, answering as FastAPI's reading
does) and calls the handler; the handler's signature documents the body
for OpenAPI. Errors are raised and leave through api/problems.py.

A question answered before, or a new leaf under a CA chain that validated
before with nothing to fetch, is answered on the event loop (bounded work:
one leaf's checks, ``VerificationService.quick_chain``); anything that may
search, read the database or fetch a CRL runs in the threadpool.
"""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations as objects.
import typing
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from .inputs import chain_options, read_json, verify_signature_body
from .routes_evidence import with_receipt
from .schemas import (
    SignatureResultModel,
    VerificationResultModel,
    VerifyChainRequest,
    VerifySignatureRequest,
    problem_responses,
)
from .security import authenticate

VERIFIER_ROLES = ("platform", "admin")


class VerifyRoute(APIRoute):
    """A route whose handler takes ``(request, body)``: authenticated for
    VERIFIER_ROLES, then the body read as the handler's ``body`` annotation
    says, before the handler runs.

    Its ASGI app calls that and sends the response, without FastAPI's
    per-request wrapping (two exit stacks for dependencies with ``yield``,
    which these routes have none of, and a second exception-handling
    layer): a refusal raised here reaches the app's ExceptionMiddleware,
    which answers it with the same api/problems.py handlers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handle = self.get_route_handler()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await handle(Request(scope, receive, send))
            await response(scope, receive, send)

        self.app = app

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = self.endpoint
        model = typing.get_type_hints(handler)["body"]

        async def handle(request: Request) -> Response:
            await authenticate(request, VERIFIER_ROLES)  # before the body: an anonymous caller learns nothing of it
            return await handler(request, await read_json(request, model))

        return handle


def json_response(content) -> Response:
    # orjson: the standard encoder costs about a tenth of a new leaf's
    # verification on a result; the bytes are JSONResponse's (compact, UTF-8).
    return Response(orjson.dumps(content), media_type="application/json")


router = APIRouter(tags=["verification"], route_class=VerifyRoute)
JSON_ERRORS = problem_responses(400, 401, 403, 404, 413, 415, 422)


@router.post("/v1/verify/chain", response_model=VerificationResultModel, responses=JSON_ERRORS,
             summary="Validate a certificate chain (RFC 5280) through the bridge")
async def verify_chain(request: Request, body: VerifyChainRequest) -> Response:
    service = request.app.state.verification
    options = chain_options(body)
    result = service.quick_chain(body.certificate, **options)
    if result is None:
        result = await run_in_threadpool(lambda: service.verify_chain(body.certificate, **options))
    if body.receipt:  # signed, its evidence kept (api/routes_evidence.py): a key and the database, so in a thread
        result = await run_in_threadpool(with_receipt, request.app, "chain", body, result)
    return json_response(result)


@router.post("/v1/verify/signature", response_model=SignatureResultModel, responses=JSON_ERRORS,
             summary="Verify a CMS SignedData or a raw signature, then the signer's chain")
async def verify_signature(request: Request, body: VerifySignatureRequest) -> Response:
    service = request.app.state.verification
    result = await run_in_threadpool(verify_signature_body, service, body)  # the reading batch items share
    if body.receipt:
        result = await run_in_threadpool(with_receipt, request.app, "signature", body, result)
    return json_response(result)
