"""The blacklist in the bridge's domain (SQLite and PostgreSQL): entries of
each kind refuse verification paths and enrollments, removal is soft and
audited, every change bumps the epoch, and a keyCompromise revocation lists
the root's key in the revocation's own transaction."""
from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.x509.oid import NameOID

from bridge import governance
from bridge.errors import BridgeError
from bridge.verification import VerificationService

from .members import BRIDGE_MEDIUM, der, make_member, make_root, name, pem


def _join(bridge, member):
    view = bridge.enroll(name=f"{member.display} CA", jurisdiction=member.code, root_certificate=der(member.root),
                         policy_mappings=member.mappings())
    approved = bridge.approve(view["id"])
    bridge.upload_reverse(view["id"], der(member.reverse_certificate(bridge.certificate)))
    return view["id"], approved["serial"]


def _verify(bridge, member):
    return VerificationService(bridge).verify_chain(pem(member.leaf).decode(), intermediates=[pem(member.issuing).decode()],
                                                    policies=[BRIDGE_MEDIUM], revocation="off")


def _actions(bridge, action):
    return [json.loads(e.details) for e in bridge.store.audit_entries() if e.action == action]


@pytest.mark.parametrize("kind,value_of,index", [
    ("certificate_sha256", lambda m: hashlib.sha256(der(m.leaf)).hexdigest(), 0),
    ("spki_sha256", lambda m: None, 1),  # the issuing CA's key, from its certificate
    ("issuer_serial", lambda m: {"issuer": m.issuing.issuer.rfc4514_string(), "serial": format(m.issuing.serial_number, "x")}, 1),
    ("subject_identity", lambda m: {"oid": "organizationName", "value": m.leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value}, 0),
])
def test_each_kind_refuses_the_path_that_touches_it(bridge, kind, value_of, index):
    hk = make_member("HK")
    _join(bridge, hk)
    assert _verify(bridge, hk)["valid"] is True
    epoch = bridge.store.epoch()
    value = value_of(hk)
    params = {"kind": kind, "reason": "test", "public_note": "public", "internal_note": "secret", "evidence": "case 1"}
    params.update({"value": value} if value is not None else {"certificate": pem(hk.issuing).decode()})
    entry = governance.perform(bridge, "blacklist_add", params, actor="admin:1")
    assert bridge.store.epoch() > epoch
    result = _verify(bridge, hk)
    assert result["valid"] is False
    assert result["error"]["code"] == "blacklisted"
    assert result["error"]["certificate"] == index
    assert result["error"]["blacklist_entry"] == entry["id"]
    [audited] = _actions(bridge, "blacklist.add")
    assert audited["entry"] == entry["id"] and audited["kind"] == kind and audited["status"] == "active"

    removed = governance.perform(bridge, "blacklist_remove", {"entry_id": entry["id"], "reason": "lifted"}, actor="admin:2")
    assert removed["status"] == "removed" and removed["removed_by"] == "admin:2"
    assert _verify(bridge, hk)["valid"] is True
    assert [e["id"] for e in bridge.blacklist_entries()] == [entry["id"]]  # soft: still listed, as removed
    assert _actions(bridge, "blacklist.remove")[0]["status"] == "removed"
    with pytest.raises(BridgeError) as again:
        bridge.blacklist_remove(entry_id=entry["id"])
    assert again.value.code == "already_removed" and again.value.kind == "conflict"


def test_key_compromise_blacklists_the_root_key_in_the_same_transaction_and_blocks_re_enrollment(bridge):
    hk = make_member("HK")
    enrollment, serial = _join(bridge, hk)
    bridge.revoke(serial, "keyCompromise", actor="admin:1")
    [entry] = bridge.blacklist_entries()
    assert entry["kind"] == "spki_sha256" and entry["source"] == "keyCompromise" and entry["enrollment"] == enrollment
    [auto] = _actions(bridge, "blacklist.auto")
    assert auto["serial"] == serial and auto["value"] == entry["value"]
    with pytest.raises(BridgeError) as refused:
        bridge.enroll(name="HK again", jurisdiction="HK", root_certificate=der(hk.root), policy_mappings=hk.mappings())
    assert refused.value.code == "blacklisted" and refused.value.kind == "conflict"
    # The same key under a new certificate and name is the same key.
    _, renamed = make_root(name("HK", "Renamed CA", "Renamed Root"), hk.root_key)
    with pytest.raises(BridgeError) as refused:
        bridge.enroll(name="HK renamed", jurisdiction="HK", root_certificate=der(renamed), policy_mappings=hk.mappings())
    assert refused.value.code == "blacklisted"


def test_other_reasons_blacklist_nothing(bridge):
    hk = make_member("HK")
    _, serial = _join(bridge, hk)
    bridge.revoke(serial, "cessationOfOperation")
    assert bridge.blacklist_entries() == []


def test_a_subject_identity_refuses_enrollment_and_a_pending_enrollment_listed_later_is_not_approved(bridge):
    sz = make_member("SZ")
    pending = bridge.enroll(name="SZ", jurisdiction="SZ", root_certificate=der(sz.root), policy_mappings=sz.mappings())
    bridge.blacklist_add(kind="subject_identity", value={"oid": "2.5.4.10", "value": "shenzhen certification AUTHORITY"},
                         reason="licence withdrawn")  # compared as RFC 5280 7.1 compares names
    with pytest.raises(BridgeError) as refused:
        bridge.approve(pending["id"])
    assert refused.value.code == "blacklisted"
    assert bridge.store.get_enrollment(pending["id"]).status == "pending"


@pytest.mark.parametrize("kind,value", [
    ("spki_sha256", "abc"), ("certificate_sha256", {"x": 1}), ("issuer_serial", {"issuer": "not a name", "serial": "1"}),
    ("issuer_serial", {"issuer": "CN=X", "serial": "-1"}), ("subject_identity", {"oid": "nonsense", "value": "x"}),
    ("subject_identity", {"oid": "2.5.4.97", "value": " "}), ("colour", "red"), ("spki_sha256", None),
])
def test_bad_entries_are_refused(bridge, kind, value):
    with pytest.raises(BridgeError) as refused:
        bridge.blacklist_add(kind=kind, value=value, reason="x")
    assert refused.value.code == "invalid_blacklist_entry" and refused.value.kind == "invalid"
    assert bridge.blacklist_entries() == []


def test_an_entry_in_force_is_not_added_twice(bridge):
    bridge.blacklist_add(kind="spki_sha256", value="AB" * 32, reason="x")
    with pytest.raises(BridgeError) as twice:
        bridge.blacklist_add(kind="spki_sha256", value="ab" * 32, reason="y")
    assert twice.value.code == "already_blacklisted" and twice.value.kind == "conflict"


def test_the_published_document_is_public_deterministic_and_signed_once(bridge):
    entry = bridge.blacklist_add(kind="subject_identity", value={"oid": "organizationIdentifier", "value": "91440300MA5XXXXX0X"},
                                 reason="fraud", public_note="公示: licence revoked", internal_note="informant 7", evidence="case 42")
    document, signature = bridge.published_blacklist()
    parsed = json.loads(document)
    assert parsed["entries"][0]["id"] == entry["id"] and parsed["entries"][0]["value"]["oid"] == "2.5.4.97"
    assert b"informant 7" not in document and b"case 42" not in document
    again, signature_again = bridge.published_blacklist()
    assert (again, signature_again) == (document, signature)
    assert len([e for e in _actions(bridge, "key.use") if e.get("purpose") == "blacklist"]) == 1
