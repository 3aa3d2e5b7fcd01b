"""A mixed-algorithm federation through bridge/ alone: an SM2 Guangdong member
(SM2 root, issuing CA and leaf), an RSA Hong Kong member, and

- an ECDSA bridge (the issue's "Done when"),
- an SM2 bridge cross-certifying both,
- a dual-key bridge (ECDSA and SM2 keys under one name, joined by link
  certificates), whose SM2 key cross-certifies GD and ECDSA key HK,

shown with pki.Verifier in both directions, with mapped policies and with
revocation. The members' SM2 certificates are built here independently of
bridge/signer.py: cryptography drafts the to-be-signed bytes, asn1crypto puts
in the SM2 key and algorithm, and bridge.sm2_keys signs (the openssl CLI
cross-checks that signing in tests/test_sm2_interop.py).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import pytest
from asn1crypto import core as asn1_core
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from bridge.errors import BridgeError
from bridge.service import BridgeCA
from pki import Verifier
from pki.algorithms import AlgorithmRegistry
from pki.der import spki_parts, split_signed
from pki.sm2 import sm2_available

from .lint import certificate_errors, crl_errors
from .members import BRIDGE_MEDIUM, CA_USAGE, LEAF_USAGE, MEMBER_POLICIES, name, policy_mappings_extension, utcnow

pytestmark = pytest.mark.skipif(not sm2_available(), reason="the system libcrypto cannot do SM2/SM3")

SM2_WITH_SM3 = "1.2.156.10197.1.501"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
SM2_CURVE_AS_ALGORITHM = bytes.fromhex("300a06082a811ccf5501822d")  # AlgorithmIdentifier {1.2.156.10197.1.301}
_PLACEHOLDER = ec.generate_private_key(ec.SECP256R1())  # drafts only; its key and signature are replaced


# --------------------------------------------------------------------------- building member PKIs


def _sm2_key():
    from bridge.sm2_keys import Sm2PrivateKey

    return Sm2PrivateKey.generate()


def _is_sm2(key) -> bool:
    return type(key).__name__ == "Sm2PrivateKey"


def spki_of(key) -> bytes:
    if _is_sm2(key):
        return key.public_key_spki_der()
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def raw_spki(certificate: x509.Certificate) -> bytes:
    return asn1_x509.TbsCertificate.load(certificate.tbs_certificate_bytes)["subject_public_key_info"].dump()


def der(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER)


def _algorithm(key) -> asn1_x509.SignedDigestAlgorithm:
    if _is_sm2(key):
        return asn1_x509.SignedDigestAlgorithm({"algorithm": SM2_WITH_SM3})
    if isinstance(key, rsa.RSAPrivateKey):
        return asn1_x509.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": asn1_core.Null()})
    return asn1_x509.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})


def _sign_raw(key, data: bytes) -> bytes:
    if _is_sm2(key):
        return key.sign(data)  # SM2-with-SM3, signer ID 1234567812345678
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _fields(spec, loaded) -> dict:
    return {n: loaded[n] for n, *_ in spec._fields if not isinstance(loaded[n], asn1_core.Void)}


def sign_certificate(builder: x509.CertificateBuilder, issuer_key, subject_spki: bytes) -> x509.Certificate:
    """``builder`` (no public key set) signed by ``issuer_key`` (SM2, RSA or
    ECDSA) over ``subject_spki`` (any key, SM2 included)."""
    draft = builder.public_key(_PLACEHOLDER.public_key()).sign(_PLACEHOLDER, hashes.SHA256())
    fields = _fields(asn1_x509.TbsCertificate, asn1_x509.TbsCertificate.load(draft.tbs_certificate_bytes))
    fields["signature"] = _algorithm(issuer_key)
    fields["subject_public_key_info"] = asn1_x509.PublicKeyInfo.load(subject_spki)
    tbs = asn1_x509.TbsCertificate(fields).dump()
    signed = asn1_x509.Certificate(
        {"tbs_certificate": asn1_x509.TbsCertificate.load(tbs), "signature_algorithm": _algorithm(issuer_key),
         "signature_value": _sign_raw(issuer_key, tbs)}
    )
    return x509.load_der_x509_certificate(signed.dump())


def sign_crl(builder: x509.CertificateRevocationListBuilder, issuer_key) -> bytes:
    draft = builder.sign(_PLACEHOLDER, hashes.SHA256())
    fields = _fields(asn1_crl.TbsCertList, asn1_crl.TbsCertList.load(draft.tbs_certlist_bytes))
    fields["signature"] = _algorithm(issuer_key)
    tbs = asn1_crl.TbsCertList(fields).dump()
    return asn1_crl.CertificateList(
        {"tbs_cert_list": asn1_crl.TbsCertList.load(tbs), "signature_algorithm": _algorithm(issuer_key),
         "signature": _sign_raw(issuer_key, tbs)}
    ).dump()


def key_id(spki: bytes) -> bytes:
    return hashlib.sha1(spki_parts(spki)[2]).digest()


def issue(issuer: x509.Certificate | None, issuer_key, subject: x509.Name, spki: bytes, *, ca: bool, policies=(),
          path_length=None, days=730, extra=()) -> x509.Certificate:
    """A certificate for ``spki``; self-signed when ``issuer`` is None."""
    now = utcnow() - dt.timedelta(hours=1)
    not_after = now + dt.timedelta(days=days)
    if issuer is not None:
        not_after = min(not_after, issuer.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(CA_USAGE if ca else LEAF_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier(key_id(spki)), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(key_id(raw_spki(issuer)), None, None), critical=False)
    if policies:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]), critical=False
        )
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    return sign_certificate(builder, issuer_key, spki)


def empty_crl(issuer: x509.Certificate, issuer_key) -> bytes:
    now = utcnow() - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(key_id(raw_spki(issuer)), None, None), critical=False)
    )
    return sign_crl(builder, issuer_key)


def curve_as_algorithm(spki: bytes) -> bytes:
    """The same SM2 key with 1.2.156.10197.1.301 as its algorithm (no parameters), as some real certificates carry it."""
    standard = bytes.fromhex("301306072a8648ce3d020106082a811ccf5501822d")
    assert spki[2:2 + len(standard)] == standard
    body = SM2_CURVE_AS_ALGORITHM + spki[2 + len(standard):]
    return bytes([0x30, len(body)]) + body


@dataclass
class Member:
    code: str
    policy: str
    root_key: object
    root: x509.Certificate
    issuing: x509.Certificate
    leaf: x509.Certificate
    crls: list = field(default_factory=list)

    def mappings(self):
        return [{"bridge_policy": BRIDGE_MEDIUM, "member_policy": self.policy}]

    def reverse_certificate(self, bridge_certificate: x509.Certificate) -> x509.Certificate:
        """The member root's certificate for the bridge's name and key, mapping member → bridge policy."""
        return issue(self.root, self.root_key, bridge_certificate.subject, raw_spki(bridge_certificate), ca=True,
                     policies=[self.policy], extra=[(policy_mappings_extension([(self.policy, BRIDGE_MEDIUM)]), True)])


def make_member(code: str, new_key, *, root_spki=None) -> Member:
    """Root, issuing CA and leaf, every key made by ``new_key()``. ``root_spki``
    re-encodes the root's key (the curve-as-algorithm SM2 variant)."""
    display, policy = MEMBER_POLICIES[code]
    country = {"GD": "CN", "SZ": "CN", "HK": "HK", "MO": "MO"}[code]
    org = f"{display} Certification Authority"
    root_key, issuing_key, leaf_key = new_key(), new_key(), new_key()
    root = issue(None, root_key, name(country, org, f"{display} Root CA"), (root_spki or spki_of)(root_key), ca=True, days=3650)
    issuing = issue(root, root_key, name(country, org, f"{display} Issuing CA 1"), spki_of(issuing_key), ca=True,
                    policies=[policy], path_length=0)
    leaf = issue(issuing, issuing_key, name(country, f"{display} Example Org", f"signer.{code.lower()}.example"),
                 spki_of(leaf_key), ca=False, policies=[policy], days=365)
    return Member(code, policy, root_key, root, issuing, leaf, [empty_crl(root, root_key), empty_crl(issuing, issuing_key)])


