"""The issue's first "Done when": a federation built through bridge/ alone,
shown with pki.Verifier — bridge plus GD, SZ, HK, MO, each with its own policy."""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from .lint import certificate_errors, crl_errors
from .members import BRIDGE_MEDIUM, der, make_member

CODES = ("GD", "SZ", "HK", "MO")


def _verifier():
    # Imported here so a missing verification core fails these tests (it is their subject), not collection.
    from pki import Verifier

    return Verifier


@pytest.fixture
def federation(bridge):
    members = {code: make_member(code) for code in CODES}
    crosses, reverses, enrollments = {}, {}, {}
    for code, member in members.items():
        enrolled = bridge.enroll(
            name=f"{member.display} CA", jurisdiction=code, root_certificate=der(member.root),
            policy_mappings=member.mappings(), actor=f"issuer-{code}",
        )
        approved = bridge.approve(enrolled["id"], actor="admin")
        assert approved["status"] == "active"
        crosses[code] = x509.load_pem_x509_certificate(approved["cross_certificate"].encode())
        reverse = member.reverse_certificate(bridge.certificate)
        bridge.upload_reverse(enrolled["id"], der(reverse), actor=f"issuer-{code}")
        reverses[code] = reverse
        enrollments[code] = enrolled["id"]
    return members, crosses, reverses, enrollments


def _untrusted(members, crosses, reverses):
    certs = [der(c) for c in crosses.values()] + [der(r) for r in reverses.values()]
    certs += [der(m.issuing) for m in members.values()]
    return certs


def _member_crls(members):
    return [crl for m in members.values() for crl in m.crls]


def test_every_issued_cross_certificate_passes_pkilint(federation):
    _members, crosses, _reverses, _ = federation
    for code, cross in crosses.items():
        assert certificate_errors(der(cross)) == [], code


def test_each_leaf_validates_from_the_bridge_anchor_in_the_bridge_policy_domain(bridge, federation):
    members, crosses, reverses, _ = federation
    verifier = _verifier()(anchors=[der(bridge.certificate)], untrusted=_untrusted(members, crosses, reverses))
    for code, member in members.items():
        result = verifier.verify(der(member.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
        assert result.valid, (code, result.to_dict()["error"])
        summary = result.to_dict()
        assert summary["policies"] == [BRIDGE_MEDIUM]
        # leaf, issuing CA, cross-certificate; the anchor last.
        assert len(summary["path"]) == 4
        assert summary["path"][2]["serial"].lower().lstrip("0") == format(crosses[code].serial_number, "x")


def test_a_member_policy_the_bridge_did_not_map_is_refused(bridge, federation):
    members, crosses, reverses, _ = federation
    verifier = _verifier()(anchors=[der(bridge.certificate)], untrusted=_untrusted(members, crosses, reverses))
    # GD's own policy OID is not a policy of the bridge's domain.
    result = verifier.verify(der(members["GD"].leaf), policies=[members["GD"].policy], explicit_policy=True)
    assert not result.valid
    assert result.to_dict()["error"]["code"] == "policy_required"


@pytest.mark.parametrize("anchor_code", CODES)
def test_leaves_validate_from_another_members_root_through_its_reverse_certificate(bridge, federation, anchor_code):
    members, crosses, reverses, _ = federation
    anchor = members[anchor_code]
    verifier = _verifier()(anchors=[der(anchor.root)], untrusted=_untrusted(members, crosses, reverses))
    for code, member in members.items():
        if code == anchor_code:
            continue
        # The anchor member's own policy, mapped to the bridge's, mapped to the leaf member's.
        result = verifier.verify(der(member.leaf), policies=[anchor.policy], explicit_policy=True)
        assert result.valid, (anchor_code, code, result.to_dict()["error"])
        summary = result.to_dict()
        assert summary["policies"] == [anchor.policy]
        issuers = [entry["issuer"] for entry in summary["path"]]
        assert bridge.certificate.subject.rfc4514_string() in " ".join(issuers) or any(
            "Bridge" in i for i in issuers
        ), issuers


def test_revoking_a_members_cross_certificate_cuts_off_only_that_member(bridge, federation):
    members, crosses, reverses, enrollments = federation
    revoked = bridge.revoke(crosses["HK"].serial_number, "cACompromise", actor="admin")
    assert revoked["status"] == "revoked"
    assert bridge.issuer(enrollments["HK"])["status"] == "revoked"

    crl_der = bridge.current_crl()
    assert crl_errors(crl_der) == []
    crl = x509.load_der_x509_crl(crl_der)
    assert crl.is_signature_valid(bridge.certificate.public_key())
    assert crl.get_revoked_certificate_by_serial_number(crosses["HK"].serial_number) is not None

    crls = [crl_der] + _member_crls(members)
    untrusted = _untrusted(members, crosses, reverses)
    from_bridge = _verifier()(anchors=[der(bridge.certificate)], untrusted=untrusted, crls=crls)
    for code, member in members.items():
        result = from_bridge.verify(der(member.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
        if code == "HK":
            assert not result.valid
            assert result.to_dict()["error"]["code"] == "revoked"
        else:
            assert result.valid, (code, result.to_dict()["error"])
            assert result.to_dict()["revocation"] == "checked"

    from_macau = _verifier()(anchors=[der(members["MO"].root)], untrusted=untrusted, crls=crls)
    hk = from_macau.verify(der(members["HK"].leaf), policies=[members["MO"].policy], explicit_policy=True)
    assert not hk.valid and hk.to_dict()["error"]["code"] == "revoked"
    gd = from_macau.verify(der(members["GD"].leaf), policies=[members["MO"].policy], explicit_policy=True)
    assert gd.valid, gd.to_dict()["error"]

    # The OCSP responder says the same, signed by the bridge.
    for code, expected in (("HK", ocsp.OCSPCertStatus.REVOKED), ("GD", ocsp.OCSPCertStatus.GOOD)):
        request = ocsp.OCSPRequestBuilder().add_certificate(crosses[code], bridge.certificate, hashes.SHA1()).build()
        response = ocsp.load_der_ocsp_response(bridge.ocsp_response(request.public_bytes(serialization.Encoding.DER)))
        assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.certificate_status == expected, code
        assert response.serial_number == crosses[code].serial_number
        bridge.certificate.public_key().verify(
            response.signature, response.tbs_response_bytes, _signature_scheme(bridge.certificate, response)
        )
        if code == "HK":
            assert response.revocation_reason == x509.ReasonFlags.ca_compromise

    # The published bundles follow: HK's cross-certificate and reverse certificate are gone.
    from cryptography.hazmat.primitives.serialization import pkcs7

    issued_by = {c.serial_number for c in pkcs7.load_der_pkcs7_certificates(bridge.issued_by_bridge_p7c())}
    assert issued_by == {crosses[c].serial_number for c in CODES if c != "HK"}
    issued_to = {c.issuer for c in pkcs7.load_der_pkcs7_certificates(bridge.issued_to_bridge_p7c())}
    assert issued_to == {members[c].root.subject for c in CODES if c != "HK"}


def _signature_scheme(bridge_cert, response):
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(response.signature_hash_algorithm)
