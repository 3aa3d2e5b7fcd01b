"""Cross-certificate issuance: the profile, byte-for-byte copies, publication, and failure halfway."""
from __future__ import annotations

import sqlite3

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtensionOID, NameOID

from bridge.authority import decode_policy_mappings
from bridge.errors import BridgeError
from bridge.registration import PolicyMapping
from bridge.service import BridgeCA

from .lint import certificate_errors, crl_errors
from .members import BRIDGE_HIGH, BRIDGE_MEDIUM, der, make_member, make_root


def _tbs_field(cert: x509.Certificate, field: str) -> bytes:
    return asn1_x509.TbsCertificate.load(cert.tbs_certificate_bytes)[field].dump()


def _cross(view) -> x509.Certificate:
    return x509.load_pem_x509_certificate(view["cross_certificate"].encode())


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-3072"])
def test_cross_certificate_profile(tmp_path, key_type):
    ca = BridgeCA.init(tmp_path / "b", key_type=key_type, base_url="https://bridge.example/")
    try:
        gd = make_member("GD")
        mappings = [
            {"bridge_policy": BRIDGE_MEDIUM, "member_policy": gd.policy},
            {"bridge_policy": BRIDGE_HIGH, "member_policy": "1.3.6.1.4.1.32473.77.10.2"},
        ]
        enrolled = ca.enroll(
            name="Guangdong CA", jurisdiction="GD", root_certificate=der(gd.root), policy_mappings=mappings,
            permitted_subtrees=[{"type": "directoryName", "value": "C=CN"}, {"type": "dNSName", "value": "gd.example"}],
            excluded_subtrees=[{"type": "iPAddress", "value": "10.0.0.0/8"}],
        )
        view = ca.approve(enrolled["id"])
        cross = _cross(view)

        assert certificate_errors(der(cross)) == []
        cross.verify_directly_issued_by(ca.certificate)
        assert _tbs_field(cross, "subject") == _tbs_field(gd.root, "subject")
        assert _tbs_field(cross, "subject_public_key_info") == _tbs_field(gd.root, "subject_public_key_info")
        assert cross.issuer == ca.certificate.subject
        assert cross.serial_number.bit_length() >= 64 and format(cross.serial_number, "x") == view["serial"]

        ext = {e.oid: e for e in cross.extensions}
        assert ext[ExtensionOID.BASIC_CONSTRAINTS].critical and ext[ExtensionOID.BASIC_CONSTRAINTS].value.path_length == 1
        usage = ext[ExtensionOID.KEY_USAGE].value
        assert ext[ExtensionOID.KEY_USAGE].critical and usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
        assert {p.policy_identifier.dotted_string for p in ext[ExtensionOID.CERTIFICATE_POLICIES].value} == {BRIDGE_MEDIUM, BRIDGE_HIGH}
        mapping_ext = ext[x509.ObjectIdentifier("2.5.29.33")]
        assert mapping_ext.critical
        assert decode_policy_mappings(mapping_ext.value.value) == [
            PolicyMapping(BRIDGE_MEDIUM, gd.policy), PolicyMapping(BRIDGE_HIGH, "1.3.6.1.4.1.32473.77.10.2")
        ]
        constraints = ext[ExtensionOID.NAME_CONSTRAINTS]
        assert constraints.critical
        assert x509.DNSName("gd.example") in constraints.value.permitted_subtrees
        assert len(constraints.value.excluded_subtrees) == 1
        assert ext[ExtensionOID.INHIBIT_ANY_POLICY].critical and ext[ExtensionOID.INHIBIT_ANY_POLICY].value.skip_certs == 0
        assert ext[ExtensionOID.SUBJECT_KEY_IDENTIFIER].value == gd.root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        bridge_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        assert ext[ExtensionOID.AUTHORITY_KEY_IDENTIFIER].value.key_identifier == bridge_ski
        assert ext[ExtensionOID.CRL_DISTRIBUTION_POINTS].value[0].full_name[0].value == "https://bridge.example/v1/crl"
        aia = {d.access_method: d.access_location.value for d in ext[ExtensionOID.AUTHORITY_INFORMATION_ACCESS].value}
        assert aia[x509.oid.AuthorityInformationAccessOID.OCSP] == "https://bridge.example/v1/ocsp"
        assert aia[x509.oid.AuthorityInformationAccessOID.CA_ISSUERS] == "https://bridge.example/v1/ca/issued-to-bridge.p7c"
        assert cross.not_valid_after_utc <= min(gd.root.not_valid_after_utc, ca.certificate.not_valid_after_utc)

        crl_der = ca.current_crl()
        assert crl_errors(crl_der) == []
        assert x509.load_der_x509_crl(crl_der).is_signature_valid(ca.certificate.public_key())
    finally:
        ca.close()


