"""Member lifecycle in the domain (bridge/lifecycle.py through governance.perform),
on SQLite and PostgreSQL: suspension puts cross-certificates on hold (CRL,
OCSP, the verification records) and reinstatement lifts it; withdrawal;
renewal and new terms supersede the old cross-certificate; stale pending
enrollments expire; near-expiry warnings are audited once; jurisdictions
come from the settings; every change is in the status history and the
audit log, whose chain stays intact."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from bridge import governance
from bridge.errors import BridgeError
from bridge.verification import VerificationService
from tests.bridge.members import make_member, pem


def _join(ca, code: str = "HK"):
    member = make_member(code)
    view = ca.enroll(name=f"{code} CA", jurisdiction=code, root_certificate=pem(member.root), policy_mappings=member.mappings())
    serial = ca.approve(view["id"])["serial"]
    ca.upload_reverse(view["id"], pem(member.reverse_certificate(ca.certificate)))
    return member, view["id"], serial


def _chain(member) -> dict:
    return {"certificate": pem(member.leaf).decode(), "intermediates": [pem(member.issuing).decode()]}


def _verify(ca, member, **options) -> dict:
    service = VerificationService(ca)  # a fresh one: what any worker builds at the current epoch
    return service.verify_chain(**_chain(member), **options)


def _crl_reason(ca, serial: str):
    crl = x509.load_der_x509_crl(ca.current_crl())
    entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    if entry is None:
        return None
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return x509.ReasonFlags.unspecified


def _ocsp(ca, view: dict, serial: str) -> ocsp.OCSPResponse:
    cross = next(x509.load_pem_x509_certificate(c["certificate"].encode()) for c in view["cross_certificates"] if c["serial"] == serial)
    request = ocsp.OCSPRequestBuilder().add_certificate(cross, ca.certificate, hashes.SHA256()).build()
    from cryptography.hazmat.primitives import serialization

    return ocsp.load_der_ocsp_response(ca.ocsp_response(request.public_bytes(serialization.Encoding.DER)))


def _actions(ca) -> list[tuple[str, dict]]:
    return [(e.action, json.loads(e.details)) for e in ca.store.audit_entries()]


def test_suspend_holds_and_reinstate_releases(bridge):
    member, eid, serial = _join(bridge)
    assert _verify(bridge, member)["valid"] is True
    epoch = bridge.store.epoch()

    view = governance.perform(bridge, "suspend", {"enrollment_id": eid, "reason": "investigation"}, actor="admin-1")
    assert view["status"] == "suspended" and view["held_serials"] == [serial]
    assert bridge.store.epoch() > epoch
    assert _crl_reason(bridge, serial) == x509.ReasonFlags.certificate_hold
    answer = _ocsp(bridge, view, serial)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.certificate_hold
    result = _verify(bridge, member)
    assert result["valid"] is False and result["error"]["code"] == "suspended" and result["error"]["certificate"] == 2
    # A suspended member's key cannot be enrolled again meanwhile.
    with pytest.raises(BridgeError) as refused:
        bridge.enroll(name="again", jurisdiction="HK", root_certificate=pem(member.root), policy_mappings=member.mappings())
    assert refused.value.code == "already_enrolled"
    with pytest.raises(BridgeError) as twice:
        governance.perform(bridge, "suspend", {"enrollment_id": eid}, actor="admin-1")
    assert twice.value.code == "invalid_state" and twice.value.kind == "conflict"

    view = governance.perform(bridge, "reinstate", {"enrollment_id": eid, "reason": "cleared"}, actor="admin-1")
    assert view["status"] == "active" and view["released_serials"] == [serial]
    assert _crl_reason(bridge, serial) is None  # off the next CRL (no delta CRLs, so no removeFromCRL)
    assert _ocsp(bridge, view, serial).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert _verify(bridge, member)["valid"] is True

    history = [(h["status"], h["reason"]) for h in view["status_history"]]
    assert history == [("pending", ""), ("active", "approved"), ("suspended", "investigation"), ("active", "cleared")]
    audited = {action: details for action, details in _actions(bridge)}
    assert audited["issuer.suspend"] == {"enrollment": eid, "serials": [serial], "status": "suspended", "reason": "investigation"}
    assert audited["issuer.reinstate"]["status"] == "active" and audited["issuer.reinstate"]["serials"] == [serial]
    assert bridge.verify_audit().intact


def test_paths_from_a_suspended_members_anchor_fail_as_suspended(bridge):
    """The other direction: a member root as trust anchor, a path through the suspended member's reverse certificate."""
    hk, hk_id, _ = _join(bridge, "HK")
    gd, gd_id, _ = _join(bridge, "GD")
    service = VerificationService(bridge)
    assert service.verify_chain(**_chain(hk), trust_anchor=gd_id)["valid"] is True
    governance.perform(bridge, "suspend", {"enrollment_id": gd_id}, actor="admin")
    # GD's root cannot be an anchor while suspended; HK's paths through GD's reverse certificate are on hold.
    with pytest.raises(BridgeError) as refused:
        VerificationService(bridge).verify_chain(**_chain(hk), trust_anchor=gd_id)
    assert refused.value.code == "issuer_not_active"
    assert _verify(bridge, hk)["valid"] is True  # HK is not affected
    governance.perform(bridge, "reinstate", {"enrollment_id": gd_id}, actor="admin")
    assert VerificationService(bridge).verify_chain(**_chain(hk), trust_anchor=gd_id)["valid"] is True


