"""The contract's enrollment routes: enroll, list and show enrollments, approve
(issue the cross-certificate), publish the reverse certificate, revoke a
cross-certificate. Approvals and revocations go through the governance gate
(bridge/governance.py)."""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations as objects.
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bridge import governance

from . import routes_governance
from .inputs import check_issuer_id, check_serial
from .schemas import (
    ApprovedIssuerView,
    EnrollRequest,
    IssuerView,
    ReverseCertificateRequest,
    ReverseCertificateView,
    RevokeRequest,
    RevokeResult,
    problem_responses,
)
from .security import Admin, AdminJson, AnyUser, IssuerOrAdminJson

router = APIRouter(tags=["issuers"])
common = problem_responses(401, 403, 413)
json_errors = problem_responses(400, 401, 403, 413, 415)


def _owner(who) -> int | None:
    return who.token_id if who.role == "issuer" else None


@router.post("/v1/issuers", status_code=201, response_model=IssuerView,
             summary="Enroll a member root (pending until an administrator approves)",
             responses={**json_errors, **problem_responses(409, 422)})
def enroll(body: EnrollRequest, request: Request, who: IssuerOrAdminJson) -> JSONResponse:
    view = request.app.state.ca.enroll(
        name=body.name, jurisdiction=body.jurisdiction, root_certificate=body.root_certificate,
        policy_mappings=[m.model_dump() for m in body.policy_mappings],
        permitted_subtrees=[s.model_dump() for s in body.permitted_subtrees] if body.permitted_subtrees else None,
        excluded_subtrees=[s.model_dump() for s in body.excluded_subtrees] if body.excluded_subtrees else None,
        path_length=body.path_length, actor=who.actor, owner=who.token_id, rollover_of=body.rollover_of,
    )
    return JSONResponse(view, status_code=201)


@router.get("/v1/issuers", response_model=list[IssuerView],
            summary="List enrollments (an issuer token sees only its own)", responses=problem_responses(401))
def list_issuers(request: Request, who: AnyUser) -> JSONResponse:
    return JSONResponse(request.app.state.ca.issuers(owner=_owner(who)))


@router.get("/v1/issuers/{issuer_id}", response_model=IssuerView,
            summary="One enrollment, with its cross-certificates", responses=problem_responses(401, 404))
def show_issuer(issuer_id: str, request: Request, who: AnyUser) -> JSONResponse:
    return JSONResponse(request.app.state.ca.issuer(check_issuer_id(issuer_id), owner=_owner(who)))


@router.post("/v1/issuers/{issuer_id}/approve", response_model=ApprovedIssuerView,
             summary="Issue the cross-certificate (bridge → member root)",
             responses={**common, **problem_responses(404, 409, 422, 503)})
def approve(issuer_id: str, request: Request, who: Admin) -> JSONResponse:
    # Through the governance gate: done now, or (approvals_required 2) a 202 proposal.
    result = governance.perform(request.app.state.ca, "approve", {"enrollment_id": check_issuer_id(issuer_id)}, actor=who.actor)
    return routes_governance.performed(request, result)


@router.post("/v1/issuers/{issuer_id}/reverse-certificate", status_code=201, response_model=ReverseCertificateView,
             summary="Publish the certificate the member root issued to the bridge",
             responses={**json_errors, **problem_responses(404, 409, 422)})
def reverse_certificate(issuer_id: str, body: ReverseCertificateRequest, request: Request,
                        who: IssuerOrAdminJson) -> JSONResponse:
    ca = request.app.state.ca
    ca.issuer(check_issuer_id(issuer_id), owner=_owner(who))  # 404 for another issuer's enrollment
    view = ca.upload_reverse(issuer_id, body.certificate, actor=who.actor)
    request.app.state.verification.invalidate()
    return JSONResponse(view, status_code=201)


@router.post("/v1/cross-certificates/{serial}/revoke", response_model=RevokeResult,
             summary="Revoke a cross-certificate; the next CRL and OCSP answers list it",
             responses={**json_errors, **problem_responses(404, 409, 422, 503)})
def revoke(serial: str, request: Request, who: AdminJson, body: RevokeRequest | None = None) -> JSONResponse:
    reason = body.reason if body is not None else "unspecified"
    result = governance.perform(request.app.state.ca, "revoke", {"serial": check_serial(serial), "reason": reason}, actor=who.actor)
    return routes_governance.performed(request, result)
