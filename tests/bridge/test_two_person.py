"""Two-person control (bridge/governance.py): with approvals_required 2 an
admin action becomes a proposal that a different administrator confirms;
the proposer cannot, an expired proposal cannot be confirmed, any admin may
cancel, and each step is in the audit log. With 1, perform acts at once.
On SQLite and PostgreSQL (the ``bridge`` fixture)."""
from __future__ import annotations

import json
import time

import pytest

from api.cli import main as bridgeca_main
from api.problems import outcome_status
from bridge import governance
from bridge.errors import BridgeError
from bridge.service import BridgeCA

from .members import der, make_member


def _enroll(ca: BridgeCA, code: str = "HK") -> str:
    member = make_member(code)
    return ca.enroll(name=f"{code} CA", jurisdiction=code, root_certificate=der(member.root),
                     policy_mappings=member.mappings())["id"]


def _reopen(ca: BridgeCA, monkeypatch, **env) -> BridgeCA:
    """The same home, reopened with other settings from the environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    home = ca.settings.home
    ca.close()
    return BridgeCA.open(home)


def _actions(ca: BridgeCA) -> list[tuple[str, str, dict]]:
    return [(e.actor, e.action, json.loads(e.details)) for e in ca.store.audit_entries()]


def test_one_approval_acts_at_once(bridge):
    assert bridge.settings.approvals_required == 1
    enrollment = _enroll(bridge)
    view = governance.perform(bridge, "approve", {"enrollment_id": enrollment}, actor="admin:1")
    assert not isinstance(view, governance.Proposed) and outcome_status(view) == 200
    assert view["status"] == "active" and view["serial"]
    assert not any(a.startswith("proposal.") for _, a, _ in _actions(bridge))


def test_maker_checker_needs_a_different_admin(bridge, monkeypatch):
    ca = _reopen(bridge, monkeypatch, BRIDGECA_APPROVALS_REQUIRED="2")
    try:
        enrollment = _enroll(ca)
        proposed = governance.perform(ca, "approve", {"enrollment_id": enrollment}, actor="admin:1")
        assert isinstance(proposed, governance.Proposed) and outcome_status(proposed) == 202
        proposal = proposed["proposal"]
        assert proposal["status"] == "pending" and proposal["proposer"] == "admin:1"
        assert proposal["action"] == "approve" and proposal["params"] == {"enrollment_id": enrollment}
        assert ca.issuer(enrollment)["status"] == "pending"  # nothing done yet

        with pytest.raises(BridgeError) as same:
            governance.confirm(ca, proposal["id"], actor="admin:1")
        assert (same.value.code, same.value.kind) == ("same_admin", "forbidden")
        assert ca.issuer(enrollment)["status"] == "pending"

        outcome = governance.confirm(ca, proposal["id"], actor="admin:2")
        assert outcome["proposal"]["status"] == "confirmed" and outcome["proposal"]["decided_by"] == "admin:2"
        assert outcome["result"]["status"] == "active"
        serial = outcome["result"]["serial"]
        assert ca.issuer(enrollment)["status"] == "active"

        with pytest.raises(BridgeError) as again:
            governance.confirm(ca, proposal["id"], actor="admin:3")
        assert (again.value.code, again.value.kind) == ("proposal_not_pending", "conflict")

        entries = _actions(ca)
        create = next(d for a, action, d in entries if action == "proposal.create")
        confirm_index = next(i for i, (_, action, _) in enumerate(entries) if action == "proposal.confirm")
        actor, _, confirm = entries[confirm_index]
        assert create["proposal"] == proposal["id"] and create["action"] == "approve"
        assert actor == "admin:2" and confirm["proposer"] == "admin:1"
        # The action itself is done as the confirming admin, after the confirmation.
        approve_index = next(i for i, (_, action, _) in enumerate(entries) if action == "enrollment.approve")
        assert approve_index > confirm_index and entries[approve_index][0] == "admin:2"

        # Revocation: proposed, refused up front when it could never be done.
        with pytest.raises(BridgeError) as bad_reason:
            governance.perform(ca, "revoke", {"serial": serial, "reason": "because"}, actor="admin:2")
        assert bad_reason.value.code == "invalid_reason"
        with pytest.raises(BridgeError) as unknown:
            governance.perform(ca, "revoke", {"serial": "7e" * 16, "reason": "keyCompromise"}, actor="admin:2")
        assert unknown.value.kind == "not_found"
        revoke = governance.perform(ca, "revoke", {"serial": serial, "reason": "keyCompromise"}, actor="admin:2")["proposal"]
        assert ca.store.cross_certificate(int(serial, 16)).status == "issued"
        done = governance.confirm(ca, revoke["id"], actor="admin:1")
        assert done["result"] == {"serial": serial, "status": "revoked", "reason": "keyCompromise", "crl_number": done["result"]["crl_number"]}
        assert ca.store.cross_certificate(int(serial, 16)).status == "revoked"
    finally:
        ca.close()


def test_cancel_and_a_failed_confirmation(bridge, monkeypatch):
    ca = _reopen(bridge, monkeypatch, BRIDGECA_APPROVALS_REQUIRED="2")
    try:
        enrollment = _enroll(ca)
        first = governance.perform(ca, "approve", {"enrollment_id": enrollment}, actor="admin:1")["proposal"]
        second = governance.perform(ca, "approve", {"enrollment_id": enrollment}, actor="admin:1")["proposal"]
        cancelled = governance.cancel(ca.store, first["id"], actor="admin:2", reason="duplicate")
        assert cancelled["status"] == "cancelled" and cancelled["decided_by"] == "admin:2"
        with pytest.raises(BridgeError) as gone:
            governance.confirm(ca, first["id"], actor="admin:2")
        assert gone.value.code == "proposal_not_pending"

        # The enrollment is rejected meanwhile: confirming the second fails, and says so.
        ca.reject(enrollment, reason="withdrawn by the member", actor="admin:3")
        with pytest.raises(BridgeError) as refused:
            governance.confirm(ca, second["id"], actor="admin:2")
        assert refused.value.code == "invalid_state"
        failed = governance.proposal(ca.store, second["id"])
        assert failed["status"] == "failed" and failed["outcome"]["code"] == "invalid_state"
        pending = governance.proposals(ca.store, "pending")
        assert pending == []
        actions = [a for _, a, _ in _actions(ca)]
        assert actions.count("proposal.create") == 2 and "proposal.cancel" in actions and "proposal.fail" in actions
        cancel = next(d for _, a, d in _actions(ca) if a == "proposal.cancel")
        assert cancel["reason"] == "duplicate" and cancel["proposer"] == "admin:1"
        with pytest.raises(BridgeError) as bad_status:
            governance.proposals(ca.store, "maybe")
        assert bad_status.value.kind == "malformed"
    finally:
        ca.close()


def test_an_expired_proposal_cannot_be_confirmed(bridge, monkeypatch):
    # 0.0005 h = 1.8 s: the proposal is waited out, not raced.
    ca = _reopen(bridge, monkeypatch, BRIDGECA_APPROVALS_REQUIRED="2", BRIDGECA_PROPOSAL_TTL_HOURS="0.0005")
    try:
        enrollment = _enroll(ca)
        proposal = governance.perform(ca, "approve", {"enrollment_id": enrollment}, actor="admin:1")["proposal"]
        other = governance.perform(ca, "approve", {"enrollment_id": enrollment}, actor="admin:1")["proposal"]
        deadline = time.monotonic() + 60
        while governance.proposal(ca.store, proposal["id"])["expires_at"] >= _utc_now_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.1)  # expires_at has whole seconds
        with pytest.raises(BridgeError) as expired:
            governance.confirm(ca, proposal["id"], actor="admin:2")
        assert (expired.value.code, expired.value.kind) == ("proposal_expired", "conflict")
        assert governance.proposal(ca.store, proposal["id"])["status"] == "expired"
        assert ca.issuer(enrollment)["status"] == "pending"
        # Listing records the other one's expiry too, once.
        listed = {p["id"]: p["status"] for p in governance.proposals(ca.store)}
        assert listed == {proposal["id"]: "expired", other["id"]: "expired"}
        governance.proposals(ca.store)
        expiries = [d["proposal"] for _, a, d in _actions(ca) if a == "proposal.expire"]
        assert sorted(expiries) == sorted([proposal["id"], other["id"]])
    finally:
        ca.close()


def _utc_now_text() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def test_cli_proposals_on_the_home(bridge, monkeypatch, capsys):
    """bridgeca proposal list/confirm/cancel --home: the home acts as the one admin 'cli'."""
    ca = _reopen(bridge, monkeypatch, BRIDGECA_APPROVALS_REQUIRED="2")
    home = str(ca.settings.home)
    try:
        enrollment = _enroll(ca)
        mine = governance.perform(ca, "approve", {"enrollment_id": enrollment}, actor="cli")["proposal"]
        theirs = governance.perform(ca, "approve", {"enrollment_id": enrollment}, actor="admin:7")["proposal"]
    finally:
        ca.close()
    capsys.readouterr()
    assert bridgeca_main(["proposal", "list", "--home", home, "--status", "pending"]) == 0
    listed = capsys.readouterr().out
    assert mine["id"] in listed and theirs["id"] in listed and "proposed by admin:7" in listed

    assert bridgeca_main(["proposal", "confirm", mine["id"], "--home", home]) == 1
    assert "same_admin" in capsys.readouterr().err

    assert bridgeca_main(["proposal", "confirm", theirs["id"], "--home", home, "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["proposal"]["decided_by"] == "cli" and outcome["result"]["status"] == "active"

    assert bridgeca_main(["proposal", "cancel", mine["id"], "--home", home, "--reason", "done already"]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert bridgeca_main(["proposal", "cancel", "f" * 32, "--home", home]) == 1
    assert "not_found" in capsys.readouterr().err
    assert bridgeca_main(["proposal", "list", "--home", home, "--status", "sometimes"]) == 2


def test_recognising_a_trust_list_needs_a_second_admin(bridge, monkeypatch):
    """Registering an external trusted list changes trust: under two-person
    control it is a proposal, refused at once when the upload is bad, done
    when a different admin confirms."""
    import base64

    from cryptography.hazmat.primitives import serialization

    from tests.api.test_trust_list_recognition import HongKong

    hk = HongKong()
    params = {"name": "Hong Kong", "url": None, "xml": base64.b64encode(hk.trust_list(1)).decode(),
              "allowed_signers": [hk.tl_cert.public_bytes(serialization.Encoding.PEM).decode()], "mapping": None}
    ca = _reopen(bridge, monkeypatch, BRIDGECA_APPROVALS_REQUIRED="2")
    try:
        from bridge.trust_lists import TrustListError

        with pytest.raises(TrustListError):  # another signer's certificate: refused before any proposal
            governance.perform(ca, "trust_list_register", {**params, "allowed_signers": [
                hk.root.public_bytes(serialization.Encoding.PEM).decode()]}, actor="admin:1")
        proposed = governance.perform(ca, "trust_list_register", params, actor="admin:1")
        assert isinstance(proposed, governance.Proposed)
        assert ca.trust_lists.views() == []  # nothing recognised yet
        with pytest.raises(BridgeError) as same:
            governance.confirm(ca, proposed["proposal"]["id"], actor="admin:1")
        assert same.value.code == "same_admin"
        done = governance.confirm(ca, proposed["proposal"]["id"], actor="admin:2")
        assert done["proposal"]["status"] == "confirmed"
        assert [view["name"] for view in ca.trust_lists.views()] == ["Hong Kong"]
        assert ("admin:2", "proposal.confirm") in [(actor, action) for actor, action, _ in _actions(ca)]
    finally:
        ca.close()
