"""Member lifecycle routes (bridge/lifecycle.py): withdraw, suspend,
reinstate, renew, new terms, the status history, and cross-certificates
near expiry. Every trust change goes through bridge/governance.py's
``perform`` (where two-person control applies), then this process forgets
its Verifiers; other processes follow through the epoch.
"""
# No ``from __future__ import annotations``: FastAPI must see the dependency annotations as objects.
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from bridge import governance

from .inputs import check_issuer_id
from .problems import outcome_status
from .schemas import (
    ExpiringView,
    LifecycleIssuerView,
    LifecycleRequest,
    StatusChangeView,
    TermsRequest,
    problem_responses,
)
from .security import Admin, AdminJson, AnyUser, IssuerOrAdminJson

router = APIRouter(tags=["lifecycle"])

_ACTION_ERRORS = {**problem_responses(401, 403, 404, 409, 413, 415), **problem_responses(422, 503)}


def _perform(request: Request, action: str, params: dict, actor: str) -> JSONResponse:
    view = governance.perform(request.app.state.ca, action, params, actor=actor)
    request.app.state.verification.invalidate()
    return JSONResponse(view, status_code=outcome_status(view))


def _reason(body: LifecycleRequest | None) -> str:
    return body.reason if body is not None else ""


@router.post("/v1/issuers/{issuer_id}/withdraw", response_model=LifecycleIssuerView, responses=_ACTION_ERRORS,
             summary="Withdraw an enrollment (the issuer that enrolled it, or an administrator): a pending one is "
                     "withdrawn; an active or suspended member's cross-certificates are revoked (cessationOfOperation)")
def withdraw(issuer_id: str, request: Request, who: IssuerOrAdminJson, body: LifecycleRequest | None = None) -> JSONResponse:
    owner = who.token_id if who.role == "issuer" else None
    request.app.state.ca.issuer(check_issuer_id(issuer_id), owner=owner)  # 404 for another issuer's enrollment
    return _perform(request, "withdraw", {"enrollment_id": issuer_id, "reason": _reason(body)}, who.actor)


@router.post("/v1/issuers/{issuer_id}/suspend", response_model=LifecycleIssuerView, responses=_ACTION_ERRORS,
             summary="Suspend a member: its cross-certificates go on hold (CRL and OCSP: certificateHold; paths fail "
                     "with suspended) until it is reinstated")
def suspend(issuer_id: str, request: Request, who: AdminJson, body: LifecycleRequest | None = None) -> JSONResponse:
    return _perform(request, "suspend", {"enrollment_id": check_issuer_id(issuer_id), "reason": _reason(body)}, who.actor)


@router.post("/v1/issuers/{issuer_id}/reinstate", response_model=LifecycleIssuerView, responses=_ACTION_ERRORS,
             summary="Reinstate a suspended member: its cross-certificates come off hold (off the next CRL; OCSP good)")
def reinstate(issuer_id: str, request: Request, who: AdminJson, body: LifecycleRequest | None = None) -> JSONResponse:
    return _perform(request, "reinstate", {"enrollment_id": check_issuer_id(issuer_id), "reason": _reason(body)}, who.actor)


@router.post("/v1/issuers/{issuer_id}/renew", response_model=LifecycleIssuerView, responses=_ACTION_ERRORS,
             summary="Renew the member's cross-certificate: a new one on the same terms is published, then the old "
                     "one is revoked (superseded)")
def renew(issuer_id: str, request: Request, who: AdminJson, body: LifecycleRequest | None = None) -> JSONResponse:
    return _perform(request, "renew", {"enrollment_id": check_issuer_id(issuer_id), "reason": _reason(body)}, who.actor)


@router.put("/v1/issuers/{issuer_id}/terms", response_model=LifecycleIssuerView, responses={**_ACTION_ERRORS, **problem_responses(400)},
            summary="Change the member's policy mappings, name constraints or path length: a new cross-certificate "
                    "with the new terms is published, then the old one is revoked (superseded)")
def change_terms(issuer_id: str, body: TermsRequest, request: Request, who: AdminJson) -> JSONResponse:
    given = body.model_fields_set - {"reason"}
    params = {name: getattr(body, name) for name in given}
    for name in ("policy_mappings", "permitted_subtrees", "excluded_subtrees"):
        if name in params:
            params[name] = [item.model_dump() for item in params[name] or []]
    params.update(enrollment_id=check_issuer_id(issuer_id), reason=body.reason)
    return _perform(request, "change_terms", params, who.actor)


@router.get("/v1/issuers/{issuer_id}/history", response_model=list[StatusChangeView], responses=problem_responses(401, 404),
            summary="The enrollment's status history: state, time, reason, serials (an issuer token sees only its own)")
def history(issuer_id: str, request: Request, who: AnyUser) -> JSONResponse:
    owner = who.token_id if who.role == "issuer" else None
    view = request.app.state.ca.issuer(check_issuer_id(issuer_id), owner=owner)
    return JSONResponse(view["status_history"])


@router.get("/v1/cross-certificates/expiring", response_model=list[ExpiringView], responses=problem_responses(400, 401, 403),
            summary="Cross-certificates in force whose notAfter is within `days` (default: the expiry_warning_days setting)")
async def expiring(request: Request, who: Admin,
                   days: float | None = Query(None, ge=0, le=36500, description="look-ahead in days")) -> JSONResponse:
    return JSONResponse(await run_in_threadpool(request.app.state.ca.expiring, days))


# --------------------------------------------------------------------------- the periodic maintenance


def start_maintenance(ca):
    """Start the periodic maintenance (expiry of stale enrollments, near-expiry
    warnings) for this process unless one runs already or the interval is 0.
    Several workers each run it: the store operations are idempotent. Returns
    a stop function for the app's shutdown."""
    import logging

    from .periodic import start_periodic

    return start_periodic("maintenance run", ca.maintenance, ca.settings.maintenance_interval_seconds,
                          logging.getLogger("bridgeca.lifecycle"))