def test_withdraw_pending_and_active(bridge):
    pending = make_member("MO")
    pending_id = bridge.enroll(name="MO", jurisdiction="MO", root_certificate=pem(pending.root), policy_mappings=pending.mappings())["id"]
    view = governance.perform(bridge, "withdraw", {"enrollment_id": pending_id, "reason": "submitted by mistake"}, actor="issuer-7")
    assert view["status"] == "withdrawn" and view["revoked_serials"] == [] and view["crl_number"] is None
    with pytest.raises(BridgeError) as refused:
        bridge.approve(pending_id)
    assert refused.value.code == "invalid_state"

    member, eid, serial = _join(bridge, "HK")
    view = governance.perform(bridge, "withdraw", {"enrollment_id": eid}, actor="admin")
    assert view["status"] == "withdrawn" and view["revoked_serials"] == [serial]
    assert _crl_reason(bridge, serial) == x509.ReasonFlags.cessation_of_operation
    assert [c["revocation_reason"] for c in view["cross_certificates"]] == ["cessationOfOperation"]
    result = _verify(bridge, member)
    assert result["valid"] is False and result["error"]["code"] == "revoked"
    withdrawals = [d for a, d in _actions(bridge) if a == "issuer.withdraw"]
    assert withdrawals[-1] == {"enrollment": eid, "serials": [serial], "from": "active", "status": "withdrawn", "reason": ""}
    with pytest.raises(BridgeError) as again:
        governance.perform(bridge, "withdraw", {"enrollment_id": eid}, actor="admin")
    assert again.value.code == "invalid_state"


def test_renew_publishes_the_new_one_and_supersedes_the_old(bridge):
    member, eid, old = _join(bridge)
    view = governance.perform(bridge, "renew", {"enrollment_id": eid}, actor="admin")
    new = view["serial"]
    assert new != old and view["superseded_serials"] == [old] and view["status"] == "active"
    by_serial = {c["serial"]: c for c in view["cross_certificates"]}
    assert by_serial[old]["status"] == "revoked" and by_serial[old]["revocation_reason"] == "superseded"
    assert by_serial[new]["status"] == "issued"
    old_cert = x509.load_pem_x509_certificate(by_serial[old]["certificate"].encode())
    new_cert = x509.load_pem_x509_certificate(by_serial[new]["certificate"].encode())
    assert new_cert.subject == old_cert.subject and new_cert.public_key() == old_cert.public_key()
    assert new_cert.extensions.get_extension_for_class(x509.BasicConstraints).value == \
        old_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert _crl_reason(bridge, old) == x509.ReasonFlags.superseded
    assert [c.serial_number for c in bridge.issued_by_bridge()] == [int(new, 16)]
    result = _verify(bridge, member)
    assert result["valid"] is True and result["path"][2]["serial"] == new
    actions = [a for a, _ in _actions(bridge)]
    # Published (certificate.renew) before the old one is revoked.
    assert actions.index("certificate.renew") < max(i for i, a in enumerate(actions) if a == "certificate.revoke")
    renewal = next(d for a, d in _actions(bridge) if a == "certificate.renew")
    assert renewal["serial"] == new and renewal["supersedes"] == [old] and renewal["enrollment"] == eid