def make_gd(code: str = "GD", **options) -> Member:
    return make_member(code, _sm2_key, **options)


def make_hk() -> Member:
    return make_member("HK", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class Federation:
    ca: BridgeCA
    members: dict[str, Member]
    crosses: dict[str, x509.Certificate]
    reverses: dict[str, x509.Certificate]
    enrollments: dict[str, str]

    def untrusted(self) -> list[bytes]:
        """What a relying party has: every cross- and reverse certificate (revoked
        ones too, so that a path through one is reported revoked), the link
        certificates, and the members' issuing CAs."""
        certs = [der(c) for c in self.crosses.values()] + [der(c) for c in self.reverses.values()]
        certs += [der(c) for c in self.ca.link_certificates()] + [der(m.issuing) for m in self.members.values()]
        return certs

    def member_crls(self) -> list[bytes]:
        return [crl for m in self.members.values() for crl in m.crls]

    def verifier(self, anchor: x509.Certificate, crls=(), **options) -> Verifier:
        return Verifier(anchors=[der(anchor)], untrusted=self.untrusted(), crls=list(crls), **options)


def federate(ca: BridgeCA, members: dict[str, Member], reverse_key=None) -> Federation:
    """Enroll, approve and upload the reverse certificate of each member.
    ``reverse_key(member)`` chooses the bridge certificate whose key the member certifies."""
    crosses, reverses, enrollments = {}, {}, {}
    for code, member in members.items():
        enrolled = ca.enroll(name=f"{code} CA", jurisdiction=code, root_certificate=der(member.root),
                             policy_mappings=member.mappings(), actor=f"issuer-{code}")
        approved = ca.approve(enrolled["id"], actor="admin")
        assert approved["status"] == "active"
        crosses[code] = x509.load_pem_x509_certificate(approved["cross_certificate"].encode())
        target = reverse_key(member) if reverse_key else ca.certificate
        reverses[code] = member.reverse_certificate(target)
        ca.upload_reverse(enrolled["id"], der(reverses[code]), actor=f"issuer-{code}")
        enrollments[code] = enrolled["id"]
    return Federation(ca, members, crosses, reverses, enrollments)


def signature_oid(obj) -> str:
    return obj.signature_algorithm_oid.dotted_string


def outcome(result) -> tuple[bool, str | None]:
    summary = result.to_dict()
    return summary["valid"], summary["error"]["code"] if summary["error"] else None


def ocsp_request(ca: BridgeCA, cross: x509.Certificate, key_certificate: x509.Certificate) -> bytes:
    # cryptography cannot hash an SM2 issuer key, so the CertID is built from the key bits (RFC 6960 4.1.1).
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        hashlib.sha1(ca.certificate.subject.public_bytes()).digest(),
        hashlib.sha1(spki_parts(raw_spki(key_certificate))[2]).digest(),
        cross.serial_number, hashes.SHA1(),
    ).build()
    return request.public_bytes(serialization.Encoding.DER)


