"""Governance routes: two-person control's proposals (list, confirm,
cancel), the audit log (admin, filtered, paged) and its signed checkpoints
(public: whoever keeps a copy can later prove a rewrite).

Admin actions themselves stay on their own routes; with approvals_required 2
they answer 202 ``{"proposal": {...}}`` (``performed`` below) and the action
is done when a different admin confirms here.
"""
# No ``from __future__ import annotations``: FastAPI must see the dependency annotations as objects.
import re
from datetime import datetime, timezone

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from bridge import checkpoints, governance

from .problems import Problem, outcome_status
from .schemas import (
    AuditPage,
    CancelProposalRequest,
    CheckpointsDocument,
    ConfirmedProposal,
    ProposalEnvelope,
    ProposalView,
    problem_responses,
)
from .security import Admin, AdminJson

router = APIRouter()

_PROPOSAL_ID = re.compile(r"^[0-9a-f]{32}$")


def performed(request: Request, result: dict, done: int = 200) -> JSONResponse:
    """The answer of a route that called governance.perform: the action's
    result (``done``), or 202 with the proposal under two-person control.
    Either way this process forgets its Verifiers (a proposal changes no
    trust, but forgetting costs one rebuild)."""
    request.app.state.verification.invalidate()
    return JSONResponse(result, status_code=outcome_status(result, done))


def _proposal_id(proposal_id: str) -> str:
    if not _PROPOSAL_ID.match(proposal_id):
        raise Problem(404, "not_found", "no proposal with that id")
    return proposal_id


# --------------------------------------------------------------------------- proposals


@router.get("/v1/proposals", response_model=list[ProposalView], tags=["governance"], responses=problem_responses(400, 401, 403),
            summary="Proposals of admin actions (two-person control), oldest first; expired ones are marked so first")
def list_proposals(request: Request, who: Admin,
                   status: str | None = Query(None, max_length=16, description="pending, confirmed, failed, cancelled or expired")
                   ) -> JSONResponse:
    return JSONResponse(governance.proposals(request.app.state.ca.store, status, actor=who.actor))


@router.post("/v1/proposals/{proposal_id}/confirm", response_model=ConfirmedProposal, tags=["governance"],
             responses={**problem_responses(401, 403, 404, 409, 413, 415, 422, 503)},
             summary="Confirm a proposal: the action is done now, as this admin (403 same_admin for its proposer; "
                     "409 proposal_expired once past its expiry)")
def confirm_proposal(proposal_id: str, request: Request, who: AdminJson) -> JSONResponse:
    outcome = governance.confirm(request.app.state.ca, _proposal_id(proposal_id), actor=who.actor)
    request.app.state.verification.invalidate()
    return JSONResponse(outcome)


@router.post("/v1/proposals/{proposal_id}/cancel", response_model=ProposalEnvelope, tags=["governance"],
             responses={**problem_responses(400, 401, 403, 404, 409, 413, 415)},
             summary="Cancel a pending proposal (its proposer or any other admin)")
def cancel_proposal(proposal_id: str, request: Request, who: AdminJson,
                    body: CancelProposalRequest | None = None) -> JSONResponse:
    view = governance.cancel(request.app.state.ca.store, _proposal_id(proposal_id), actor=who.actor,
                             reason=body.reason if body is not None else "")
    return JSONResponse({"proposal": view})


# --------------------------------------------------------------------------- the audit log


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, "invalid_request", f"since: {text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@router.get("/v1/audit", response_model=AuditPage, tags=["governance"], responses=problem_responses(400, 401, 403),
            summary="The audit log, oldest first, filtered and paged (`after`: the previous page's next_after)")
def audit_log(request: Request, who: Admin,
              action: str | None = Query(None, max_length=64, description="an action, or a prefix ending in '.' (certificate.)"),
              actor: str | None = Query(None, max_length=200, description="e.g. admin:3, cli"),
              since: str | None = Query(None, max_length=40, description="ISO 8601 time"),
              after: int = Query(0, ge=0, le=2**62, description="entries after this sequence number"),
              limit: int = Query(100, ge=1, le=1000)) -> JSONResponse:
    from bridge.errors import translated

    with translated():
        rows = request.app.state.ca.store.audit_page(action=action, actor=actor, since=_since(since), after_seq=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse({"entries": [audit_view(r) for r in rows], "next_after": rows[-1].seq if more else None})


def audit_view(row) -> dict:
    import json

    return {"seq": int(row.seq), "at": row.at, "actor": row.actor, "action": row.action, "details": json.loads(row.details),
            "prev_hash": row.prev_hash, "entry_hash": row.entry_hash}


@router.get("/v1/audit/checkpoints", response_model=CheckpointsDocument, tags=["publication"], responses=problem_responses(400),
            summary="Signed checkpoints of the audit chain's head (no token): keep a copy, then `bridgeca audit verify "
                    "--checkpoints` finds any later rewrite or truncation of the log")
def audit_checkpoints(request: Request,
                      limit: int | None = Query(None, ge=1, le=1_000_000, description="only the newest this many")) -> JSONResponse:
    from bridge.errors import translated

    with translated():
        document = checkpoints.publication(request.app.state.ca, limit)
    return JSONResponse(document, headers={"Cache-Control": "no-cache"})


# --------------------------------------------------------------------------- the periodic checkpoint


def start_checkpoints(ca):
    """Sign the chain's head every audit_checkpoint_minutes when entries were
    appended since the last checkpoint (the count-based ones are made by the
    store as entries are written). Each worker runs it; the store signs a
    head only once. Returns a stop function for the app's shutdown."""
    import logging

    from .periodic import start_periodic

    # At start too: entries written meanwhile by commands without the key get covered.
    return start_periodic("audit checkpoint", ca.store.checkpoint_head, ca.settings.audit_checkpoint_minutes * 60,
                          logging.getLogger("bridgeca.audit"))