def test_change_terms_reissues_with_the_new_terms(bridge):
    member, eid, old = _join(bridge)
    view = governance.perform(bridge, "change_terms", {
        "enrollment_id": eid, "permitted_subtrees": [{"type": "directoryName", "value": "C=GD"}], "reason": "narrowed"}, actor="admin")
    assert view["permitted_subtrees"] == [{"type": "directoryName", "value": "C=GD"}]
    assert view["policy_mappings"] == member.mappings()  # kept
    new_cert = x509.load_pem_x509_certificate(view["cross_certificate"].encode())
    constraints = new_cert.extensions.get_extension_for_class(x509.NameConstraints).value
    assert [n.value.rfc4514_string() for n in constraints.permitted_subtrees] == ["C=GD"]
    assert _crl_reason(bridge, old) == x509.ReasonFlags.superseded
    # HK's leaf (C=HK) is outside the new permitted subtree.
    result = _verify(bridge, member)
    assert result["valid"] is False and result["error"]["code"] == "name_constraints"
    with pytest.raises(BridgeError) as same:
        governance.perform(bridge, "change_terms", {"enrollment_id": eid, "permitted_subtrees": [{"type": "directoryName", "value": "C=GD"}]},
                           actor="admin")
    assert same.value.code == "unchanged_terms"
    with pytest.raises(BridgeError) as bad:
        governance.perform(bridge, "change_terms", {"enrollment_id": eid, "policy_mappings": [{"bridge_policy": "x", "member_policy": "y"}]},
                           actor="admin")
    assert bad.value.code == "invalid_policy_mapping"
    terms = next(d for a, d in _actions(bridge) if a == "issuer.change_terms")
    assert terms["supersedes"] == [old] and terms["terms"]["permitted_subtrees"] == [{"type": "directoryName", "value": "C=GD"}]


def test_maintenance_expires_stale_pending_and_warns_once(bridge):
    member = make_member("SZ")
    eid = bridge.enroll(name="SZ", jurisdiction="SZ", root_certificate=pem(member.root), policy_mappings=member.mappings())["id"]
    _hk, hk_id, hk_serial = _join(bridge, "HK")
    from bridge import lifecycle

    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=bridge.settings.pending_enrollment_max_days + 1)
    assert lifecycle.run_maintenance(bridge, now=dt.datetime.now(dt.timezone.utc))["expired_pending"] == []
    assert bridge.issuer(eid)["status"] == "pending"
    result = lifecycle.run_maintenance(bridge, now=soon)
    assert result["expired_pending"] == [eid] and bridge.issuer(eid)["status"] == "expired"
    assert lifecycle.run_maintenance(bridge, now=soon)["expired_pending"] == []  # idempotent

    near_end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=bridge.settings.cross_certificate_validity_days - 10)
    first = lifecycle.run_maintenance(bridge, now=near_end)
    assert [w["serial"] for w in first["expiring"]] == [hk_serial] and first["newly_warned"] == [hk_serial]
    assert lifecycle.run_maintenance(bridge, now=near_end)["newly_warned"] == []  # warned once
    warnings = [d for a, d in _actions(bridge) if a == "certificate.expiring"]
    assert len(warnings) == 1 and warnings[0]["serial"] == hk_serial and warnings[0]["enrollment"] == hk_id
    assert bridge.expiring(days=5) == [] and [w["serial"] for w in bridge.expiring(days=5000)] == [hk_serial]
    assert bridge.verify_audit().intact


def test_jurisdictions_from_settings(bridge_home, monkeypatch):
    from bridge.service import BridgeCA

    monkeypatch.setenv("BRIDGECA_JURISDICTIONS", "GD,SZ,HK,MO,ZH")
    with BridgeCA.init(bridge_home, base_url="https://bridge.gd.example") as ca:
        member = make_member("MO")
        view = ca.enroll(name="Zhuhai CA", jurisdiction="zh", root_certificate=pem(member.root), policy_mappings=member.mappings())
        assert view["jurisdiction"] == "ZH"
    monkeypatch.setenv("BRIDGECA_JURISDICTIONS", '["HK"]')
    with BridgeCA.open(bridge_home) as ca:
        with pytest.raises(BridgeError) as refused:
            ca.enroll(name="GD CA", jurisdiction="GD", root_certificate=pem(make_member("GD").root),
                      policy_mappings=make_member("GD").mappings())
        assert refused.value.code == "unknown_jurisdiction" and "HK" in refused.value.message
    monkeypatch.setenv("BRIDGECA_JURISDICTIONS", "GD,,HK")
    with pytest.raises(BridgeError) as bad:
        BridgeCA.open(bridge_home)
    assert bad.value.code == "invalid_settings"
