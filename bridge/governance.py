"""One gate for the administrators' actions that change trust.

Routes and CLI commands never call these BridgeCA methods directly: they call
``perform``, so that two-person control (``approvals_required`` in settings)
applies to every one of them the same way. With 1 (the default, and today's
contract) an action is done at once; with 2, ``perform`` records a proposal
that a different administrator confirms (see the proposal functions below).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from . import clock

if TYPE_CHECKING:  # pragma: no cover
    from .service import BridgeCA
    from .store import Store

# Action name -> the BridgeCA method that does it. Every method takes its
# parameters as keywords plus ``actor`` and returns a JSON-able view.
# Add an action here when you add a trust-changing admin method.
ACTIONS: dict[str, str] = {
    "approve": "approve",
    "revoke": "revoke",
    "blacklist_add": "blacklist_add",
    "blacklist_remove": "blacklist_remove",
    # Member lifecycle (bridge/lifecycle.py)
    "withdraw": "withdraw",
    "suspend": "suspend",
    "reinstate": "reinstate",
    "renew": "renew",
    "change_terms": "change_terms",
    # Recognising an external trusted list (bridge/trust_lists.py)
    "trust_list_register": "register_trust_list",
}


class UnknownAction(KeyError):
    pass


class Proposed(dict):
    """What ``perform`` returns when the action waits for a second
    administrator: ``{"proposal": {...}}``. Routes answer it as accepted
    (api/problems.py's ``outcome_status``), the CLI prints the proposal's id."""


def _enrollment_exists(ca: "BridgeCA", params: dict) -> None:
    if "enrollment_id" in params:
        ca.store.get_enrollment(params["enrollment_id"])


def _approvable(ca: "BridgeCA", params: dict) -> None:
    from . import registration

    record = ca.store.get_enrollment(params["enrollment_id"])
    registration.check_transition(record.status, registration.ACTIVE)


def _revocable(ca: "BridgeCA", params: dict) -> None:
    from . import registration
    from .service import parse_serial
    from .store import Conflict, NotFound

    registration.revocation_reason(params.get("reason", "unspecified"))
    row = ca.store.cross_certificate(parse_serial(params["serial"]))
    if row.status == "reserved":  # never handed out: not found, as ca.revoke says
        raise NotFound(f"no cross-certificate with serial {row.serial}")
    if row.status == "revoked":
        raise Conflict("already_revoked", f"cross-certificate {row.serial} is already revoked")


# Action name -> a check run before a proposal is recorded, so that a
# proposal that could never be carried out (unknown id, wrong state, bad
# reason) is refused at once with the error the action itself would give.
# Actions without an entry get the generic one: the enrollment exists.
def _registrable_trust_list(ca: "BridgeCA", params: dict) -> None:
    from .service import _b64_list

    ca.trust_lists.check_registration(url=params.get("url"), xml=_b64_list(params.get("xml")),
                                      allowed_signers=params.get("allowed_signers"), mapping=params.get("mapping"))


PRECHECKS: dict[str, Callable[["BridgeCA", dict], None]] = {
    "approve": _approvable,
    "revoke": _revocable,
    "trust_list_register": _registrable_trust_list,
}


def _method(action: str) -> str:
    method = ACTIONS.get(action)
    if method is None:
        raise UnknownAction(action)
    return method


def perform(ca: "BridgeCA", action: str, params: dict[str, Any], *, actor: str) -> dict:
    """Do ``action`` now (approvals_required 1), or record it as a proposal
    that a different administrator confirms (approvals_required 2) and
    return ``Proposed({"proposal": view})``."""
    method = _method(action)
    if ca.settings.approvals_required <= 1:
        return getattr(ca, method)(**params, actor=actor)
    from .errors import translated

    with translated():
        PRECHECKS.get(action, _enrollment_exists)(ca, params)
        expires_at = clock.now() + timedelta(hours=ca.settings.proposal_ttl_hours)
        row = ca.store.add_proposal(actor=actor, action=action, params=params, expires_at=expires_at)
    return Proposed(proposal=proposal_view(row))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def proposal_view(row) -> dict:
    return {
        "id": row.id,
        "action": row.action,
        "params": json.loads(row.params),
        "proposer": row.proposer,
        "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at),
        "status": row.status,
        "decided_by": row.decided_by,
        "decided_at": _iso(row.decided_at),
        "outcome": json.loads(row.outcome) if row.outcome else None,
    }


# Proposals need only the database, except confirming, which does the action
# (and may sign): these take a Store, confirm takes the BridgeCA.

PROPOSAL_STATUSES = ("pending", "confirmed", "failed", "cancelled", "expired")


def proposals(store: "Store", status: str | None = None, *, actor: str = "bridgeca") -> list[dict]:
    """Proposals, oldest first; pending ones past their expiry are recorded expired (proposal.expire) first."""
    from .errors import BridgeError, translated

    if status is not None and status not in PROPOSAL_STATUSES:
        raise BridgeError("invalid_request", f"status {status!r} is not one of {', '.join(PROPOSAL_STATUSES)}", "malformed")
    with translated():
        store.expire_proposals(actor=actor)
        return [proposal_view(r) for r in store.proposals(status)]


def proposal(store: "Store", proposal_id: str) -> dict:
    from .errors import translated

    with translated():
        return proposal_view(store.proposal(proposal_id))


def confirm(ca: "BridgeCA", proposal_id: str, *, actor: str) -> dict:
    """A second administrator confirms: the action is done now, as ``actor``
    (proposal.confirm records the proposer beside it). The proposer
    confirming is refused (403 same_admin); an expired proposal too (409
    proposal_expired); of two confirmations at once, one does the action."""
    from .errors import BridgeError, translated

    def different_admin(row) -> None:
        if row.proposer == actor:
            raise BridgeError("same_admin", f"proposal {row.id} was made by {actor}; a different administrator must confirm it", "forbidden")
        if row.action not in ACTIONS:
            raise BridgeError("unknown_action", f"proposal {row.id} is for {row.action!r}, which this bridge no longer does", "conflict")

    with translated():
        row = ca.store.confirm_proposal(proposal_id, actor=actor, check=different_admin)
    try:
        result = getattr(ca, _method(row.action))(**json.loads(row.params), actor=actor)
    except BridgeError as exc:
        with translated():
            ca.store.finish_proposal(row.id, actor=actor, outcome={"code": exc.code, "message": exc.message}, failed=True)
        raise
    with translated():
        done = ca.store.finish_proposal(row.id, actor=actor, outcome=_summary(result), failed=False)
    return {"proposal": proposal_view(done), "result": result}


def _summary(result: dict) -> dict:
    # Certificates stay in their own tables; the proposal keeps what identifies the outcome.
    return {k: v for k, v in result.items() if k not in ("cross_certificate", "certificate", "root_certificate",
                                                           "cross_certificates", "status_history")}


def cancel(store: "Store", proposal_id: str, *, actor: str, reason: str = "") -> dict:
    """Any administrator (the proposer included) withdraws a pending proposal."""
    from .errors import translated

    with translated():
        return proposal_view(store.cancel_proposal(proposal_id, actor=actor, reason=reason))