def test_subject_encoding_and_path_length_and_validity_come_from_the_enrollment(bridge):
    # Mixed string types: a re-encoding bridge would turn PrintableString into UTF8String.
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "HK"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hongkong Post", _type=_ASN1Type.PrintableString),
            x509.NameAttribute(NameOID.COMMON_NAME, "香港郵政 Root CA", _type=_ASN1Type.UTF8String),
        ]
    )
    _key, root = make_root(subject, days=100)
    view = bridge.approve(
        bridge.enroll(name="Hongkong Post", jurisdiction="HK", root_certificate=der(root),
                      policy_mappings=[{"bridge_policy": BRIDGE_MEDIUM, "member_policy": "1.3.6.1.4.1.32473.77.30.1"}],
                      path_length=0)["id"]
    )
    cross = _cross(view)
    assert _tbs_field(cross, "subject") == _tbs_field(root, "subject")
    assert cross.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert cross.not_valid_after_utc == root.not_valid_after_utc  # capped by the member root
    assert x509.NameConstraints not in {type(e.value) for e in cross.extensions}
    assert certificate_errors(der(cross)) == []


def test_serials_are_unique_and_random(bridge):
    serials = set()
    for code in ("GD", "SZ", "HK", "MO"):
        member = make_member(code)
        view = bridge.approve(bridge.enroll(name=code, jurisdiction=code, root_certificate=der(member.root), policy_mappings=member.mappings())["id"])
        serials.add(int(view["serial"], 16))
    assert len(serials) == 4 and all(s.bit_length() >= 64 for s in serials)


def _refuse_sql(db_path, table: str, operation: str) -> None:
    """Make the SQLite database itself refuse a kind of write (root ignores file permissions)."""
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            f"CREATE TRIGGER refuse_{table}_{operation.lower()} BEFORE {operation} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END"
        )


def _allow_sql(db_path, table: str, operation: str) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"DROP TRIGGER refuse_{table}_{operation.lower()}")


def _ocsp_status(ca, cert):
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca.certificate, hashes.SHA256()).build()
    return ocsp.load_der_ocsp_response(ca.ocsp_response(request.public_bytes(serialization.Encoding.DER)))


def test_a_failure_between_signing_and_storing_hands_out_nothing(tmp_path):
    ca = BridgeCA.init(tmp_path / "b")
    try:
        member = make_member("MO")
        enrolled = ca.enroll(name="Macau CA", jurisdiction="MO", root_certificate=der(member.root), policy_mappings=member.mappings())
        # The reservation (an INSERT) goes through; storing the signed certificate (an UPDATE) is refused.
        _refuse_sql(tmp_path / "b" / "bridge.db", "cross_certificate", "UPDATE")
        with pytest.raises(BridgeError) as info:
            ca.approve(enrolled["id"])
        assert info.value.code == "database_unavailable" and "readonly" in info.value.message
        assert ca.issuer(enrolled["id"])["status"] == "pending"
        assert ca.issuer(enrolled["id"])["cross_certificates"] == []
        assert ca.issued_by_bridge() == []
        reserved = ca.store.cross_certificates(statuses=("reserved",))
        assert len(reserved) == 1 and reserved[0].der is None
        actions = [e.action for e in ca.store.audit_entries()]
        assert actions[-1] == "key.use" and "certificate.issue" not in actions
        assert ca.verify_audit().intact

        _allow_sql(tmp_path / "b" / "bridge.db", "cross_certificate", "UPDATE")
        view = ca.approve(enrolled["id"])
        assert view["status"] == "active" and view["serial"] != reserved[0].serial
        assert len(ca.issued_by_bridge()) == 1
    finally:
        ca.close()


