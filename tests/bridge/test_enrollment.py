"""Enrollment checks: each refusal has its own code, and nothing is stored for a refused submission."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.errors import BridgeError

from .members import BRIDGE_MEDIUM, LEAF_USAGE, der, ec_key, make_member, make_root, name, pem

MAPPING = [{"bridge_policy": BRIDGE_MEDIUM, "member_policy": "1.3.6.1.4.1.32473.77.10.1"}]


def _enroll(bridge, root_bytes, **overrides):
    kwargs = dict(name="Test CA", jurisdiction="GD", root_certificate=root_bytes, policy_mappings=MAPPING)
    kwargs.update(overrides)
    return bridge.enroll(**kwargs)


def _refused(bridge, code, root_bytes, **overrides):
    before = len(bridge.issuers())
    with pytest.raises(BridgeError) as info:
        _enroll(bridge, root_bytes, **overrides)
    assert info.value.code == code, info.value.message
    assert info.value.kind in ("conflict", "invalid", "malformed")
    assert len(bridge.issuers()) == before  # nothing half-done
    return info.value


SUBJECT = name("CN", "Test", "Test Root")


def test_a_good_root_is_accepted_pending_with_its_terms(bridge):
    _key, root = make_root(SUBJECT)
    view = _enroll(bridge, pem(root), permitted_subtrees=[{"type": "dNSName", "value": "gd.example"}], path_length=0)
    assert view["status"] == "pending"
    assert view["policy_mappings"] == MAPPING
    assert view["permitted_subtrees"] == [{"type": "dNSName", "value": "gd.example"}]
    assert view["path_length"] == 0
    assert bridge.issuer(view["id"])["root_subject"] == root.subject.rfc4514_string()


def test_malformed_certificate(bridge):
    _refused(bridge, "malformed_certificate", b"\x30\x03\x02\x01\x01")


def test_not_self_signed(bridge):
    issuer_key, issuer = make_root(name("CN", "Other", "Other Root"))
    _key, cert = make_root(SUBJECT, sign_key=issuer_key, issuer=issuer.subject)
    _refused(bridge, "not_self_signed", der(cert))


def test_self_signature_that_does_not_verify(bridge):
    wrong_key = ec_key()
    key = ec_key()
    _k, cert = make_root(SUBJECT, key=key, sign_key=wrong_key)
    _refused(bridge, "signature_invalid", der(cert))


def test_not_a_ca(bridge):
    _key, cert = make_root(SUBJECT, ca=False)
    _refused(bridge, "not_a_ca", der(cert))


def test_no_key_cert_sign(bridge):
    _key, cert = make_root(SUBJECT, usage=LEAF_USAGE)
    _refused(bridge, "key_usage", der(cert))


def test_small_rsa_key(bridge):
    _key, cert = make_root(SUBJECT, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    _refused(bridge, "unsupported_key", der(cert))


def test_unaccepted_curve(bridge):
    _key, cert = make_root(SUBJECT, key=ec.generate_private_key(ec.SECP256K1()))
    _refused(bridge, "unsupported_key", der(cert))


def test_expired_and_not_yet_valid(bridge):
    now = dt.datetime.now(dt.timezone.utc)
    _key, old = make_root(SUBJECT, not_before=now - dt.timedelta(days=400), days=30)
    _refused(bridge, "expired", der(old))
    _key, future = make_root(SUBJECT, not_before=now + dt.timedelta(days=2))
    _refused(bridge, "not_yet_valid", der(future))


def test_validity_shorter_than_the_configured_minimum(bridge):
    assert bridge.settings.min_member_root_validity_days == 30
    _key, short = make_root(SUBJECT, days=10)
    error = _refused(bridge, "validity_too_short", der(short))
    assert "30 days" in error.message


def test_same_key_cannot_be_enrolled_twice(bridge):
    key, root = make_root(SUBJECT)
    _enroll(bridge, der(root))
    # A different certificate for the same key is still the same key.
    _k, again = make_root(name("CN", "Test", "Renamed Root"), key=key)
    _refused(bridge, "already_enrolled", der(again))


def test_the_bridges_own_key_cannot_be_enrolled(bridge):
    _refused(bridge, "already_enrolled", der(bridge.certificate))


@pytest.mark.parametrize(
    "mappings",
    [
        [],
        [{"bridge_policy": "2.5.29.32.0", "member_policy": "1.3.6.1.4.1.32473.77.10.1"}],
        [{"bridge_policy": BRIDGE_MEDIUM, "member_policy": "not-an-oid"}],
        [{"bridge_policy": BRIDGE_MEDIUM}],
    ],
)
def test_bad_policy_mappings(bridge, mappings):
    _key, root = make_root(SUBJECT)
    _refused(bridge, "invalid_policy_mapping", der(root), policy_mappings=mappings)


def test_bad_name_constraints_and_path_length_and_jurisdiction(bridge):
    _key, root = make_root(SUBJECT)
    _refused(bridge, "invalid_name_constraints", der(root), permitted_subtrees=[{"type": "iPAddress", "value": "10.0.0.1/8"}])
    _refused(bridge, "invalid_name_constraints", der(root), excluded_subtrees=[{"type": "x400Address", "value": "x"}])
    _refused(bridge, "invalid_path_length", der(root), path_length=-1)
    _refused(bridge, "unknown_jurisdiction", der(root), jurisdiction="TW")


def test_states_pending_active_revoked_and_rollover(bridge):
    member = make_member("SZ")
    first = bridge.enroll(name="Shenzhen CA", jurisdiction="SZ", root_certificate=der(member.root), policy_mappings=member.mappings())
    with pytest.raises(BridgeError) as info:
        bridge.revoke("abcdef", "keyCompromise")
    assert info.value.code == "not_found"
    approved = bridge.approve(first["id"])
    assert approved["status"] == "active"
    with pytest.raises(BridgeError) as again:
        bridge.approve(first["id"])
    assert again.value.code == "invalid_state" and again.value.kind == "conflict"

    # Key rollover: a new root for the same member is a new enrollment linked to the old one,
    # declared as such (a root name held by an active member is refused otherwise).
    new_member = make_member("SZ")
    with pytest.raises(BridgeError) as taken:
        bridge.enroll(name="Shenzhen CA", jurisdiction="SZ", root_certificate=der(new_member.root),
                      policy_mappings=new_member.mappings())
    assert taken.value.code == "name_taken"
    rolled = bridge.enroll(name="Shenzhen CA", jurisdiction="SZ", root_certificate=der(new_member.root),
                           policy_mappings=new_member.mappings(), rollover_of=first["id"])
    assert rolled["status"] == "pending" and rolled["replaces"] == first["id"]

    bridge.revoke(approved["serial"], "superseded")
    assert bridge.issuer(first["id"])["status"] == "revoked"
    with pytest.raises(BridgeError) as twice:
        bridge.revoke(approved["serial"], "superseded")
    assert twice.value.code == "already_revoked" and twice.value.kind == "conflict"
    with pytest.raises(BridgeError) as bad_reason:
        bridge.revoke(approved["serial"], "certificateHold")
    assert bad_reason.value.code == "invalid_reason"


def test_reverse_certificate_checks(bridge):
    gd, sz = make_member("GD"), make_member("SZ")
    enrolled = bridge.enroll(name="Guangdong CA", jurisdiction="GD", root_certificate=der(gd.root), policy_mappings=gd.mappings())
    # Issued by another member's root: refused.
    with pytest.raises(BridgeError) as wrong_issuer:
        bridge.upload_reverse(enrolled["id"], der(sz.reverse_certificate(bridge.certificate)))
    assert wrong_issuer.value.code == "name_chaining"
    # The bridge's name but someone else's key: refused.
    from .members import issue

    other_key = ec_key()
    wrong_key = issue(gd.root, gd.root_key, bridge.certificate.subject, other_key.public_key(), ca=True)
    with pytest.raises(BridgeError) as mismatch:
        bridge.upload_reverse(enrolled["id"], der(wrong_key))
    assert mismatch.value.code == "key_mismatch"
    assert bridge.issued_to_bridge() == []
    good = bridge.upload_reverse(enrolled["id"], pem(gd.reverse_certificate(bridge.certificate)))
    assert len(good["sha256"]) == 64
    bridge.approve(enrolled["id"])
    assert [c.issuer for c in bridge.issued_to_bridge()] == [gd.root.subject]



def test_enrollments_expire_when_their_cross_certificates_run_out(bridge):
    import datetime as dt

    from .members import make_root, name

    _key, root = make_root(name("MO", "Macau", "Short Root"), days=60)
    view = bridge.approve(_enroll(bridge, der(root), jurisdiction="MO")["id"])
    assert bridge.expire_due() == []
    later = root.not_valid_after_utc + dt.timedelta(seconds=1)
    assert bridge.expire_due(at=later) == [view["id"]]
    assert bridge.issuer(view["id"])["status"] == "expired"
    assert bridge.store.audit_entries()[-1].action == "enrollment.expired"


def test_an_issuer_token_sees_only_its_own_enrollments(bridge):
    gd_token, sz_token = bridge.create_token("issuer"), bridge.create_token("issuer")
    gd_id, gd_role = bridge.principal(gd_token)
    sz_id, _ = bridge.principal(sz_token)
    assert gd_role == "issuer" and gd_id != sz_id
    assert bridge.principal("bca_unknown") is None
    gd, sz = make_member("GD"), make_member("SZ")
    mine = bridge.enroll(name="GD", jurisdiction="GD", root_certificate=der(gd.root), policy_mappings=gd.mappings(), owner=gd_id)
    bridge.enroll(name="SZ", jurisdiction="SZ", root_certificate=der(sz.root), policy_mappings=sz.mappings(), owner=sz_id)
    assert [v["id"] for v in bridge.issuers(owner=gd_id)] == [mine["id"]]
    assert len(bridge.issuers()) == 2
    assert bridge.issuer(mine["id"], owner=gd_id)["name"] == "GD"
    with pytest.raises(BridgeError) as hidden:
        bridge.issuer(mine["id"], owner=sz_id)
    assert hidden.value.kind == "not_found"
