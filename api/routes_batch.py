"""POST /v1/verify/batch: many chains and signatures in one request.

Each item is a /v1/verify/chain or /v1/verify/signature body with a
``kind``, read by the same models and the same readers (api/inputs.py) as
the single routes, and answered with what the single route would answer:
its 200 result, or its problem (status and code included) as the item's
``error``. An item fails alone; only the envelope (not JSON, no items, more
than ``batch_max_items``) fails the request.

The whole batch runs in one thread of the pool, item after item: one hop
instead of one per item, and the event loop stays free for other requests
(the single chain route answers known chains on the loop because one leaf's
work is small; a hundred leaves' is not). Each item gets its own pki Budget,
so a hostile item exhausts only its own; items share the Verifier of their
trust anchor, looked up once per request (PinnedVerification), and are
counted in the metrics by the service's methods, as single requests are.
"""
# No ``from __future__ import annotations``: FastAPI reads the handler's annotations as objects.
import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from bridge.errors import BridgeError
from pki.errors import InputError

from .inputs import chain_options, verify_signature_body

# The single routes' problem vocabulary, so an item's error is the problem
# its own request would get (api/problems.py's handlers build the same body).
from .problems import _TITLES, Problem, bridge_status
from .routes_evidence import with_receipt
from .routes_verify import VerifyRoute, json_response
from .schemas import BatchItem, VerifyBatchRequest, VerifyBatchResponse, problem_responses

log = logging.getLogger("bridgeca.api")

# Authenticated and read as the single routes are (api/routes_verify.py).
router = APIRouter(tags=["verification"], route_class=VerifyRoute)

_ITEM = TypeAdapter(BatchItem)
_KINDS = ("chain", "signature")
# Pydantic's errors about the discriminator itself carry no location.
_TAG_ERRORS = frozenset({"union_tag_not_found", "union_tag_invalid"})


@router.post("/v1/verify/batch", response_model=VerifyBatchResponse,
             summary="Verify many chains and signatures in one request, each answered as its single route would",
             responses=problem_responses(400, 401, 403, 413, 415))
async def verify_batch(request: Request, body: VerifyBatchRequest) -> Response:
    state = request.app.state
    limit = state.ca.settings.batch_max_items
    if len(body.items) > limit:
        raise Problem(413, "too_many_items", f"{len(body.items)} items; a batch holds at most {limit}", max_items=limit)
    results = await run_in_threadpool(_verify_items, state.verification, body.items, body.options, request.app)
    return json_response({"results": results})


def _verify_items(service, items: list, options, app=None) -> list[dict]:
    pinned = service.pinned()
    # Only what the caller wrote: a shared option left out must not
    # override an item's own default-dependent reading (require_explicit_policy).
    shared = {name: getattr(options, name) for name in options.model_fields_set} if options is not None else {}
    results = []
    for index, raw in enumerate(items):
        kind = raw.get("kind") if isinstance(raw, dict) else None
        kind = kind if isinstance(kind, str) and kind in _KINDS else None
        try:
            item = _ITEM.validate_python(raw, from_attributes=True)  # as FastAPI validates a single route's body
            if shared:
                item = item.model_copy(update={k: v for k, v in shared.items() if k not in item.model_fields_set})
            if item.kind == "chain":
                result = pinned.verify_chain(item.certificate, **chain_options(item))
            else:
                result = verify_signature_body(pinned, item)
            if app is not None:
                result = with_receipt(app, item.kind, item, result)  # when the item asks for one
        except Exception as exc:  # noqa: BLE001 - each item's failure is its own answer
            results.append({"index": index, "kind": kind, "error": _problem(exc)})
            continue
        results.append({"index": index, "kind": kind, "result": result})
    return results


def _problem(exc: Exception) -> dict:
    """The problem body api/problems.py's handlers would send for ``exc``."""
    extra = {}
    if isinstance(exc, ValidationError):
        status, code, extra["errors"] = 400, "invalid_request", _field_errors(exc)
        first = extra["errors"][0] if extra["errors"] else {"field": "item", "message": "invalid"}
        detail = f"{first['field']}: {first['message']}"
    elif isinstance(exc, Problem):
        status, code, detail, extra = exc.status, exc.code, exc.detail, exc.extra
    elif isinstance(exc, BridgeError):
        status, code, detail = bridge_status(exc), exc.code, exc.message
    elif isinstance(exc, InputError):
        status, code, detail = 400, "malformed_input", str(exc)
    else:
        log.exception("unexpected error in a batch item", exc_info=exc)
        status, code, detail = 500, "internal_error", "internal error; see the server log"
    return {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "code": code,
            "detail": detail, **extra}


def _field_errors(exc: ValidationError) -> list[dict]:
    """As api/problems.py words a body's validation errors, with the item in
    the body's place: the discriminator's tag ("chain") leaves the location,
    so a field is named as in its single route's answer."""
    errors = []
    for err in exc.errors(include_url=False):
        loc = err.get("loc", ())
        if loc and loc[0] in _KINDS:
            loc = loc[1:]
        if err.get("type") in _TAG_ERRORS:
            field = "kind"
        else:
            field = ".".join(str(p) for p in loc) or "item"
        errors.append({"field": field, "message": err.get("msg", "invalid")})
    return errors