# --------------------------------------------------------------------------- an ECDSA bridge


@pytest.fixture
def ecdsa_federation(bridge):
    return federate(bridge, {"GD": make_gd(), "HK": make_hk()})


def test_sm2_root_is_cross_certified_by_the_ecdsa_bridge(ecdsa_federation):
    fed = ecdsa_federation
    gd, cross = fed.members["GD"], fed.crosses["GD"]
    assert signature_oid(gd.root) == SM2_WITH_SM3 and signature_oid(fed.members["HK"].root) == "1.2.840.113549.1.1.11"
    assert signature_oid(cross) == ECDSA_WITH_SHA256
    assert raw_spki(cross) == raw_spki(gd.root)  # the SM2 key, byte for byte
    assert certificate_errors(der(cross)) == []
    assert cross.subject == gd.root.subject and cross.issuer == fed.ca.certificate.subject
    ski = cross.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ski == key_id(raw_spki(gd.root))
    # The reverse certificate GD uploaded is SM2-signed, and was checked as such.
    assert signature_oid(fed.reverses["GD"]) == SM2_WITH_SM3
    issuers = fed.ca.issuers()
    assert {v["jurisdiction"]: v["status"] for v in issuers} == {"GD": "active", "HK": "active"}


def test_leaves_validate_across_the_ecdsa_bridge_in_both_directions(ecdsa_federation):
    fed = ecdsa_federation
    gd, hk = fed.members["GD"], fed.members["HK"]
    from_bridge = fed.verifier(fed.ca.certificate)
    for member in (gd, hk):
        result = from_bridge.verify(der(member.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
        assert result.valid, (member.code, result.to_dict()["error"])
        assert result.to_dict()["policies"] == [BRIDGE_MEDIUM]
        assert len(result.path) == 4

    # GD's leaf from Hong Kong's root: HK's reverse certificate, the bridge, GD's cross-certificate.
    from_hk = fed.verifier(hk.root).verify(der(gd.leaf), policies=[hk.policy], explicit_policy=True)
    assert from_hk.valid, from_hk.to_dict()["error"]
    summary = from_hk.to_dict()
    assert summary["policies"] == [hk.policy]
    assert [e["subject"] for e in summary["path"]] == [
        gd.leaf.subject.rfc4514_string(), gd.issuing.subject.rfc4514_string(), gd.root.subject.rfc4514_string(),
        fed.ca.certificate.subject.rfc4514_string(), hk.root.subject.rfc4514_string(),
    ]
    assert summary["path"][2]["serial"].lstrip("0") == format(fed.crosses["GD"].serial_number, "x")

    # HK's leaf from Guangdong's SM2 root, through GD's SM2-signed reverse certificate.
    from_gd = fed.verifier(gd.root).verify(der(hk.leaf), policies=[gd.policy], explicit_policy=True)
    assert from_gd.valid, from_gd.to_dict()["error"]
    assert from_gd.to_dict()["policies"] == [gd.policy]
    assert len(from_gd.path) == 5

    # A policy the bridge did not map is not accepted across it.
    unmapped = fed.verifier(hk.root).verify(der(gd.leaf), policies=[gd.policy], explicit_policy=True)
    assert outcome(unmapped) == (False, "policy_required")


def test_revoking_gds_cross_certificate_cuts_off_gd_only(ecdsa_federation):
    fed = ecdsa_federation
    gd, hk = fed.members["GD"], fed.members["HK"]
    revoked = fed.ca.revoke(fed.crosses["GD"].serial_number, "keyCompromise", actor="admin")
    assert revoked["status"] == "revoked"
    assert fed.ca.issuer(fed.enrollments["GD"])["status"] == "revoked"
    crl = fed.ca.current_crl()
    assert x509.load_der_x509_crl(crl).get_revoked_certificate_by_serial_number(fed.crosses["GD"].serial_number) is not None
    crls = [crl] + fed.member_crls()

    from_bridge = fed.verifier(fed.ca.certificate, crls)
    gd_result = from_bridge.verify(der(gd.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
    assert outcome(gd_result) == (False, "revoked")
    assert gd_result.to_dict()["error"]["certificate"] == 2  # the cross-certificate
    hk_result = from_bridge.verify(der(hk.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
    assert outcome(hk_result) == (True, None) and hk_result.to_dict()["revocation"] == "checked"

    from_hk = fed.verifier(hk.root, crls).verify(der(gd.leaf), policies=[hk.policy], explicit_policy=True)
    assert outcome(from_hk) == (False, "revoked")

    response = ocsp.load_der_ocsp_response(fed.ca.ocsp_response(ocsp_request(fed.ca, fed.crosses["GD"], fed.ca.certificate)))
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.key_compromise


def test_the_sm2_curve_oid_variant_is_enrolled_and_recognised_as_the_same_key(bridge):
    variant = make_gd(root_spki=lambda key: curve_as_algorithm(spki_of(key)))
    assert raw_spki(variant.root)[2:2 + len(SM2_CURVE_AS_ALGORITHM)] == SM2_CURVE_AS_ALGORITHM
    fed = federate(bridge, {"GD": variant})
    cross = fed.crosses["GD"]
    assert raw_spki(cross) == raw_spki(variant.root)  # the variant is kept, not re-encoded
    result = fed.verifier(bridge.certificate).verify(der(variant.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
    assert result.valid, result.to_dict()["error"]

    # The same key in the standard encoding is the same key.
    standard = issue(None, variant.root_key, name("CN", "Guangdong Again", "Root"), spki_of(variant.root_key), ca=True, days=3650)
    with pytest.raises(BridgeError) as again:
        bridge.enroll(name="GD again", jurisdiction="GD", root_certificate=der(standard), policy_mappings=variant.mappings())
    assert again.value.code == "already_enrolled"


def test_bad_sm2_roots_are_refused(bridge, monkeypatch):
    gd = make_gd()
    # Self-signature made under the empty signer ID (OpenSSL 3.0's default when none is set).
    tbs, _alg, _sig = split_signed(der(gd.root))
    empty_id = asn1_x509.Certificate(
        {"tbs_certificate": asn1_x509.TbsCertificate.load(tbs), "signature_algorithm": _algorithm(gd.root_key),
         "signature_value": gd.root_key.sign(tbs, distid=b"")}
    ).dump()
    with pytest.raises(BridgeError) as bad:
        bridge.enroll(name="GD", jurisdiction="GD", root_certificate=empty_id, policy_mappings=gd.mappings())
    assert bad.value.code == "signature_invalid"

    # Where libcrypto has no SM2, an SM2 root cannot be checked, and is refused plainly.
    from pki import sm2

    def no_library():
        raise sm2.Sm2Unavailable("no SM2 in this test")

    monkeypatch.setattr(sm2, "libcrypto", no_library)
    with pytest.raises(BridgeError) as unavailable:
        bridge.enroll(name="GD", jurisdiction="GD", root_certificate=der(gd.root), policy_mappings=gd.mappings())
    assert unavailable.value.code == "unsupported_key" and "SM2" in unavailable.value.message
    monkeypatch.undo()
    assert bridge.enroll(name="GD", jurisdiction="GD", root_certificate=der(gd.root), policy_mappings=gd.mappings())["status"] == "pending"


# --------------------------------------------------------------------------- an SM2 bridge


@pytest.fixture
def sm2_bridge(tmp_path):
    ca = BridgeCA.init(tmp_path / "sm2-bridge", key_type="sm2", base_url="https://bridge.gd.example")
    yield ca
    ca.close()


def test_an_sm2_bridge_cross_certifies_sm2_and_rsa_members(sm2_bridge, tmp_path):
    ca = sm2_bridge
    fed = federate(ca, {"GD": make_gd(), "HK": make_hk()})
    gd, hk = fed.members["GD"], fed.members["HK"]
    assert signature_oid(ca.certificate) == SM2_WITH_SM3
    assert {code: signature_oid(c) for code, c in fed.crosses.items()} == {"GD": SM2_WITH_SM3, "HK": SM2_WITH_SM3}
    assert signature_oid(fed.reverses["HK"]) == "1.2.840.113549.1.1.11"  # RSA-signed, over the bridge's SM2 key
    for certificate in (ca.certificate, *fed.crosses.values()):
        assert certificate_errors(der(certificate)) == []

    checks = [
        (ca.certificate, gd.leaf, BRIDGE_MEDIUM), (ca.certificate, hk.leaf, BRIDGE_MEDIUM),
        (hk.root, gd.leaf, hk.policy), (gd.root, hk.leaf, gd.policy),
    ]
    for anchor, leaf, policy in checks:
        result = fed.verifier(anchor).verify(der(leaf), policies=[policy], explicit_policy=True)
        assert result.valid, (anchor.subject, leaf.subject, result.to_dict()["error"])
        assert result.to_dict()["policies"] == [policy]

    # Revocation: the SM2-signed CRL cuts HK off; GD stays.
    ca.revoke(fed.crosses["HK"].serial_number, "cessationOfOperation")
    crl = ca.current_crl()
    assert signature_oid(x509.load_der_x509_crl(crl)) == SM2_WITH_SM3
    assert crl_errors(crl) == []
    crls = [crl] + fed.member_crls()
    for anchor, policy in ((ca.certificate, BRIDGE_MEDIUM), (gd.root, gd.policy)):
        verifier = fed.verifier(anchor, crls)
        assert outcome(verifier.verify(der(hk.leaf), policies=[policy], explicit_policy=True)) == (False, "revoked")
    gd_result = fed.verifier(ca.certificate, crls).verify(der(gd.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
    assert outcome(gd_result) == (True, None) and gd_result.to_dict()["revocation"] == "checked"

    # The OCSP responder signs with SM2 too.
    response = ocsp.load_der_ocsp_response(ca.ocsp_response(ocsp_request(ca, fed.crosses["HK"], ca.certificate)))
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.signature_algorithm_oid.dotted_string == SM2_WITH_SM3

    # Reopened from its home, the bridge loads its SM2 key and keeps issuing.
    ca.close()
    with BridgeCA.open(ca.settings.home) as again:
        sz = make_gd("SZ")
        view = again.approve(again.enroll(name="SZ CA", jurisdiction="SZ", root_certificate=der(sz.root),
                                          policy_mappings=sz.mappings())["id"])
        assert signature_oid(x509.load_pem_x509_certificate(view["cross_certificate"].encode())) == SM2_WITH_SM3


# --------------------------------------------------------------------------- a dual-key bridge


@pytest.fixture
def dual(tmp_path):
    ca = BridgeCA.init(tmp_path / "dual-bridge", key_type="ec-p256", second_key_type="sm2", base_url="https://bridge.gd.example")
    ecdsa_cert, sm2_cert = ca.bridge_certificates()
    # Each member certifies the bridge key of its own algorithm family.
    fed = federate(ca, {"GD": make_gd(), "HK": make_hk()},
                   reverse_key=lambda m: sm2_cert if _is_sm2(m.root_key) else ecdsa_cert)
    yield fed, ecdsa_cert, sm2_cert
    ca.close()


def test_dual_key_bridge_issues_both_kinds_and_links_its_keys(dual):
    fed, ecdsa_cert, sm2_cert = dual
    ca = fed.ca
    assert ecdsa_cert == ca.certificate and ecdsa_cert.subject == sm2_cert.subject
    assert (signature_oid(ecdsa_cert), signature_oid(sm2_cert)) == (ECDSA_WITH_SHA256, SM2_WITH_SM3)
    assert {code: signature_oid(c) for code, c in fed.crosses.items()} == {"GD": SM2_WITH_SM3, "HK": ECDSA_WITH_SHA256}
    aki = {code: c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier for code, c in fed.crosses.items()}
    assert aki == {"GD": key_id(raw_spki(sm2_cert)), "HK": key_id(raw_spki(ecdsa_cert))}

    links = ca.link_certificates()
    assert len(links) == 2
    for certificate in (ecdsa_cert, sm2_cert, *links, *fed.crosses.values()):
        assert certificate_errors(der(certificate)) == []
    by_issuer_key = {}
    for link in links:
        assert link.issuer == link.subject == ca.certificate.subject  # self-issued
        assert link.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        policies = link.extensions.get_extension_for_class(x509.CertificatePolicies).value
        assert [p.policy_identifier.dotted_string for p in policies] == ["2.5.29.32.0"]
        by_issuer_key[link.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier] = raw_spki(link)
    assert by_issuer_key == {key_id(raw_spki(ecdsa_cert)): raw_spki(sm2_cert), key_id(raw_spki(sm2_cert)): raw_spki(ecdsa_cert)}
    # Published with the bridge's other certificates.
    from cryptography.hazmat.primitives.serialization import pkcs7

    for bundle in (ca.issued_by_bridge_p7c(), ca.issued_to_bridge_p7c()):
        assert {der(link) for link in links} <= {der(c) for c in pkcs7.load_der_pkcs7_certificates(bundle)}


def test_dual_key_paths_complete_from_either_bridge_key_and_either_member(dual):
    fed, ecdsa_cert, sm2_cert = dual
    gd, hk = fed.members["GD"], fed.members["HK"]
    cases = [
        # anchor, leaf, policy, certificates in the path
        (ecdsa_cert, hk.leaf, BRIDGE_MEDIUM, 4),  # ECDSA key → HK cross: no SM2 on the way
        (sm2_cert, gd.leaf, BRIDGE_MEDIUM, 4),  # SM2 key → GD cross: SM2 all the way
        (ecdsa_cert, gd.leaf, BRIDGE_MEDIUM, 5),  # through the link certificate ECDSA → SM2
        (sm2_cert, hk.leaf, BRIDGE_MEDIUM, 5),  # through the link certificate SM2 → ECDSA
        (hk.root, gd.leaf, hk.policy, 6),  # HK reverse (ECDSA key), link, GD cross (SM2 key)
        (gd.root, hk.leaf, gd.policy, 6),  # GD reverse (SM2 key), link, HK cross (ECDSA key)
    ]
    for anchor, leaf, policy, length in cases:
        result = fed.verifier(anchor).verify(der(leaf), policies=[policy], explicit_policy=True)
        assert result.valid, (anchor.subject, leaf.subject, result.to_dict()["error"])
        assert result.to_dict()["policies"] == [policy]
        assert len(result.path) == length, [c.subject_text for c in result.path]

    # A relying party without SM2 still validates the international member
    # through the ECDSA key; the SM2 member is plainly unsupported for it.
    no_sm2 = fed.verifier(ecdsa_cert, registry=AlgorithmRegistry())
    assert outcome(no_sm2.verify(der(hk.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)) == (True, None)
    assert outcome(no_sm2.verify(der(gd.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)) == (False, "unsupported_algorithm")

    # The link certificates are what join the two halves: without them only
    # the paths that stay with one key's family complete.
    links = {der(c) for c in fed.ca.link_certificates()}
    unlinked = [c for c in fed.untrusted() if c not in links]
    for anchor, leaf, expected in ((ecdsa_cert, hk.leaf, True), (sm2_cert, gd.leaf, True),
                                   (ecdsa_cert, gd.leaf, False), (sm2_cert, hk.leaf, False)):
        result = Verifier(anchors=[der(anchor)], untrusted=unlinked).verify(der(leaf))
        assert result.valid is expected, (anchor.subject, leaf.subject, result.to_dict()["error"])


def test_dual_key_revocation_with_either_keys_crl_and_ocsp(dual):
    fed, ecdsa_cert, sm2_cert = dual
    ca, gd, hk = fed.ca, fed.members["GD"], fed.members["HK"]
    ca.revoke(fed.crosses["GD"].serial_number, "keyCompromise")
    primary, companion = ca.current_crls()
    assert ca.current_crls() == [primary, companion]  # signed once per CRL number
    assert primary == ca.current_crl()
    first, second = x509.load_der_x509_crl(primary), x509.load_der_x509_crl(companion)
    assert (signature_oid(first), signature_oid(second)) == (ECDSA_WITH_SHA256, SM2_WITH_SM3)
    assert first.issuer == second.issuer and first.last_update_utc == second.last_update_utc
    number = [c.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number for c in (first, second)]
    assert number[0] == number[1]
    assert [r.serial_number for r in first] == [r.serial_number for r in second] == [fed.crosses["GD"].serial_number]
    crl_akis = [c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier for c in (first, second)]
    assert crl_akis == [key_id(raw_spki(ecdsa_cert)), key_id(raw_spki(sm2_cert))]
    assert crl_errors(companion) == []

    # Each CRL alone decides both members: the one signed by the cross-certificate's
    # own key directly, the other through the link certificate (RFC 5280 6.3.3 (f)).
    for crls in ([primary], [companion], [primary, companion]):
        for anchor, policy in ((ecdsa_cert, BRIDGE_MEDIUM), (sm2_cert, BRIDGE_MEDIUM), (hk.root, hk.policy)):
            verifier = fed.verifier(anchor, crls + fed.member_crls())
            gd_result = verifier.verify(der(gd.leaf), policies=[policy], explicit_policy=True)
            assert outcome(gd_result) == (False, "revoked"), (len(crls), anchor.subject, gd_result.to_dict()["error"])
        hk_result = fed.verifier(ecdsa_cert, crls + fed.member_crls()).verify(der(hk.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True)
        assert outcome(hk_result) == (True, None) and hk_result.to_dict()["revocation"] == "checked"

    # OCSP: each key answers for what it issued, signing with its own algorithm.
    for code, key_cert, status, algorithm in (("GD", sm2_cert, ocsp.OCSPCertStatus.REVOKED, SM2_WITH_SM3),
                                              ("HK", ecdsa_cert, ocsp.OCSPCertStatus.GOOD, ECDSA_WITH_SHA256)):
        response = ocsp.load_der_ocsp_response(ca.ocsp_response(ocsp_request(ca, fed.crosses[code], key_cert)))
        assert response.certificate_status == status
        assert response.signature_algorithm_oid.dotted_string == algorithm
        assert response.responder_key_hash == key_id(raw_spki(key_cert))
    stranger = ocsp.load_der_ocsp_response(ca.ocsp_response(ocsp_request(ca, fed.crosses["HK"], hk.root)))
    assert stranger.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_dual_key_bridge_reopens_and_checks_its_links(dual):
    fed, ecdsa_cert, sm2_cert = dual
    home = fed.ca.settings.home
    fed.ca.close()
    with BridgeCA.open(home) as again:
        assert again.bridge_certificates() == [ecdsa_cert, sm2_cert]
        sz = make_gd("SZ")
        view = again.approve(again.enroll(name="SZ CA", jurisdiction="SZ", root_certificate=der(sz.root),
                                          policy_mappings=sz.mappings())["id"])
        assert signature_oid(x509.load_pem_x509_certificate(view["cross_certificate"].encode())) == SM2_WITH_SM3
        # A reverse certificate to a key that is not the bridge's is refused.
        stranger = issue(sz.root, sz.root_key, again.certificate.subject, spki_of(_sm2_key()), ca=True)
        with pytest.raises(BridgeError) as refused:
            again.upload_reverse(view["id"], der(stranger))
        assert refused.value.code == "key_mismatch"
    # Without one of its link certificates the bridge does not open.
    links = (home / "bridge-links.pem").read_bytes()
    (home / "bridge-links.pem").write_bytes(links[: links.index(b"-----END CERTIFICATE-----") + 26])
    with pytest.raises(BridgeError) as broken:
        BridgeCA.open(home)
    assert broken.value.code == "profile_violation"


# --------------------------------------------------------------------------- PKCS#11


def test_sm2_keys_are_refused_on_pkcs11_tokens(softhsm_token, tmp_path, monkeypatch):
    """SoftHSM 2.6 offers no SM2 mechanism (nor any vendor mechanism): an SM2
    bridge key cannot live on it, and says so, at init and at load."""
    import pkcs11
    from pkcs11 import Attribute, KeyType

    from bridge.signer import Pkcs11Signer, SignerError

    module, token_label, pin = softhsm_token
    token = pkcs11.lib(module).get_token(token_label=token_label)
    mechanisms = {int(m) for m in token.slot.get_mechanisms()}
    assert int(pkcs11.Mechanism.ECDSA) in mechanisms
    assert not [m for m in mechanisms if m >= 0x80000000]  # CKM_VENDOR_DEFINED and above: none

    monkeypatch.setenv("BRIDGECA_PKCS11_PIN", pin)
    with pytest.raises(BridgeError) as at_init:
        BridgeCA.init(tmp_path / "hsm-sm2", key_type="sm2", signer="pkcs11", pkcs11_module=module, pkcs11_token_label=token_label)
    assert at_init.value.code == "invalid_settings" and "PKCS#11" in at_init.value.message
    with pytest.raises(SignerError, match="SM2"):
        Pkcs11Signer.generate(module, token_label, "sm2-key", pin, "sm2")

    # The token makes EC keys on the SM2 curve, but only ECDSA signatures with them: refused at load.
    session = Pkcs11Signer._open_session(module, token_label, pin, rw=True)
    try:
        parameters = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: bytes.fromhex("06082a811ccf5501822d")}, local=True
        )
        parameters.generate_keypair(store=True, label="ec-on-sm2-curve")
    finally:
        session.close()
    with pytest.raises(SignerError, match="SM2 curve"):
        Pkcs11Signer.load(module, token_label, "ec-on-sm2-curve", pin)


def test_dual_key_bridge_with_its_ecdsa_key_on_a_token(softhsm_token, tmp_path, monkeypatch):
    """What a deployment here can do: the ECDSA key on the token, the SM2 key in software."""
    import uuid

    module, token_label, pin = softhsm_token
    monkeypatch.setenv("BRIDGECA_PKCS11_PIN", pin)  # the SM2 key file still uses BRIDGECA_KEY_PASSPHRASE
    ca = BridgeCA.init(tmp_path / "hsm-dual", signer="pkcs11", pkcs11_module=module, pkcs11_token_label=token_label,
                       pkcs11_key_label=f"dual-{uuid.uuid4().hex[:8]}", second_key_type="sm2")
    try:
        assert not (tmp_path / "hsm-dual" / "bridge-key.p8").exists()
        assert (tmp_path / "hsm-dual" / "bridge-second-key.p8").exists()
        ecdsa_cert, sm2_cert = ca.bridge_certificates()
        fed = federate(ca, {"GD": make_gd(), "HK": make_hk()},
                       reverse_key=lambda m: sm2_cert if _is_sm2(m.root_key) else ecdsa_cert)
        assert {code: signature_oid(c) for code, c in fed.crosses.items()} == {"GD": SM2_WITH_SM3, "HK": ECDSA_WITH_SHA256}
        for anchor, leaf in ((ecdsa_cert, fed.members["GD"].leaf), (fed.members["GD"].root, fed.members["HK"].leaf)):
            policy = BRIDGE_MEDIUM if anchor is ecdsa_cert else fed.members["GD"].policy
            result = fed.verifier(anchor).verify(der(leaf), policies=[policy], explicit_policy=True)
            assert result.valid, result.to_dict()["error"]
    finally:
        ca.close()


# --------------------------------------------------------------------------- the command


def test_bridgeca_init_makes_sm2_and_dual_key_bridges(tmp_path, capsys):
    from api.cli import main

    assert main(["init", "--home", str(tmp_path / "sm2"), "--key-type", "sm2", "--base-url", "https://bridge.gd.example"]) == 0
    assert "key: sm2 (software)" in capsys.readouterr().out
    assert main(["init", "--home", str(tmp_path / "dual"), "--second-key-type", "sm2", "--base-url", "https://bridge.gd.example"]) == 0
    out = capsys.readouterr().out
    assert "key: ec-p256 (software)" in out and "second key: sm2" in out
    with BridgeCA.open(tmp_path / "sm2") as sm2_ca:
        assert [signature_oid(c) for c in sm2_ca.bridge_certificates()] == [SM2_WITH_SM3]
    with BridgeCA.open(tmp_path / "dual") as dual_ca:
        assert [signature_oid(c) for c in dual_ca.bridge_certificates()] == [ECDSA_WITH_SHA256, SM2_WITH_SM3]
        assert len(dual_ca.link_certificates()) == 2
    # Two SM2 keys are not a dual-key bridge; nothing is left behind.
    assert main(["init", "--home", str(tmp_path / "twice"), "--key-type", "sm2", "--second-key-type", "sm2", "--base-url", "https://bridge.gd.example"]) == 2
    assert "one SM2 key and one ECDSA or RSA key" in capsys.readouterr().err
    assert not (tmp_path / "twice" / "config.json").exists()
