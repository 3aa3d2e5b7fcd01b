"""Signature verification (pki/cms.py): CMS SignedData made by cryptography's
PKCS7 builder, by the system ``openssl cms -sign`` and by hand (asn1crypto),
and raw ECDSA / RSA / Ed25519 signatures, over a real small PKI
(anchor -> CA -> signer leaves). Certificate validity periods are fixed and
wide; tests that depend on time pass ``at`` or a fixed signing-time."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from pki import InputError, Verifier
from pki import cms as C
from pki.cms import SignatureResult, verify_cms, verify_raw_signature

UTC = dt.timezone.utc
LONG_FROM = dt.datetime(2020, 1, 1, tzinfo=UTC)
LONG_TO = dt.datetime(2045, 1, 1, tzinfo=UTC)
AT = dt.datetime(2025, 6, 1, tzinfo=UTC)
DATA = b"Contract no. 42\x00\xff binary \r\n payload\n"

_serial = iter(range(0x5000, 0x6000))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CMS Test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ku(sign=True, nonrep=False, cert_sign=False, encipher=False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign, content_commitment=nonrep, key_encipherment=encipher, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def make_cert(subject, key, issuer_name, issuer_key, *, ca=False, ku=None, serial=None,
              not_before=LONG_FROM, not_after=LONG_TO, ski=True) -> x509.Certificate:
    pub = key.public_key()
    b = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer_name).public_key(pub)
        .serial_number(serial if serial is not None else next(_serial))
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(ku if ku is not None else (_ku(cert_sign=True) if ca else _ku()), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ski:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class Pki:
    anchor: x509.Certificate
    anchor_key: object
    ca: x509.Certificate
    ca_key: object
    ec_leaf: x509.Certificate
    ec_key: object
    rsa_leaf: x509.Certificate
    rsa_key: object
    ed_leaf: x509.Certificate
    ed_key: object
    verifier: Verifier

    def leaf(self, cn, key=None, **kw):
        key = key or ec.generate_private_key(ec.SECP256R1())
        return make_cert(_name(cn), key, self.ca.subject, self.ca_key, **kw), key


@pytest.fixture(scope="module")
def p() -> Pki:
    anchor_key = ec.generate_private_key(ec.SECP256R1())
    anchor = make_cert(_name("CMS Test Root"), anchor_key, _name("CMS Test Root"), anchor_key, ca=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_cert(_name("CMS Test Issuing CA"), ca_key, anchor.subject, anchor_key, ca=True)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_leaf = make_cert(_name("EC signer"), ec_key, ca.subject, ca_key)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_leaf = make_cert(_name("RSA signer"), rsa_key, ca.subject, ca_key, ku=_ku(sign=False, nonrep=True))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_leaf = make_cert(_name("Ed25519 signer"), ed_key, ca.subject, ca_key)
    return Pki(anchor, anchor_key, ca, ca_key, ec_leaf, ec_key, rsa_leaf, rsa_key, ed_leaf, ed_key,
               Verifier(anchors=[pem(anchor)]))


def builder_cms(data, cert, key, *, extra=(), options=(), hash_alg=None, rsa_padding=None) -> bytes:
    b = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(
        cert, key, hash_alg or hashes.SHA256(), rsa_padding=rsa_padding
    )
    for c in extra:
        b = b.add_certificate(c)
    return b.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, *options])


def hand_cms(data, cert, key, *, attrs=("content_type", "message_digest", "signing_time"),
             signing_time=AT, content_type_attr="data", detached=False, extra=(), sid="issuer_serial") -> bytes:
    """SignedData built field by field with asn1crypto, signed with
    ECDSA-SHA256, or Ed25519 with a SHA-512 message digest (RFC 8419)."""
    acert = asn1_x509.Certificate.load(der(cert))
    hash_function = hashlib.sha512 if isinstance(key, ed25519.Ed25519PrivateKey) else hashlib.sha256

    def digest(d: bytes) -> bytes:
        return hash_function(d).digest()

    values = {
        "content_type": lambda: {"type": "content_type", "values": [content_type_attr]},
        "message_digest": lambda: {"type": "message_digest", "values": [digest(data)]},
        "signing_time": lambda: {"type": "signing_time", "values": [asn1_cms.Time({"utc_time": signing_time})]},
    }
    signed_attrs = asn1_cms.CMSAttributes([values[a]() for a in attrs])
    if isinstance(key, ed25519.Ed25519PrivateKey):  # RFC 8419: SHA-512 digest, pure Ed25519
        digest_name, sig_name = "sha512", "ed25519"
        signature = key.sign(signed_attrs.dump())  # the SET OF encoding
    else:
        digest_name, sig_name = "sha256", "sha256_ecdsa"
        signature = key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    if sid == "issuer_serial":
        identifier = asn1_cms.SignerIdentifier({"issuer_and_serial_number": {
            "issuer": acert.issuer, "serial_number": acert.serial_number}})
    else:
        identifier = asn1_cms.SignerIdentifier({"subject_key_identifier": acert.key_identifier or acert.public_key.sha1})
    signer_info = asn1_cms.SignerInfo({
        "version": "v1" if sid == "issuer_serial" else "v3",
        "sid": identifier,
        "digest_algorithm": {"algorithm": digest_name},
        "signed_attrs": signed_attrs,
        "signature_algorithm": {"algorithm": sig_name},
        "signature": signature,
    })
    encap = {"content_type": "data"}
    if not detached:
        encap["content"] = data
    signed = asn1_cms.SignedData({
        "version": "v1",
        "digest_algorithms": [{"algorithm": digest_name}],
        "encap_content_info": encap,
        "certificates": [acert] + [asn1_x509.Certificate.load(der(c)) for c in extra],
        "signer_infos": [signer_info],
    })
    return asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def rebuild(cms_der: bytes, *, certificates=None, content=None) -> bytes:
    """The same SignerInfos (byte for byte) in a SignedData with other
    certificates or other encapsulated content."""
    info = asn1_cms.ContentInfo.load(cms_der)
    signed = info["content"]
    certs = signed["certificates"]
    if certificates is not None:
        certs = [asn1_x509.Certificate.load(der(c)) for c in certificates]
    encap = signed["encap_content_info"]
    if content is not None:
        encap = {"content_type": "data", "content": content}
    new = asn1_cms.SignedData({
        "version": signed["version"],
        "digest_algorithms": signed["digest_algorithms"],
        "encap_content_info": encap,
        "certificates": certs,
        "signer_infos": signed["signer_infos"],
    })
    return asn1_cms.ContentInfo({"content_type": "signed_data", "content": new}).dump()


def assert_valid(r: SignatureResult, cert: x509.Certificate):
    assert r.error is None, r.error
    assert r.valid is True
    assert r.chain is not None and r.chain.valid
    assert r.signer["sha256"] == hashlib.sha256(der(cert)).hexdigest()
    assert r.chain.path[0].sha256.hex() == r.signer["sha256"]
    assert len(r.chain.path) == 3


def assert_code(r: SignatureResult, code: str):
    assert r.valid is False
    assert r.error is not None and r.error.code == code, r.error
    assert r.to_dict()["error"]["code"] == code


# --- CMS from cryptography's PKCS7 builder -----------------------------------------


@pytest.mark.parametrize("which", ["ec", "rsa"])
@pytest.mark.parametrize("options", [(), (pkcs7.PKCS7Options.NoAttributes,)], ids=["attrs", "noattrs"])
def test_builder_attached(p, which, options):
    cert, key = (p.ec_leaf, p.ec_key) if which == "ec" else (p.rsa_leaf, p.rsa_key)
    blob = builder_cms(DATA, cert, key, extra=[p.ca], options=options)
    r = verify_cms(blob, p.verifier)
    assert_valid(r, cert)
    assert r.content_type == C.ID_DATA
    if options:
        assert r.signing_time is None
    else:
        assert isinstance(r.signing_time, dt.datetime) and r.signing_time.tzinfo is not None


@pytest.mark.parametrize("which", ["ec", "rsa"])
@pytest.mark.parametrize("options", [(), (pkcs7.PKCS7Options.NoAttributes,)], ids=["attrs", "noattrs"])
def test_builder_detached(p, which, options):
    cert, key = (p.ec_leaf, p.ec_key) if which == "ec" else (p.rsa_leaf, p.rsa_key)
    blob = builder_cms(DATA, cert, key, extra=[p.ca], options=(pkcs7.PKCS7Options.DetachedSignature, *options))
    assert_valid(verify_cms(blob, p.verifier, content=DATA), cert)
    tampered = verify_cms(blob, p.verifier, content=DATA + b"!")
    assert_code(tampered, "signature_invalid" if options else "content_mismatch")
    assert tampered.chain is None


def test_builder_rsa_pss_and_sha384(p):
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    blob = builder_cms(DATA, p.rsa_leaf, p.rsa_key, extra=[p.ca], rsa_padding=pss)
    r = verify_cms(blob, p.verifier)
    assert_valid(r, p.rsa_leaf)
    assert r.algorithm == "RSASSA-PSS"
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], hash_alg=hashes.SHA384())
    r = verify_cms(blob, p.verifier)
    assert_valid(r, p.ec_leaf)
    assert r.algorithm == "ecdsa-with-SHA384"


def test_builder_attached_tampered_content(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    assert verify_cms(rebuild(blob), p.verifier).valid  # the rebuild itself keeps it valid
    r = verify_cms(rebuild(blob, content=DATA.replace(b"42", b"43")), p.verifier)
    assert_code(r, "content_mismatch")
    assert r.signer["subject"] == p.ec_leaf.subject.rfc4514_string()


def test_attached_and_matching_content_given(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    assert verify_cms(blob, p.verifier, content=DATA).valid
    with pytest.raises(InputError):
        verify_cms(blob, p.verifier, content=b"other")


def test_intermediate_passed_outside_the_message(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key)  # the CA certificate is not in the message
    alone = verify_cms(blob, p.verifier)
    assert alone.valid is False and alone.chain is not None and not alone.chain.valid
    assert alone.error == alone.chain.error
    assert_valid(verify_cms(blob, p.verifier, intermediates=[pem(p.ca)]), p.ec_leaf)


def test_signer_certificate_found_among_intermediates(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, options=(pkcs7.PKCS7Options.NoCerts,))
    assert_code(verify_cms(blob, p.verifier), "signer_not_found")
    assert_valid(verify_cms(blob, p.verifier, intermediates=[der(p.ec_leaf), der(p.ca)]), p.ec_leaf)


def test_untrusted_chain_reports_chain_error(p):
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_root = make_cert(_name("Other Root"), other_key, _name("Other Root"), other_key, ca=True)
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    r = verify_cms(blob, Verifier(anchors=[pem(other_root)]))
    assert r.valid is False
    assert r.chain is not None and r.chain.valid is False
    assert r.error is r.chain.error and r.error.code == r.chain.to_dict()["error"]["code"]
    assert r.to_dict()["chain"]["valid"] is False


def test_chain_options_are_passed_through(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    # No certificate asserts this policy: with explicit policy the chain fails.
    r = verify_cms(blob, p.verifier, policies=["1.3.6.1.4.1.99999.7"], explicit_policy=True)
    assert r.valid is False and r.chain is not None and r.error.code == "policy_required"
    with pytest.raises(TypeError):
        verify_cms(blob, p.verifier, polices=["1.2.3"])


def test_key_usage_without_signing_bits(p):
    cert, key = p.leaf("Encryption only", ku=_ku(sign=False, encipher=True))
    blob = builder_cms(DATA, cert, key, extra=[p.ca])
    r = verify_cms(blob, p.verifier)
    assert_code(r, "purpose")
    assert r.chain is not None and r.chain.valid  # the chain itself is fine
    assert r.error.index == 0


def test_non_repudiation_alone_suffices(p):
    # The RSA leaf has keyUsage nonRepudiation without digitalSignature.
    blob = builder_cms(DATA, p.rsa_leaf, p.rsa_key, extra=[p.ca])
    assert_valid(verify_cms(blob, p.verifier), p.rsa_leaf)


# --- wrong signer ------------------------------------------------------------------


def test_wrong_signer_certificate_swapped_in(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    other, _ = p.leaf("Someone else")
    r = verify_cms(rebuild(blob, certificates=[other, p.ca]), p.verifier)
    assert_code(r, "signer_not_found")
    assert r.signer["serial"] == format(p.ec_leaf.serial_number, "x")


def test_wrong_signer_same_issuer_and_serial_other_key(p):
    # A certificate with the signer's issuer and serial but another key: the
    # signer identifier matches, the signature does not.
    impostor, _ = p.leaf("EC signer", serial=p.ec_leaf.serial_number)
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    r = verify_cms(rebuild(blob, certificates=[impostor, p.ca]), p.verifier)
    assert_code(r, "signature_invalid")
    assert r.signer["sha256"] == hashlib.sha256(der(impostor)).hexdigest()
    # With both certificates present, the one whose key verifies is the signer.
    both = verify_cms(rebuild(blob, certificates=[impostor, p.ec_leaf, p.ca]), p.verifier)
    assert_valid(both, p.ec_leaf)


# --- hand-made SignedData ----------------------------------------------------------


def test_hand_made_reference_is_valid(p):
    r = verify_cms(hand_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca]), p.verifier)
    assert_valid(r, p.ec_leaf)
    assert r.signing_time == AT


def test_ed25519_cms(p):
    blob = hand_cms(DATA, p.ed_leaf, p.ed_key, extra=[p.ca], detached=True)
    r = verify_cms(blob, p.verifier, content=DATA)
    assert_valid(r, p.ed_leaf)
    assert r.algorithm == "Ed25519"
    assert_code(verify_cms(blob, p.verifier, content=DATA + b"."), "content_mismatch")


def test_subject_key_identifier_signer(p):
    blob = hand_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], sid="ski")
    assert_valid(verify_cms(blob, p.verifier), p.ec_leaf)


def test_subject_key_identifier_without_extension(p):
    cert, key = p.leaf("No SKI", ski=False)
    blob = hand_cms(DATA, cert, key, extra=[p.ca], sid="ski")  # asn1crypto: SHA-1 of the key bits
    assert_valid(verify_cms(blob, p.verifier), cert)


def test_missing_message_digest(p):
    blob = hand_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], attrs=("content_type", "signing_time"))
    r = verify_cms(blob, p.verifier)
    assert_code(r, "missing_message_digest")
    assert r.chain is None


def test_missing_content_type_and_mismatch(p):
    r = verify_cms(hand_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], attrs=("message_digest",)), p.verifier)
    assert_code(r, "missing_content_type")
    r = verify_cms(hand_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], content_type_attr="signed_data"), p.verifier)
    assert_code(r, "content_type_mismatch")


def test_hand_made_detached_tampered(p):
    blob = hand_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], detached=True)
    assert_valid(verify_cms(blob, p.verifier, content=DATA), p.ec_leaf)
    assert_code(verify_cms(blob, p.verifier, content=DATA[:-1]), "content_mismatch")


def test_signing_time_validation(p):
    key = ec.generate_private_key(ec.SECP256R1())
    expired = make_cert(_name("Signed in 2020"), key, p.ca.subject, p.ca_key,
                        not_before=dt.datetime(2020, 1, 1, tzinfo=UTC), not_after=dt.datetime(2021, 1, 1, tzinfo=UTC))
    signed_at = dt.datetime(2020, 6, 1, 12, 0, tzinfo=UTC)
    blob = hand_cms(DATA, expired, key, extra=[p.ca], signing_time=signed_at)
    then = verify_cms(blob, p.verifier, at="signing-time")
    assert_valid(then, expired)
    assert then.signing_time == signed_at
    assert then.to_dict()["signing_time"] == "2020-06-01T12:00:00Z"
    now = verify_cms(blob, p.verifier)
    assert_code(now, "expired")
    assert now.chain is not None and now.error.index == 0
    assert verify_cms(blob, p.verifier, at="2020-07-01T00:00:00Z").valid
    assert_code(verify_cms(blob, p.verifier, at=dt.datetime(2021, 6, 1, tzinfo=UTC)), "expired")


def test_signing_time_asked_but_absent(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], options=(pkcs7.PKCS7Options.NoAttributes,))
    r = verify_cms(blob, p.verifier, at="signing-time")
    assert_code(r, "missing_signing_time")
    assert r.signer["sha256"] == hashlib.sha256(der(p.ec_leaf)).hexdigest()


# --- malformed input -----------------------------------------------------------------


def test_garbage_cms_raises_input_error(p):
    good = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    for bad in (b"definitely not CMS", b"\x30\x03\x02\x01\x01", good[: len(good) // 2], b""):
        with pytest.raises(InputError) as info:
            verify_cms(bad, p.verifier)
        assert info.value.code == "malformed_cms"
    with pytest.raises(InputError):
        verify_cms("***not base64***", p.verifier)
    data_only = asn1_cms.ContentInfo({"content_type": "data", "content": b"x"}).dump()
    with pytest.raises(InputError, match="not SignedData"):
        verify_cms(data_only, p.verifier)


def test_detached_without_content_is_input_error(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], options=(pkcs7.PKCS7Options.DetachedSignature,))
    with pytest.raises(InputError, match="detached"):
        verify_cms(blob, p.verifier)


def test_base64_and_pem_input(p):
    blob = builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca])
    assert verify_cms(base64.b64encode(blob).decode(), p.verifier).valid
    armoured = b"-----BEGIN CMS-----\n" + base64.encodebytes(blob) + b"-----END CMS-----\n"
    assert verify_cms(armoured, p.verifier).valid
    assert C.decode_base64(" " + base64.b64encode(b"abc").decode() + "\n") == b"abc"
    with pytest.raises(InputError):
        C.decode_base64("ab$c")


def test_certs_only_bundle_has_no_signer(p):
    bundle = pkcs7.serialize_certificates([p.ca, p.ec_leaf], serialization.Encoding.DER)
    with pytest.raises(InputError):  # no encapsulated content and none given
        verify_cms(bundle, p.verifier)
    assert_code(verify_cms(bundle, p.verifier, content=b""), "signer_not_found")


def test_to_dict_shape(p):
    r = verify_cms(builder_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca]), p.verifier)
    d = json.loads(json.dumps(r.to_dict()))
    assert set(d) >= {"valid", "signer", "signing_time", "chain", "error"}
    assert d["valid"] is True and d["error"] is None
    assert set(d["signer"]) == {"subject", "issuer", "serial", "sha256"}
    assert d["signing_time"].endswith("Z")
    assert d["chain"]["valid"] is True and d["chain"]["path"][0]["sha256"] == d["signer"]["sha256"]
    assert d["algorithm"] == "ecdsa-with-SHA256"


def test_sm2_pair_maps_to_sm2_with_sm3():
    ec_spki_alg = C.algorithm_identifier("1.2.840.10045.2.1")
    assert C.signature_algorithm_for(ec_spki_alg, C.SM3) == C.algorithm_identifier("1.2.156.10197.1.501")
    sm2 = C.algorithm_identifier("1.2.156.10197.1.501")
    assert C.signature_algorithm_for(sm2, C.SM3) == sm2
    rsa_alg = C.algorithm_identifier("1.2.840.113549.1.1.1")
    assert C.signature_algorithm_for(rsa_alg, C.SHA256) == bytes.fromhex("300d06092a864886f70d01010b0500")
    assert C.raw_signature_algorithm("SM2-with-SM3") == sm2


# --- CMS from the system openssl --------------------------------------------------------

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")


def openssl_sign(tmp_path, data, cert, key, *extra_args, ca=None) -> bytes:
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "cert.pem").write_bytes(pem(cert))
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    cmd = [OPENSSL, "cms", "-sign", "-binary", "-in", str(tmp_path / "data"), "-signer", str(tmp_path / "cert.pem"),
           "-inkey", str(tmp_path / "key.pem"), "-outform", "DER", "-out", str(tmp_path / "out.der"), *extra_args]
    if ca is not None:
        (tmp_path / "ca.pem").write_bytes(pem(ca))
        cmd += ["-certfile", str(tmp_path / "ca.pem")]
    subprocess.run(cmd, check=True, capture_output=True)
    return (tmp_path / "out.der").read_bytes()


@needs_openssl
@pytest.mark.parametrize("which", ["ec", "rsa"])
@pytest.mark.parametrize("attached", [True, False], ids=["attached", "detached"])
def test_openssl_cms(p, tmp_path, which, attached):
    cert, key = (p.ec_leaf, p.ec_key) if which == "ec" else (p.rsa_leaf, p.rsa_key)
    args = ["-md", "sha256"] + (["-nodetach"] if attached else [])
    blob = openssl_sign(tmp_path, DATA, cert, key, *args, ca=p.ca)
    content = None if attached else DATA
    r = verify_cms(blob, p.verifier, content=content)
    assert_valid(r, cert)
    assert r.signing_time is not None  # openssl adds signing-time
    if attached:
        tampered = rebuild(blob, content=DATA + b" ")
        assert_code(verify_cms(tampered, p.verifier), "content_mismatch")
    else:
        assert_code(verify_cms(blob, p.verifier, content=b"X" + DATA[1:]), "content_mismatch")


@needs_openssl
def test_openssl_keyid_noattr_sha512(p, tmp_path):
    blob = openssl_sign(tmp_path, DATA, p.ec_leaf, p.ec_key, "-nodetach", "-keyid", "-noattr", "-md", "sha512", ca=p.ca)
    si = asn1_cms.ContentInfo.load(blob)["content"]["signer_infos"][0]
    assert si["sid"].name == "subject_key_identifier"  # really found by SKI
    assert isinstance(si["signed_attrs"], asn1_core.Void)
    r = verify_cms(blob, p.verifier)
    assert_valid(r, p.ec_leaf)
    assert r.signing_time is None
    assert_code(verify_cms(rebuild(blob, content=DATA[:-1]), p.verifier), "signature_invalid")


@needs_openssl
def test_openssl_without_ca_in_message(p, tmp_path):
    blob = openssl_sign(tmp_path, DATA, p.rsa_leaf, p.rsa_key, "-nodetach")
    assert verify_cms(blob, p.verifier).valid is False
    assert_valid(verify_cms(blob, p.verifier, intermediates=[pem(p.ca)]), p.rsa_leaf)


# --- raw signatures ----------------------------------------------------------------------


def vrs(p, cert, signature, data, **kw) -> SignatureResult:
    return verify_raw_signature(pem(cert), signature, data, p.verifier, intermediates=[pem(p.ca)], **kw)


def test_raw_ecdsa(p):
    sig = p.ec_key.sign(DATA, ec.ECDSA(hashes.SHA256()))
    for alg in (None, "ecdsa-with-SHA256", "1.2.840.10045.4.3.2", "ES256"):
        r = vrs(p, p.ec_leaf, sig, DATA, algorithm=alg)
        assert_valid(r, p.ec_leaf)
        assert r.algorithm == "ecdsa-with-SHA256"
    assert_code(vrs(p, p.ec_leaf, sig, DATA + b"x"), "signature_invalid")
    assert_code(vrs(p, p.ec_leaf, sig, DATA, algorithm="ecdsa-with-SHA384"),
                "signature_invalid")
    # IEEE P1363 r||s form
    r_, s_ = decode_dss_signature(sig)
    raw = r_.to_bytes(32, "big") + s_.to_bytes(32, "big")
    assert vrs(p, p.ec_leaf, raw, DATA).valid
    assert_code(vrs(p, p.ec_leaf, raw, DATA[1:]), "signature_invalid")


def test_raw_ecdsa_p384_infers_sha384(p):
    key = ec.generate_private_key(ec.SECP384R1())
    cert = make_cert(_name("P-384 signer"), key, p.ca.subject, p.ca_key)
    sig = key.sign(DATA, ec.ECDSA(hashes.SHA384()))
    r = verify_raw_signature(der(cert), sig, DATA, p.verifier, intermediates=[der(p.ca)])
    assert_valid(r, cert)
    assert r.algorithm == "ecdsa-with-SHA384"


def test_raw_rsa(p):
    sig = p.rsa_key.sign(DATA, padding.PKCS1v15(), hashes.SHA256())
    for alg in (None, "sha256WithRSAEncryption", "1.2.840.113549.1.1.11"):
        assert_valid(vrs(p, p.rsa_leaf, sig, DATA,
                                          algorithm=alg), p.rsa_leaf)
    assert_code(vrs(p, p.rsa_leaf, sig, DATA + b"x"), "signature_invalid")
    pss = p.rsa_key.sign(DATA, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    r = vrs(p, p.rsa_leaf, pss, DATA, algorithm="rsassa-pss-sha256")
    assert_valid(r, p.rsa_leaf)
    assert r.algorithm == "RSASSA-PSS"
    assert_code(vrs(p, p.rsa_leaf, pss, DATA), "signature_invalid")  # not PKCS#1 v1.5
    bad = bytearray(pss)
    bad[10] ^= 1
    assert_code(vrs(p, p.rsa_leaf, bytes(bad), DATA, algorithm="rsassa-pss-sha256"),
                "signature_invalid")


def test_raw_ed25519(p):
    sig = p.ed_key.sign(DATA)
    for alg in (None, "ed25519", "Ed25519", "1.3.101.112"):
        r = vrs(p, p.ed_leaf, sig, DATA, algorithm=alg)
        assert_valid(r, p.ed_leaf)
        assert r.algorithm == "Ed25519"
    assert_code(vrs(p, p.ed_leaf, sig, DATA + b"x"), "signature_invalid")
    assert_code(vrs(p, p.ed_leaf, sig[:-1] + bytes([sig[-1] ^ 1]), DATA),
                "signature_invalid")
    # An Ed25519 signature checked under another certificate's key fails.
    assert_code(vrs(p, p.ec_leaf, sig, DATA, algorithm="ed25519"), "signature_invalid")


def test_raw_bad_algorithm_names_and_time(p):
    sig = p.ec_key.sign(DATA, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InputError):
        vrs(p, p.ec_leaf, sig, DATA, algorithm="rot13-with-love")
    with pytest.raises(InputError):
        vrs(p, p.ec_leaf, sig, DATA, at="signing-time")
    with pytest.raises(InputError):
        verify_raw_signature(b"not a certificate", sig, DATA, p.verifier)
    r = vrs(p, p.ec_leaf, sig, DATA, algorithm="1.2.3.4.5")
    assert_code(r, "unsupported_algorithm")
    assert r.chain is None


def test_raw_key_usage_and_time(p):
    cert, key = p.leaf("Raw encryption only", ku=_ku(sign=False, encipher=True))
    sig = key.sign(DATA, ec.ECDSA(hashes.SHA256()))
    assert_code(vrs(p, cert, sig, DATA), "purpose")
    sig = p.ec_key.sign(DATA, ec.ECDSA(hashes.SHA256()))
    # In 2050 the anchor has expired too: honoured by default, ignored on request.
    assert_code(vrs(p, p.ec_leaf, sig, DATA, at="2050-01-01T00:00:00Z"), "anchor_invalid")
    assert_code(vrs(p, p.ec_leaf, sig, DATA, at="2050-01-01T00:00:00Z", anchor_constraints=False), "expired")
    assert vrs(p, p.ec_leaf, sig, DATA, at=AT).valid


def test_repeated_signed_attribute_is_invalid(p):
    blob = hand_cms(DATA, p.ec_leaf, p.ec_key, extra=[p.ca], attrs=("content_type", "message_digest", "message_digest"))
    assert_code(verify_cms(blob, p.verifier), "signed_attributes_invalid")


@needs_openssl
def test_openssl_streamed_ber(p, tmp_path):
    # -stream writes indefinite-length BER with the content in chunks.
    big = DATA * 500
    blob = openssl_sign(tmp_path, big, p.ec_leaf, p.ec_key, "-nodetach", "-stream", ca=p.ca)
    assert blob[1] == 0x80  # indefinite length indeed
    assert_valid(verify_cms(blob, p.verifier), p.ec_leaf)
    assert_code(verify_cms(rebuild(blob, content=big[:-1]), p.verifier), "content_mismatch")


@needs_openssl
def test_openssl_two_signers(p, tmp_path):
    (tmp_path / "rsa.pem").write_bytes(pem(p.rsa_leaf))
    (tmp_path / "rsakey.pem").write_bytes(key_pem(p.rsa_key))
    two = ["-nodetach", "-signer", str(tmp_path / "rsa.pem"), "-inkey", str(tmp_path / "rsakey.pem")]
    blob = openssl_sign(tmp_path, DATA, p.ec_leaf, p.ec_key, *two, ca=p.ca)
    assert len(asn1_cms.ContentInfo.load(blob)["content"]["signer_infos"]) == 2
    assert_valid(verify_cms(blob, p.verifier), p.ec_leaf)  # the first signer is reported
    # The second signer's certificate swapped out: the whole message fails, on it.
    other, _ = p.leaf("Nobody")
    r = verify_cms(rebuild(blob, certificates=[p.ec_leaf, other, p.ca]), p.verifier)
    assert_code(r, "signer_not_found")
    assert r.signer["serial"] == format(p.rsa_leaf.serial_number, "x")
