"""Evidence for tests (issue 12): CMS signatures with the signed attributes a
CAdES signer puts (content-type, message-digest, signing-time, ESS
signing-certificate-v2), a test time-stamping authority (RFC 3161 tokens), and
the signature-time-stamp unsigned attribute added to a signature. Made with
cryptography and asn1crypto, nothing mocked: pki/timestamp.py and any RFC 3161
reader (openssl ts) accept what this makes.

    tsa = TestTsa.issued_by(ca_cert, ca_key)
    cms = sign_cms(b"contract", signer_cert, signer_key, signing_time=t, certificates=[issuing_ca])
    cms = add_time_stamp(cms, tsa, gen_time=t + dt.timedelta(minutes=1))
"""
from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from dataclasses import dataclass
from typing import Sequence

from asn1crypto import algos as asn1_algos
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

_serials = itertools.count(1)


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def issue_at(issuer_cert: x509.Certificate, issuer_key, subject: x509.Name, public_key, *, not_before: dt.datetime,
             days: int = 730, ca: bool = False, extra: Sequence[tuple[x509.ExtensionType, bool]] = ()) -> x509.Certificate:
    """A certificate valid from ``not_before`` (a past the tests need), EC/SHA-256."""
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_before + dt.timedelta(days=days), issuer_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(not ca, not ca, False, False, False, ca, ca, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    return b.sign(issuer_key, hashes.SHA256())


def _signer_info(cert: x509.Certificate, key, content: bytes, content_type: str, *,
                 signing_time: dt.datetime | None, ess_certificate: x509.Certificate | None) -> asn1_cms.SignerInfo:
    attrs = [
        {"type": "content_type", "values": [content_type]},
        {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
    ]
    if signing_time is not None:
        attrs.append({"type": "signing_time", "values": [asn1_cms.Time({"utc_time": signing_time})]})
    if ess_certificate is not None:
        ess_der = ess_certificate.public_bytes(serialization.Encoding.DER)
        attrs.append({"type": "signing_certificate_v2", "values": [{"certs": [{
            "cert_hash": hashlib.sha256(ess_der).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName({"directory_name": _asn1_cert(ess_certificate).issuer})],
                "serial_number": ess_certificate.serial_number,
            },
        }]}]})
    signed_attrs = asn1_cms.CMSAttributes(attrs)
    asn1 = _asn1_cert(cert)
    si = asn1_cms.SignerInfo({
        "version": "v1",
        "sid": asn1_cms.SignerIdentifier({"issuer_and_serial_number": {
            "issuer": asn1.issuer, "serial_number": asn1.serial_number}}),
        "digest_algorithm": asn1_algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": asn1_algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        "signature": b"",
    })
    # RFC 5652 5.4: the signature covers the attributes' DER as a SET OF.
    to_sign = b"\x31" + si["signed_attrs"].dump()[1:]
    si["signature"] = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
    return si


def _signed_data(cert, key, content: bytes, content_type: str, certificates, *, detached: bool = False,
                 signing_time=None, ess_certificate=None, encap_content=None) -> bytes:
    si = _signer_info(cert, key, content, content_type, signing_time=signing_time, ess_certificate=ess_certificate)
    encap = {"content_type": content_type}
    if not detached:
        encap["content"] = encap_content if encap_content is not None else content
    sd = asn1_cms.SignedData({
        "version": "v3" if content_type != "data" else "v1",
        "digest_algorithms": [asn1_algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": encap,
        "certificates": [_asn1_cert(c) for c in [cert, *certificates]],
        "signer_infos": [si],
    })
    return asn1_cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump()


def sign_cms(content: bytes, cert: x509.Certificate, key, *, signing_time: dt.datetime | None = None,
             certificates: Sequence[x509.Certificate] = (), ess: bool = True,
             ess_certificate: x509.Certificate | None = None, detached: bool = False) -> bytes:
    """A CMS SignedData over ``content`` by ``cert``/``key`` (EC, SHA-256).
    ``ess``: with a signing-certificate-v2 attribute naming ``ess_certificate``
    (default: the signer's own certificate; another one makes a mismatch)."""
    named = (ess_certificate or cert) if ess else None
    return _signed_data(cert, key, content, "data", certificates, detached=detached, signing_time=signing_time,
                        ess_certificate=named)


@dataclass
class TestTsa:
    """A time-stamping authority: a certificate with the one critical
    extendedKeyUsage timeStamping (RFC 3161 2.3), its key, and the chain
    above it to put in its tokens."""

    __test__ = False  # not a pytest class
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def issued_by(cls, issuer_cert: x509.Certificate, issuer_key, *, not_before: dt.datetime | None = None,
                  name: str = "Test Time-Stamping Authority", critical_eku: bool = True) -> "TestTsa":
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Evidence Tests"),
                             x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
        start = not_before or issuer_cert.not_valid_before_utc
        cert = issue_at(issuer_cert, issuer_key, subject, key.public_key(), not_before=start, days=3650,
                        extra=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical_eku)])
        return cls(cert, key, ())

    def token(self, imprinted: bytes, gen_time: dt.datetime, *, hash_name: str = "sha256") -> bytes:
        """A time-stamp token (ContentInfo DER) over ``imprinted`` at ``gen_time``."""
        tst = asn1_tsp.TSTInfo({
            "version": "v1",
            "policy": "1.3.6.1.4.1.32473.77.9.1",
            "message_imprint": {"hash_algorithm": {"algorithm": hash_name},
                                "hashed_message": hashlib.new(hash_name, imprinted).digest()},
            "serial_number": next(_serials),
            "gen_time": asn1_core.GeneralizedTime(gen_time.astimezone(dt.timezone.utc)),
        })
        body = tst.dump()
        return _signed_data(self.cert, self.key, body, "tst_info", self.chain, signing_time=gen_time,
                            ess_certificate=self.cert, encap_content=asn1_core.ParsableOctetString(body))


def signature_value(cms_der: bytes, index: int = 0) -> bytes:
    info = asn1_cms.ContentInfo.load(cms_der)
    return bytes(info["content"]["signer_infos"][index]["signature"])


def add_time_stamp(cms_der: bytes, tsa: TestTsa, gen_time: dt.datetime, *, token: bytes | None = None) -> bytes:
    """``cms_der`` with a signature-time-stamp token (RFC 3161 appendix A)
    over its first SignerInfo's signature value added as an unsigned
    attribute; ``token`` to put a given (e.g. a damaged) token instead."""
    sd = asn1_cms.ContentInfo.load(cms_der)["content"]
    si = sd["signer_infos"][0]
    token = token if token is not None else tsa.token(bytes(si["signature"]), gen_time)
    # Rebuilt from the parsed parts (their encodings kept, the signed
    # attributes' bytes above all): asn1crypto's dump(force=True) re-encodes
    # every level again for each parent, exponentially in the depth.
    stamped = asn1_cms.SignerInfo({
        **{k: si[k] for k in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "signature")},
        "unsigned_attrs": asn1_cms.CMSAttributes([
            {"type": "signature_time_stamp_token", "values": [asn1_cms.ContentInfo.load(token)]},
        ]),
    })
    rebuilt = asn1_cms.SignedData({
        **{k: sd[k] for k in ("version", "digest_algorithms", "encap_content_info", "certificates")},
        "signer_infos": [stamped, *list(sd["signer_infos"])[1:]],
    })
    return asn1_cms.ContentInfo({"content_type": "signed_data", "content": rebuilt}).dump()