def test_a_refused_crl_write_leaves_the_certificate_unrevoked(tmp_path):
    ca = BridgeCA.init(tmp_path / "b")
    try:
        member = make_member("GD")
        view = ca.approve(ca.enroll(name="GD", jurisdiction="GD", root_certificate=der(member.root), policy_mappings=member.mappings())["id"])
        cross = _cross(view)
        crl_before = ca.current_crl()
        _refuse_sql(tmp_path / "b" / "bridge.db", "crl", "INSERT")
        with pytest.raises(BridgeError) as info:
            ca.revoke(view["serial"], "keyCompromise")
        assert info.value.code == "database_unavailable"
        # No revocation recorded without a CRL that lists it.
        assert ca.store.cross_certificate(cross.serial_number).status == "issued"
        assert _ocsp_status(ca, cross).certificate_status == ocsp.OCSPCertStatus.GOOD
        assert ca.current_crl() == crl_before

        _allow_sql(tmp_path / "b" / "bridge.db", "crl", "INSERT")
        result = ca.revoke(view["serial"], "keyCompromise")
        crl = x509.load_der_x509_crl(ca.current_crl())
        assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == result["crl_number"]
        entry = crl.get_revoked_certificate_by_serial_number(cross.serial_number)
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
        assert _ocsp_status(ca, cross).certificate_status == ocsp.OCSPCertStatus.REVOKED
    finally:
        ca.close()


def test_crl_numbers_increase_across_restarts_and_next_update_is_configurable(tmp_path, monkeypatch):
    home = tmp_path / "b"
    numbers = []
    members = [make_member(c) for c in ("GD", "SZ", "HK")]
    with BridgeCA.init(home) as ca:
        views = [ca.approve(ca.enroll(name=m.code, jurisdiction=m.code, root_certificate=der(m.root), policy_mappings=m.mappings())["id"]) for m in members]
        numbers.append(ca.revoke(views[0]["serial"], "unspecified")["crl_number"])
    monkeypatch.setenv("BRIDGECA_CRL_NEXT_UPDATE_HOURS", "6")
    with BridgeCA.open(home) as ca:
        numbers.append(ca.revoke(views[1]["serial"], "superseded")["crl_number"])
        crl = x509.load_der_x509_crl(ca.current_crl())
        assert (crl.next_update_utc - crl.last_update_utc).total_seconds() == 6 * 3600
    with BridgeCA.open(home) as ca:
        numbers.append(ca.revoke(views[2]["serial"], "cessationOfOperation")["crl_number"])
        assert ca.store.crl_numbers() == sorted(set(ca.store.crl_numbers()))
        final = x509.load_der_x509_crl(ca.current_crl())
    assert numbers == sorted(numbers) and len(set(numbers)) == 3
    assert {r.serial_number for r in final} == {int(v["serial"], 16) for v in views}


def test_ocsp_responder_edge_cases(bridge):
    member = make_member("SZ")
    view = bridge.approve(bridge.enroll(name="SZ", jurisdiction="SZ", root_certificate=der(member.root), policy_mappings=member.mappings())["id"])
    cross = _cross(view)
    # A nonce is echoed.
    request = (
        ocsp.OCSPRequestBuilder().add_certificate(cross, bridge.certificate, hashes.SHA1())
        .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False).build()
    )
    response = ocsp.load_der_ocsp_response(bridge.ocsp_response(request.public_bytes(serialization.Encoding.DER)))
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    assert response.next_update_utc > response.this_update_utc
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(bridge.certificate.public_key()).digest
    # A serial the bridge never issued.
    unknown = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        request.issuer_name_hash, request.issuer_key_hash, 12345, hashes.SHA1()
    ).build()
    assert ocsp.load_der_ocsp_response(bridge.ocsp_response(unknown.public_bytes(serialization.Encoding.DER))).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # A certificate of another issuer: not this responder's business.
    other = ocsp.OCSPRequestBuilder().add_certificate(member.issuing, member.root, hashes.SHA1()).build()
    assert ocsp.load_der_ocsp_response(bridge.ocsp_response(other.public_bytes(serialization.Encoding.DER))).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    assert ocsp.load_der_ocsp_response(bridge.ocsp_response(b"garbage")).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_empty_bundles_are_valid_certs_only_cms(bridge):
    for blob in (bridge.issued_by_bridge_p7c(), bridge.issued_to_bridge_p7c()):
        info = asn1_cms.ContentInfo.load(blob)
        assert info["content_type"].native == "signed_data"
        assert len(info["content"]["certificates"]) == 0


