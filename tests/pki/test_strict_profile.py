"""The strict profile, trust-anchor constraints and purposes (issue 11):
for each rule a certificate that keeps it (valid) beside its twin that
breaks it (refused with the rule's code), and the twin accepted where the
rule is switched off (profile "rfc5280", anchor_constraints False)."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

import tests.pkibuilder as pb
from pki import Verifier
from pki.cms import verify_raw_signature

AT = pb.AT


@pytest.fixture(scope="module")
def pki():
    anchor = pb.root("Strict Root")
    ca = pb.intermediate(anchor, "Strict Issuing CA", path_length=0)
    return anchor, ca


def verify(pki, leaf_cert, **kw):
    anchor, ca = pki
    leaf_der = leaf_cert if isinstance(leaf_cert, bytes) else pb.der(leaf_cert)
    v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem])
    return v.verify(leaf_der, at=kw.pop("at", AT), **kw)


def code(result) -> str | None:
    d = result.to_dict()
    json.dumps(d)
    return d["error"]["code"] if d["error"] else None


def twins(pki, good, bad, rule: str, index: int = 0, expected_code: str = "malformed_certificate"):
    assert code(verify(pki, good)) is None, verify(pki, good).error
    r = verify(pki, bad)
    assert code(r) == expected_code, r.error
    assert r.error.index == index
    assert rule in r.error.message, r.error.message
    return r


def with_serial(cert: x509.Certificate, issuer: pb.CA, serial: int) -> bytes:
    """The certificate with its serial replaced by any integer (cryptography's
    builder refuses zero, negative and over-long serials), signed again."""
    tbs, sig_alg, _ = pb.split(pb.der(cert))
    fields = pb.split(tbs)
    fields[1] = pb.der_integer(serial)  # [0] version, then serialNumber
    new_tbs = pb.tlv(0x30, b"".join(fields))
    from cryptography.hazmat.primitives.asymmetric import ec

    signature = issuer.key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    return pb.tlv(0x30, new_tbs + sig_alg + pb.tlv(0x03, b"\x00" + signature))


# --- RFC 5280 section 4, the strict profile --------------------------------------


@pytest.mark.parametrize("serial, rule", [(0, "not a positive integer"), (-5, "not a positive integer"),
                                          (1 << 160, "longer than 20 octets")])
def test_serial_numbers(pki, serial, rule):
    anchor, ca = pki
    cert = pb.leaf(ca, "serial leaf")
    good = with_serial(cert, ca, (1 << 158) + 1)  # 20 octets exactly
    bad = with_serial(cert, ca, serial)
    twins(pki, good, bad, rule)
    assert verify(pki, bad, profile="rfc5280").valid  # 6.1 alone never reads the serial


def test_end_entity_without_authority_key_identifier(pki):
    anchor, ca = pki
    twins(pki, pb.leaf(ca, "aki leaf"), pb.leaf(ca, "no aki leaf", aki=None), "authorityKeyIdentifier")
    assert verify(pki, pb.leaf(ca, "no aki leaf", aki=None), profile="rfc5280").valid


def test_critical_authority_key_identifier(pki):
    anchor, ca = pki
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key)
    bad = pb.leaf(ca, "critical aki", aki=None, extra=[(aki, True)])
    twins(pki, pb.leaf(ca, "aki leaf"), bad, "authorityKeyIdentifier extension is marked critical")
    assert verify(pki, bad, profile="rfc5280").valid


def test_critical_subject_key_identifier(pki):
    anchor, ca = pki
    key = pb.new_key()
    bad = pb.leaf(ca, "critical ski", key=key, ski=False,
                  extra=[(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), True)])
    twins(pki, pb.leaf(ca, "ski leaf"), bad, "subjectKeyIdentifier extension is marked critical")


def test_ca_without_subject_key_identifier(pki):
    anchor, _ = pki
    good_ca = pb.intermediate(anchor, "CA with SKI")
    bad_ca = pb.intermediate(anchor, "CA without SKI", ski=False)
    v = Verifier(anchors=[anchor.pem], untrusted=[good_ca.pem, bad_ca.pem])
    assert v.verify(pb.der(pb.leaf(good_ca, "under good", aki="auto")), at=AT).valid
    # A leaf under it names the CA's key by AKI all the same (the builder computes it).
    r = v.verify(pb.der(pb.leaf(bad_ca, "under bad")), at=AT)
    assert code(r) == "malformed_certificate" and r.error.index == 1
    assert "without the subjectKeyIdentifier" in r.error.message
    assert v.verify(pb.der(pb.leaf(bad_ca, "under bad")), at=AT, profile="rfc5280").valid


def test_empty_subject_needs_a_critical_subject_alt_name(pki):
    anchor, ca = pki
    key = pb.new_key()
    san = x509.SubjectAlternativeName([x509.RFC822Name("someone@example.com")])
    good = pb.build(x509.Name([]), key.public_key(), ca.name, ca.key, ca=False, extra=[(san, True)])
    bad = pb.build(x509.Name([]), key.public_key(), ca.name, ca.key, ca=False, extra=[(san, False)])
    twins(pki, good, bad, "subjectAltName extension is not marked critical")
    missing = pb.build(x509.Name([]), key.public_key(), ca.name, ca.key, ca=False)
    assert "no subjectAltName" in verify(pki, missing).error.message
    assert verify(pki, bad, profile="rfc5280").valid


def test_key_cert_sign_in_an_end_entity(pki):
    anchor, ca = pki
    ku = x509.KeyUsage(True, False, False, False, False, True, False, False, False)
    bad = pb.leaf(ca, "ee with keyCertSign", key_usage=None, extra=[(ku, True)])
    twins(pki, pb.leaf(ca, "plain ee"), bad, "keyCertSign in a certificate that is not a CA")
    assert verify(pki, bad, profile="rfc5280").valid


def test_critical_authority_information_access(pki):
    anchor, ca = pki
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier("http://ca.example/ca.cer"))])
    good = pb.leaf(ca, "aia leaf", extra=[(aia, False)])
    bad = pb.leaf(ca, "critical aia leaf", extra=[(aia, True)])
    twins(pki, good, bad, "authorityInfoAccess extension is marked critical")
    assert verify(pki, bad, profile="rfc5280").valid


def test_name_constraints_in_an_end_entity(pki):
    anchor, ca = pki
    bad = pb.leaf(ca, "ee with nc", permitted=[x509.DNSName("example.com")])
    twins(pki, pb.leaf(ca, "plain ee 2"), bad, "nameConstraints extension appears in a certificate that is not a CA")


def test_name_constraints_must_be_critical(pki):
    anchor, _ = pki
    nc = x509.NameConstraints(permitted_subtrees=[x509.DNSName("example.com")], excluded_subtrees=None)
    good_ca = pb.intermediate(anchor, "NC critical", extra=[(nc, True)])
    bad_ca = pb.intermediate(anchor, "NC not critical", extra=[(nc, False)])
    v = Verifier(anchors=[anchor.pem], untrusted=[good_ca.pem, bad_ca.pem])
    assert v.verify(pb.der(pb.leaf(good_ca, "ok", san=[x509.DNSName("a.example.com")])), at=AT).valid
    r = v.verify(pb.der(pb.leaf(bad_ca, "ko", san=[x509.DNSName("a.example.com")])), at=AT)
    assert code(r) == "malformed_certificate" and r.error.index == 1
    assert "not marked critical" in r.error.message


@pytest.mark.parametrize("tag, value, rule", [
    (0x82, "*.example.com", "wildcard"),  # cryptography refuses it when decoding: a defect in every profile
    (0x82, ".example.com", "is not a host name"),
    (0x81, "not an address@@example.com", "neither a mailbox, a host nor a domain"),
])
def test_malformed_name_constraint_entries(pki, tag, value, rule):
    anchor, _ = pki
    good_ca = pb.intermediate(anchor, "good NC", permitted=[x509.DNSName("example.com"), x509.RFC822Name(".example.com")])
    # cryptography's builder refuses these forms: the extension is written by hand.
    nc = pb.tlv(0x30, pb.tlv(0xA0, pb.tlv(0x30, pb.tlv(tag, value.encode()))))
    bad_ca = pb.intermediate(anchor, "bad NC")
    bad_ca_der = pb.resign(pb.der(bad_ca.cert), anchor.key,
                           lambda exts: exts + [pb.raw_extension("2.5.29.30", nc, critical=True)])
    v = Verifier(anchors=[anchor.pem], untrusted=[good_ca.pem, bad_ca_der])
    ok = v.verify(pb.der(pb.leaf(good_ca, "ok", san=[x509.DNSName("a.example.com")])), at=AT)
    assert ok.valid, ok.error
    r = v.verify(pb.der(pb.leaf(bad_ca, "ko", san=[x509.DNSName("a.example.com")])), at=AT)
    assert code(r) == "malformed_certificate" and r.error.index == 1 and rule in r.error.message, r.error


def test_ip_constraint_whose_mask_is_not_a_prefix(pki):
    anchor, _ = pki
    good_ca = pb.intermediate(anchor, "good IP NC", permitted=[x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))])
    # 10.0.0.0 with mask 255.0.255.0: cryptography's builder refuses it, so
    # the extension is written by hand into the CA's certificate.
    subtree = pb.tlv(0x30, pb.tlv(0x87, bytes([10, 0, 0, 0, 255, 0, 255, 0])))
    nc = pb.tlv(0x30, pb.tlv(0xA0, subtree))
    bad_ca = pb.intermediate(anchor, "bad IP NC")
    bad_ca_der = pb.resign(pb.der(bad_ca.cert), anchor.key,
                           lambda exts: exts + [pb.raw_extension("2.5.29.30", nc, critical=True)])
    v = Verifier(anchors=[anchor.pem], untrusted=[good_ca.pem, bad_ca_der])
    ip = [x509.IPAddress(ipaddress.ip_address("10.1.2.3"))]
    ok = v.verify(pb.der(pb.leaf(good_ca, "ok ip", san=ip)), at=AT)
    assert ok.valid, ok.error
    for profile in ("strict", "rfc5280"):  # an extension that cannot be read is unusable in every profile
        r = v.verify(pb.der(pb.leaf(bad_ca, "ko ip", san=ip)), at=AT, profile=profile)
        assert code(r) == "malformed_certificate" and r.error.index == 1, r.error


@pytest.mark.parametrize("name, rule", [
    (x509.DNSName(".example.com"), "not a valid host name"),
    (x509.DNSName("a..example.com"), "not a valid host name"),
    (x509.DNSName("exa mple.com"), "not a valid host name"),
    (x509.RFC822Name._init_without_validation("no-at-sign.example.com"), "not a valid email address"),
    (x509.RFC822Name._init_without_validation("two@@example.com"), "not a valid email address"),
])
def test_malformed_subject_alt_names(pki, name, rule):
    anchor, ca = pki
    good = pb.leaf(ca, "good san", san=[x509.DNSName("*.example.com"), x509.RFC822Name("a.b@example.com")])
    bad = pb.leaf(ca, "bad san", san=[name])
    twins(pki, good, bad, rule)
    assert verify(pki, bad, profile="rfc5280").valid


def _crl_with(issuer: pb.CA, *, number: int | None, critical: bool = False) -> bytes:
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.name)
         .last_update(pb.NOT_BEFORE).next_update(pb.NOT_AFTER)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key), critical=False))
    if number is not None:
        b = b.add_extension(x509.CRLNumber(number), critical=critical)
    return pb.der(b.sign(issuer.key, hashes.SHA256()))


@pytest.mark.parametrize("number, critical, rule", [(None, False, "no cRLNumber"), (7, True, "cRLNumber extension is marked critical")])
def test_crl_number_required_and_non_critical(pki, number, critical, rule):
    anchor, ca = pki
    leaf = pb.der(pb.leaf(ca, "crl leaf"))
    good = Verifier(anchors=[anchor.pem], untrusted=[ca.pem], crls=[_crl_with(anchor, number=1), _crl_with(ca, number=1)])
    r = good.verify(leaf, at=AT)
    assert r.valid and r.revocation == "checked", r.error
    crls = [_crl_with(anchor, number=1), _crl_with(ca, number=number, critical=critical)]
    bad = Verifier(anchors=[anchor.pem], untrusted=[ca.pem], crls=crls)
    r = bad.verify(leaf, at=AT)
    assert code(r) == "revocation_unknown" and r.error.index == 0 and rule in r.error.message
    assert bad.verify(leaf, at=AT, profile="rfc5280").valid


# --- trust-anchor constraints (RFC 5937) --------------------------------------------


def _anchor_case(**root_kw):
    anchor = pb.root("Constrained Root", **root_kw)
    ca = pb.intermediate(anchor, "Under Constrained Root")
    return anchor, ca


def _check_anchor(anchor, ca, leaf, rule, expected="anchor_invalid", at=AT, **kw):
    v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem])
    r = v.verify(pb.der(leaf), at=at, **kw)
    assert code(r) == expected, r.error
    assert r.error.index == (2 if expected == "anchor_invalid" else r.error.index)
    assert rule in r.error.message, r.error.message
    relaxed = v.verify(pb.der(leaf), at=at, anchor_constraints=False, **kw)
    assert relaxed.valid, relaxed.error
    return r


def test_anchor_validity():
    anchor, ca = _anchor_case(not_after=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    leaf = pb.leaf(ca, "leaf under expired root")
    assert Verifier(anchors=[anchor.pem], untrusted=[ca.pem]).verify(pb.der(leaf), at="2024-06-01T00:00:00Z").valid
    _check_anchor(anchor, ca, leaf, "the trust anchor expired")
    anchor, ca = _anchor_case(not_before=dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc))
    _check_anchor(anchor, ca, pb.leaf(ca, "early"), "the trust anchor is not valid before")


@pytest.mark.parametrize("root_kw, rule", [
    ({"ca": None}, "basicConstraints is absent"),
    ({"ca": False, "key_usage": None}, "says it is not a CA"),
    ({"key_usage": "ee"}, "does not allow certificate signing"),
])
def test_anchor_must_be_a_ca(root_kw, rule):
    anchor, ca = _anchor_case(**root_kw)
    _check_anchor(anchor, ca, pb.leaf(ca, "leaf"), rule)


def test_anchor_basic_constraints_must_be_critical():
    anchor = pb.root("NC-less root", ca=None, extra=[(x509.BasicConstraints(ca=True, path_length=None), False)])
    ca = pb.intermediate(anchor, "Under It")
    _check_anchor(anchor, ca, pb.leaf(ca, "leaf"), "basicConstraints extension is not marked critical")


def test_anchor_unknown_critical_extension():
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.77"), b"\x05\x00")
    anchor, ca = _anchor_case(extra=[(unknown, True)])
    _check_anchor(anchor, ca, pb.leaf(ca, "leaf"), "unrecognised critical extension 1.3.6.1.4.1.99999.77")


def test_anchor_name_constraints_apply_to_the_path():
    anchor, ca = _anchor_case(permitted=[x509.DirectoryName(pb.name("x", c="CN"))] and
                              [x509.DNSName("gd.example")])
    good = pb.leaf(ca, "in", san=[x509.DNSName("www.gd.example")])
    assert Verifier(anchors=[anchor.pem], untrusted=[ca.pem]).verify(pb.der(good), at=AT).valid
    bad = pb.leaf(ca, "out", san=[x509.DNSName("www.hk.example")])
    r = _check_anchor(anchor, ca, bad, "www.hk.example", expected="name_constraints")
    assert r.error.index == 0


def test_anchor_policy_constraints_apply_to_the_path():
    # requireExplicitPolicy 0 in the anchor: every certificate below must carry an acceptable policy.
    anchor, ca = _anchor_case(require_explicit_policy=0)
    with_policy = pb.intermediate(anchor, "With Policy", policies=["1.3.6.1.4.1.99999.5"])
    v = Verifier(anchors=[anchor.pem], untrusted=[with_policy.pem, ca.pem])
    assert v.verify(pb.der(pb.leaf(with_policy, "ok", policies=["1.3.6.1.4.1.99999.5"])), at=AT).valid
    # The intermediate below the anchor carries anyPolicy only; the leaf none.
    _check_anchor(anchor, ca, pb.leaf(ca, "no policy"), "explicit policy", expected="policy_required")


def test_anchor_path_length_applies_to_the_path():
    anchor, ca = _anchor_case(path_length=0)
    _check_anchor(anchor, ca, pb.leaf(ca, "too deep"), "path length", expected="path_length_exceeded")


def test_the_anchor_as_target_is_answered():
    anchor = pb.root("Target Root")
    v = Verifier(anchors=[anchor.pem])
    r = v.verify(anchor.der, at=AT)
    assert r.valid and len(r.path) == 1 and r.to_dict()["path"][0]["revocation"] == "not_checked"
    assert r.to_dict()["revocation"] == "not_checked"
    # Twice: the second answer may come from the result cache.
    assert v.verify(anchor.der, at=AT).valid
    r = v.verify(anchor.der, at="2040-01-01T00:00:00Z")
    assert code(r) == "anchor_invalid" and r.error.index == 0
    assert v.verify(anchor.der, at="2040-01-01T00:00:00Z", anchor_constraints=False).valid
    # An end-entity certificate trusted directly need not be a CA.
    ee = pb.build(pb.name("Trusted EE"), (k := pb.new_key()).public_key(), pb.name("Trusted EE"), k, ca=False)
    assert Verifier(anchors=[pb.der(ee)]).verify(pb.der(ee), at=AT).valid


# --- purposes -----------------------------------------------------------------------


def test_key_usage_purpose(pki):
    anchor, ca = pki
    signing = pb.leaf(ca, "signing leaf")  # digitalSignature only
    assert verify(pki, signing, key_usage=["digitalSignature"]).valid
    r = verify(pki, signing, key_usage=["digitalSignature", "keyEncipherment"])
    assert code(r) == "purpose" and r.error.index == 0 and "keyEncipherment" in r.error.message
    # Without keyUsage the key is unrestricted (RFC 5280 4.2.1.3).
    assert verify(pki, pb.leaf(ca, "no ku", key_usage=None), key_usage=["keyEncipherment"]).valid


def _eku(*oids):
    return x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) if isinstance(o, str) else o for o in oids])


def test_extended_key_usage_purpose(pki):
    anchor, ca = pki
    email = pb.leaf(ca, "email leaf", extra=[(_eku(ExtendedKeyUsageOID.EMAIL_PROTECTION), False)])
    assert verify(pki, email, extended_key_usage=["emailProtection"]).valid
    assert verify(pki, email, extended_key_usage=["1.3.6.1.5.5.7.3.4"]).valid
    r = verify(pki, email, extended_key_usage=["codeSigning"])
    assert code(r) == "purpose" and r.error.index == 0 and "codeSigning" in r.error.message
    assert verify(pki, email, extended_key_usage=["codeSigning", "emailProtection"]).valid
    anything = pb.leaf(ca, "any eku", extra=[(_eku(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE), False)])
    assert verify(pki, anything, extended_key_usage=["codeSigning"]).valid
    assert verify(pki, pb.leaf(ca, "no eku"), extended_key_usage=["codeSigning"]).valid


def test_extended_key_usage_in_a_ca_constrains_the_leaf():
    anchor = pb.root("EKU Root")
    ca = pb.intermediate(anchor, "Email-only CA", extra=[(_eku(ExtendedKeyUsageOID.EMAIL_PROTECTION), False)])
    v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem])
    leaf = pb.der(pb.leaf(ca, "leaf without eku"))
    assert v.verify(leaf, at=AT, extended_key_usage=["emailProtection"]).valid
    r = v.verify(leaf, at=AT, extended_key_usage=["codeSigning"])
    assert code(r) == "purpose" and r.error.index == 1
    # The same purpose all along the path: the CA allows email, the leaf code signing only.
    code_leaf = pb.der(pb.leaf(ca, "code leaf", extra=[(_eku(ExtendedKeyUsageOID.CODE_SIGNING), False)]))
    r = v.verify(code_leaf, at=AT, extended_key_usage=["codeSigning", "emailProtection"])
    assert code(r) == "purpose" and r.error.index == 1


def test_max_chain_depth(pki):
    anchor, ca = pki
    leaf = pb.leaf(ca, "depth leaf")
    assert verify(pki, leaf, max_chain_depth=1).valid
    r = verify(pki, leaf, max_chain_depth=0)
    assert code(r) == "path_length_exceeded" and r.error.index == 1 and "max_chain_depth" in r.error.message


@pytest.mark.parametrize("kw", [{"profile": "lenient"}, {"key_usage": ["signEverything"]},
                                {"extended_key_usage": ["not an oid"]}, {"max_chain_depth": -1},
                                {"max_chain_depth": "3"}, {"anchor_constraints": "yes"}, {"key_usage": "digitalSignature"}])
def test_bad_options_are_input_errors(pki, kw):
    from pki.errors import InputError

    anchor, ca = pki
    with pytest.raises(InputError):
        verify(pki, pb.leaf(ca, "x"), **kw)


def test_signature_purpose_by_default(pki):
    anchor, ca = pki
    key = pb.new_key()
    from cryptography.hazmat.primitives.asymmetric import ec

    ku = x509.KeyUsage(False, False, True, False, False, False, False, False, False)  # keyEncipherment only
    enc_only = pb.leaf(ca, "encryption leaf", key=key, key_usage=None, extra=[(ku, True)])
    signer = pb.leaf(ca, "signing leaf 2", key=key)
    sig = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem])
    assert verify_raw_signature(pb.der(signer), sig, b"data", v, at=AT).valid
    r = verify_raw_signature(pb.der(enc_only), sig, b"data", v, at=AT)
    assert not r.valid and r.error.code == "purpose"


# --- time granularity and labels ----------------------------------------------------


def test_fractional_seconds_just_after_not_after(pki):
    anchor, ca = pki
    end = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    leaf = pb.leaf(ca, "ends 2026", not_after=end)
    assert verify(pki, leaf, at="2026-01-01T00:00:00.005Z").valid
    assert code(verify(pki, leaf, at="2026-01-01T00:00:01Z")) == "expired"


def test_invalid_results_label_revocation_as_the_contract_says(pki):
    anchor, ca = pki
    leaf = pb.leaf(ca, "revoked leaf")
    crls = [pb.der(pb.crl(anchor)), pb.der(pb.crl(ca, [leaf]))]
    v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem], crls=crls)
    d = v.verify(pb.der(leaf), at=AT).to_dict()
    assert d["error"]["code"] == "revoked"
    assert [e["revocation"] for e in d["path"]] == ["revoked", "good", "not_checked"]
    assert d["revocation"] == "checked"
    # Failing before the leaf's status was asked: the leaf has none, so not "checked".
    other = pb.leaf(ca, "bad time leaf", not_after=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    d = v.verify(pb.der(other), at=AT).to_dict()
    assert d["error"]["code"] == "expired"
    assert [e["revocation"] for e in d["path"]] == ["not_checked", "good", "not_checked"]
    assert d["revocation"] == "partial"
    # Without revocation checking every entry still says so.
    d = Verifier(anchors=[anchor.pem], untrusted=[ca.pem]).verify(pb.der(other), at=AT).to_dict()
    assert d["revocation"] == "not_checked" and all(e["revocation"] == "not_checked" for e in d["path"])


def test_subject_key_identifier_critical_in_name_only(pki):
    # A sanity twin for the parse cache: criticality is read the same from
    # a warm Verifier's caches as from a cold parse.
    anchor, ca = pki
    v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem])
    for i in range(3):
        assert v.verify(pb.der(pb.leaf(ca, f"warm {i}")), at=AT).valid
    key = pb.new_key()
    bad = pb.leaf(ca, "critical ski warm", key=key, ski=False,
                  extra=[(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), True)])
    assert code(v.verify(pb.der(bad), at=AT)) == "malformed_certificate"
    assert NameOID.COMMON_NAME  # the builder's names carry a CN


# --- the blocklist and suspension (pki side of the federation's blacklist) -----------


def test_blocklist_refuses_a_path_that_touches_an_entry(pki):
    import hashlib

    from pki.blocklist import Blocklist

    anchor, ca = pki
    leaf = pb.leaf(ca, "listed leaf", extra=[])
    other = pb.leaf(ca, "other leaf")
    spki = hashlib.sha256(ca.cert.public_key().public_bytes(
        pb.serialization.Encoding.DER, pb.serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    cases = {
        "certificate": (("certificate_sha256", hashlib.sha256(pb.der(leaf)).hexdigest(), "E1", "fraud"), 0),
        "issuer+serial": (("issuer_serial", (ca.name.rfc4514_string(), leaf.serial_number), "E2", None), 0),
        "CA key": (("spki_sha256", spki, "E3", "keyCompromise"), 1),
        "subject": (("subject_identity", ("2.5.4.3", "LISTED LEAF"), "E4", None), 0),
        "anchor": (("certificate_sha256", hashlib.sha256(anchor.der).hexdigest(), "E5", None), 2),
    }
    for what, (entry, index) in cases.items():
        v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem], blocklist=Blocklist([entry]))
        r = v.verify(pb.der(leaf), at=AT)
        d = r.to_dict()
        assert d["error"]["code"] == "blacklisted", (what, d["error"])
        assert d["error"]["certificate"] == index and d["error"]["blacklist_entry"] == entry[2], what
        # A certificate the entry does not name passes (unless the entry is on its path).
        assert v.verify(pb.der(other), at=AT).valid is (index == 0), what
    assert Verifier(anchors=[anchor.pem], untrusted=[ca.pem], blocklist=Blocklist()).verify(pb.der(leaf), at=AT).valid


def test_a_certificate_on_hold_is_suspended(pki):
    anchor, ca = pki
    leaf = pb.leaf(ca, "held leaf")
    hold = (x509.CertificateRevocationListBuilder().issuer_name(ca.name)
            .last_update(pb.NOT_BEFORE).next_update(pb.NOT_AFTER)
            .add_extension(x509.CRLNumber(2), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key), critical=False)
            .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(leaf.serial_number)
                                     .revocation_date(pb.NOT_BEFORE + dt.timedelta(days=2))
                                     .add_extension(x509.CRLReason(x509.ReasonFlags.certificate_hold), critical=False)
                                     .build())
            .sign(ca.key, hashes.SHA256()))
    v = Verifier(anchors=[anchor.pem], untrusted=[ca.pem], crls=[pb.der(pb.crl(anchor)), pb.der(hold)])
    r = v.verify(pb.der(leaf), at=AT)
    assert code(r) == "suspended" and r.error.index == 0 and "certificateHold" in r.error.message
    lifted = Verifier(anchors=[anchor.pem], untrusted=[ca.pem], crls=[pb.der(pb.crl(anchor)), pb.der(pb.crl(ca))])
    assert lifted.verify(pb.der(leaf), at=AT).valid


def test_anchor_certificate_policies_are_not_intersected_with_the_users_set():
    # RFC 5937 3.1 would narrow the user-initial-policy-set to the anchor's
    # certificatePolicies; bridgeca does not (ARCHITECTURE.md): the platform
    # names the policies it accepts in the anchor's domain.
    p1, p2 = "1.3.6.1.4.1.99999.71", "1.3.6.1.4.1.99999.72"
    anchor = pb.root("Policy Root", policies=[p1])
    ca = pb.intermediate(anchor, "Policy CA", policies=[p2])
    leaf = pb.leaf(ca, "policy leaf", policies=[p2])
    r = Verifier(anchors=[anchor.pem], untrusted=[ca.pem]).verify(pb.der(leaf), at=AT, policies=[p2], explicit_policy=True)
    assert r.valid and r.policies == frozenset({p2}), r.error