def test_wrong_passphrase_and_mismatched_certificate_are_clear_errors(tmp_path, monkeypatch):
    home = tmp_path / "b"
    BridgeCA.init(home).close()
    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", "not the passphrase")
    with pytest.raises(BridgeError) as wrong:
        BridgeCA.open(home)
    assert wrong.value.code == "signer_unavailable" and "wrong BRIDGECA_KEY_PASSPHRASE" in wrong.value.message
    monkeypatch.delenv("BRIDGECA_KEY_PASSPHRASE")
    with pytest.raises(BridgeError) as missing:
        BridgeCA.open(home)
    assert "BRIDGECA_KEY_PASSPHRASE is not set" in missing.value.message

    from .conftest import PASSPHRASE

    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", PASSPHRASE)
    _key, stranger = make_root(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stranger")]))
    (home / "bridge-cert.pem").write_bytes(stranger.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(BridgeError) as mismatch:
        BridgeCA.open(home)
    assert "does not match" in mismatch.value.message


def test_tokens_are_stored_only_as_hashes(tmp_path):
    with BridgeCA.init(tmp_path / "b") as ca:
        token = ca.create_token("platform")
        assert ca.authenticate(token) == "platform"
        assert ca.authenticate(token + "x") is None
        assert ca.authenticate("") is None
        with pytest.raises(BridgeError):
            ca.create_token("root")
    raw = (tmp_path / "b" / "bridge.db").read_bytes()
    assert token.encode() not in raw
    assert token[4:].encode() not in raw


def test_init_refuses_a_second_bridge_and_an_invalid_subject(tmp_path):
    BridgeCA.init(tmp_path / "b").close()
    with pytest.raises(BridgeError) as again:
        BridgeCA.init(tmp_path / "b")
    assert again.value.code == "already_initialised"
    with pytest.raises(BridgeError) as bad:
        BridgeCA.init(tmp_path / "c", subject="not a name")
    assert bad.value.code == "invalid_settings"
    assert not (tmp_path / "c" / "config.json").exists()




def test_a_colliding_serial_is_redrawn_before_the_key_is_used(bridge, monkeypatch):
    import bridge.authority as authority  # approval and reissue draw their serials in issue_reserved

    first = make_member("GD")
    taken = int(bridge.approve(bridge.enroll(name="GD", jurisdiction="GD", root_certificate=der(first.root), policy_mappings=first.mappings())["id"])["serial"], 16)
    draws = iter([taken, taken, 0x1234567890ABCDEF1234])
    monkeypatch.setattr(authority, "new_serial", lambda: next(draws))
    second = make_member("SZ")
    view = bridge.approve(bridge.enroll(name="SZ", jurisdiction="SZ", root_certificate=der(second.root), policy_mappings=second.mappings())["id"])
    assert int(view["serial"], 16) == 0x1234567890ABCDEF1234
    # Key uses: one per issued certificate, plus the CRL at init: no signature for a colliding serial.
    uses = [e for e in bridge.store.audit_entries() if e.action == "key.use"]
    assert len(uses) == 3


def test_migrations_are_applied_and_an_empty_database_is_refused(bridge, bridge_home, tmp_path, monkeypatch):
    # The newest migration's revision (bridge/migrations/versions/).
    import re
    from pathlib import Path

    from bridge.store import Store, StoreError

    newest = max(re.match(r"(\d{4})_", p.name).group(1) for p in (Path(__file__).parents[2] / "bridge" / "migrations" / "versions").glob("0*.py"))
    assert bridge.store.schema_revision() == newest
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(StoreError) as info:
        Store.open(empty)
    assert "run 'bridgeca init'" in str(info.value)
    monkeypatch.setenv("BRIDGECA_DATABASE_URL", empty)
    with pytest.raises(BridgeError) as opened:
        BridgeCA.open(bridge_home)
    assert opened.value.code == "database_unavailable"


def test_every_trust_change_moves_the_revocation_epoch(bridge):
    """Verifiers in every process compare this number with the one their
    caches were built at (bridge/verification.py)."""
    start = bridge.store.epoch()
    member = make_member("MO")
    enrollment = bridge.enroll(name="MO", jurisdiction="MO", root_certificate=der(member.root), policy_mappings=member.mappings())
    assert bridge.store.epoch() == start  # a pending enrollment changes no trust
    serial = bridge.approve(enrollment["id"])["serial"]
    approved = bridge.store.epoch()
    assert approved > start
    bridge.create_token("platform")
    assert bridge.store.epoch() == approved  # tokens are not trust
    bridge.upload_reverse(enrollment["id"], der(member.reverse_certificate(bridge.certificate)))
    uploaded = bridge.store.epoch()
    assert uploaded > approved
    bridge.revoke(serial, "keyCompromise")
    assert bridge.store.epoch() > uploaded
