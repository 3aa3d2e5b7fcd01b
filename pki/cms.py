"""Signature verification: CMS SignedData (RFC 5652) and raw signatures.

Pure: bytes in, a ``SignatureResult`` out. A signature is valid when the
signature itself verifies, the signed attributes (when present) bind it to the
content (content-type, message-digest), the signer certificate may sign
(keyUsage digitalSignature or nonRepudiation), and the signer certificate's
chain validates with the given ``Verifier`` at the chosen time.

CMS names its signature algorithm as a (digestAlgorithm, signatureAlgorithm)
pair in which signatureAlgorithm may be a bare key algorithm (rsaEncryption,
id-ecPublicKey); ``CMS_SIGNATURE_ALGORITHMS`` maps such a pair to the
signature AlgorithmIdentifier the algorithm registry knows. Pairs not listed
pass through unchanged (ecdsa-with-SHA256, sha256WithRSAEncryption,
RSASSA-PSS, Ed25519, SM2 sm2sign-with-sm3). SM2 with SM3 is mapped to
1.2.156.10197.1.501 already, so it verifies as soon as a registry has a scheme
for that OID. Callers may pass their own tables (``signature_algorithms``,
``digests``); nothing here is global mutable state.

``signing_time`` comes from the signer's own signed attribute: a claim.
A signature time-stamp token (RFC 3161, pki/timestamp.py) that checks out is
a proof: its genTime is then the time the signer's chain is judged at (when
no time, or the signing time, is asked for), and revocations after it do not
fail the signature. An ESS signing-certificate(-v2) attribute, when present,
must name the signer's certificate (RFC 5035; EN 319 102-1 5.2.3.4).
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from asn1crypto import algos as asn1_algos
from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from . import der as derlib
from . import errors as E
from .algorithms import (
    DSA_KEY,
    EC_KEY,
    ED448_KEY,
    ED25519_KEY,
    RSA_KEY,
    RSA_PSS,
    UnsupportedSignatureAlgorithm,
)
from .budget import Budget
from .certificate import Certificate, parse_certificate
from .errors import BudgetExceeded, InputError, ValidationError
from .indication import for_code, iso
from .loading import load_certificate, load_many
from .timestamp import MAX_TOKENS, TimeStamp, tokens_of, verify_token
from .verifier import VerificationResult, Verifier, parse_time

# --- stable error codes (ValidationError.code) -------------------------------
SIGNATURE_INVALID = E.SIGNATURE_INVALID
CONTENT_MISMATCH = "content_mismatch"
SIGNER_NOT_FOUND = "signer_not_found"
MISSING_MESSAGE_DIGEST = "missing_message_digest"
MISSING_CONTENT_TYPE = "missing_content_type"
CONTENT_TYPE_MISMATCH = "content_type_mismatch"
MISSING_SIGNING_TIME = "missing_signing_time"
SIGNED_ATTRIBUTES_INVALID = "signed_attributes_invalid"
# An ESS signing-certificate(-v2) attribute names another certificate than the signer's.
SIGNING_CERTIFICATE_MISMATCH = "signing_certificate_mismatch"
UNSUPPORTED_ALGORITHM = E.UNSUPPORTED_ALGORITHM
KEY_USAGE = E.KEY_USAGE
MALFORMED_CMS = "malformed_cms"


class MalformedCms(InputError):
    """Undecodable CMS (or base64, or a detached CMS without its content).
    An ``InputError``: the HTTP layer answers 400 with ``code``."""

    code = MALFORMED_CMS


SIGNING_TIME = "signing-time"

ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ATTR_SIGNING_TIME = "1.2.840.113549.1.9.5"
ATTR_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"  # RFC 2634 ESSCertID (SHA-1)
ATTR_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"  # RFC 5035 ESSCertIDv2

SHA1 = "1.3.14.3.2.26"
SHA224 = "2.16.840.1.101.3.4.2.4"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
SHA512 = "2.16.840.1.101.3.4.2.3"
SHA3_256 = "2.16.840.1.101.3.4.2.8"
SHA3_384 = "2.16.840.1.101.3.4.2.9"
SHA3_512 = "2.16.840.1.101.3.4.2.10"
SHAKE256 = "2.16.840.1.101.3.4.2.12"
SM3 = "1.2.156.10197.1.401"

SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM2_CURVE = "1.2.156.10197.1.301"  # also seen as a key/signature algorithm
SM2_SIGN = "1.2.156.10197.1.301.1"  # GM/T 0006 "SM2-1 signature"

# Digest algorithm OID -> factory of a cryptography hash (message-digest attribute).
DigestFactory = Callable[[], hashes.HashAlgorithm]
DIGESTS: Mapping[str, DigestFactory] = MappingProxyType(
    {
        SHA1: hashes.SHA1,
        SHA224: hashes.SHA224,
        SHA256: hashes.SHA256,
        SHA384: hashes.SHA384,
        SHA512: hashes.SHA512,
        SHA3_256: hashes.SHA3_256,
        SHA3_384: hashes.SHA3_384,
        SHA3_512: hashes.SHA3_512,
        SHAKE256: lambda: hashes.SHAKE256(64),  # RFC 8419 (Ed448): 512-bit output
        SM3: hashes.SM3,
    }
)

_RSA_WITH = {SHA1: "1.2.840.113549.1.1.5", SHA224: "1.2.840.113549.1.1.14", SHA256: "1.2.840.113549.1.1.11",
             SHA384: "1.2.840.113549.1.1.12", SHA512: "1.2.840.113549.1.1.13"}
_ECDSA_WITH = {SHA1: "1.2.840.10045.4.1", SHA224: "1.2.840.10045.4.3.1", SHA256: "1.2.840.10045.4.3.2",
               SHA384: "1.2.840.10045.4.3.3", SHA512: "1.2.840.10045.4.3.4"}
_DSA_WITH = {SHA1: "1.2.840.10040.4.3", SHA224: "2.16.840.1.101.3.4.3.1", SHA256: "2.16.840.1.101.3.4.3.2"}

# (SignerInfo signatureAlgorithm OID, digestAlgorithm OID) -> signature algorithm
# OID of the registry. Pairs not listed: signatureAlgorithm is used as is.
CMS_SIGNATURE_ALGORITHMS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        **{(RSA_KEY, d): s for d, s in _RSA_WITH.items()},
        **{(EC_KEY, d): s for d, s in _ECDSA_WITH.items()},
        **{(DSA_KEY, d): s for d, s in _DSA_WITH.items()},
        (EC_KEY, SM3): SM2_WITH_SM3,
        (SM2_CURVE, SM3): SM2_WITH_SM3,
        (SM2_SIGN, SM3): SM2_WITH_SM3,
    }
)

# Signature algorithms whose AlgorithmIdentifier carries NULL parameters.
_NULL_PARAMS = frozenset(_RSA_WITH.values())

_CHAIN_OPTIONS = frozenset(
    {"policies", "explicit_policy", "inhibit_policy_mapping", "inhibit_any_policy", "revocation", "intermediates",
     "revocation_provider", "profile", "anchor_constraints", "key_usage", "extended_key_usage", "max_chain_depth"}
)


@dataclass(frozen=True)
class SignatureResult:
    valid: bool
    signer: dict | None = None  # subject, issuer, serial, sha256 (or the SignerIdentifier when not found)
    signing_time: dt.datetime | None = None
    chain: VerificationResult | None = None
    error: ValidationError | None = None
    algorithm: str | None = None  # the signature scheme used, when known
    content_type: str | None = None  # eContentType (CMS only), dotted OID
    # The signature time-stamp looked at (the one used, when one checked out).
    time_stamp: TimeStamp | None = None
    # The time the signer's chain was judged at (a time-stamp's genTime, the
    # signing time, the time asked for, or now).
    validation_time: dt.datetime | None = None
    # Judged at the current time with nothing saying when the signature was
    # made (no time asked for, no time-stamp): an expired signer is then
    # OUT_OF_BOUNDS_NO_POE rather than EXPIRED.
    signed_at_unknown: bool = False

    def indication(self) -> tuple[str, str | None]:
        """(indication, sub_indication) of EN 319 102-1 (pki/indication.py)."""
        if self.error is None:
            return for_code(None)
        if self.chain is not None and self.error is self.chain.error:
            return self.chain.indication(signed_at_unknown=self.signed_at_unknown)
        return for_code(self.error.code, of_signature=True)

    def to_dict(self) -> dict:
        indication, sub_indication = self.indication()
        out = {
            "valid": self.valid,
            "indication": indication,
            "sub_indication": sub_indication,
            "validation_time": iso(self.validation_time),
            "signer": self.signer,
            "signing_time": _iso(self.signing_time),
            "timestamp": self.time_stamp.to_dict() if self.time_stamp is not None else None,
            "chain": self.chain.to_dict() if self.chain is not None else None,
            "error": self.error.to_dict() if self.error is not None else None,
        }
        if self.algorithm is not None:
            out["algorithm"] = self.algorithm
        if self.content_type is not None:
            out["content_type"] = self.content_type
        return out


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# --- input helpers ---------------------------------------------------------------

_PEM_CMS = re.compile(rb"-----BEGIN (CMS|PKCS7|PKCS #7 SIGNED DATA)-----(.*?)-----END \1-----", re.S)


def decode_base64(value: str | bytes, what: str = "value") -> bytes:
    """Strict base64 (whitespace tolerated); ``MalformedCms`` otherwise."""
    if isinstance(value, str):
        try:
            value = value.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedCms(f"{what}: not base64 (non-ASCII characters)") from None
    compact = re.sub(rb"\s+", b"", bytes(value))
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedCms(f"{what}: not valid base64") from None


def _cms_bytes(cms: bytes | str) -> bytes:
    """DER/BER bytes, PEM (CMS/PKCS7), or a base64 string."""
    if isinstance(cms, str):
        cms = cms.encode("utf-8", "replace") if "-----BEGIN" in cms else decode_base64(cms, "cms")
    cms = bytes(cms)
    if b"-----BEGIN" in cms[:64]:
        match = _PEM_CMS.search(cms)
        if match is None:
            raise MalformedCms("cms: a PEM block that is not CMS/PKCS7")
        cms = decode_base64(match.group(2), "cms")
    if not cms:
        raise MalformedCms("cms: empty")
    return cms


def _check_chain_options(options: dict) -> None:
    unknown = set(options) - _CHAIN_OPTIONS
    if unknown:
        raise TypeError(f"unknown chain option(s): {', '.join(sorted(unknown))}")


def _signature_failure(code: str, message: str, signer=None, **kw) -> SignatureResult:
    return SignatureResult(False, signer, error=ValidationError(code, message, None, None), **kw)


# --- CMS -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    content_type: str
    content: bytes
    certificates: tuple[Certificate, ...]
    signer_infos: tuple[asn1_cms.SignerInfo, ...]


def _parse(cms_der: bytes, content: bytes | None, budget: Budget) -> _Parsed:
    try:
        info = asn1_cms.ContentInfo.load(cms_der)
        content_type = info["content_type"].dotted
        if content_type != ID_SIGNED_DATA:
            raise MalformedCms(f"cms: ContentInfo holds {content_type}, not SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        e_content_type = encap["content_type"].dotted
        e_content = encap["content"]
        attached = None if isinstance(e_content, asn1_core.Void) else bytes(e_content)
        # Counted before any SignerInfo is decoded or certificate parsed: the
        # budget's point is that a hostile message costs little to refuse.
        sets = signed["signer_infos"]
        budget.charge_cms_signer_infos(len(sets))
        certs = signed["certificates"]
        if not isinstance(certs, asn1_core.Void):
            budget.charge_cms_certificates(len(certs))
        signer_infos = tuple(sets)
        cert_ders = []
        if not isinstance(certs, asn1_core.Void):
            for choice in certs:
                if choice.name == "certificate":
                    cert_ders.append(choice.chosen.dump())
        # Touch every SignerInfo field now, so that lazy parsing errors surface
        # here as malformed input, not later as a crash. Unsigned attributes
        # only by type: a time-stamp token's native form costs asn1crypto
        # seconds (it re-encodes nested values), and a token is read, with
        # its own error handling, by pki/timestamp.py.
        for si in signer_infos:
            for field_name in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "signature"):
                _ = si[field_name].native
            unsigned = si["unsigned_attrs"]
            if not isinstance(unsigned, asn1_core.Void):
                _ = [attr["type"].dotted for attr in unsigned]
    except (MalformedCms, BudgetExceeded):
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError ...
        raise MalformedCms(f"cms: not a readable CMS SignedData: {exc}") from None
    certificates = []
    for i, d in enumerate(cert_ders):
        try:
            certificates.append(parse_certificate(d))
        except InputError as exc:
            raise MalformedCms(f"cms: certificate {i + 1} in the message: {exc}") from None
    if attached is None:
        if content is None:
            raise MalformedCms("cms: detached signature (no encapsulated content) and no content given")
        data = bytes(content)
    else:
        data = attached
        if content is not None and bytes(content) != attached:
            raise MalformedCms("cms: content given separately differs from the content the CMS carries")
    return _Parsed(e_content_type, data, tuple(certificates), signer_infos)


def verify_cms(
    cms_der: bytes | str,
    verifier: Verifier,
    *,
    content: bytes | None = None,
    at: dt.datetime | str | None = None,
    signature_algorithms: Mapping[tuple[str, str], str] | None = None,
    digests: Mapping[str, DigestFactory] | None = None,
    **chain_options,
) -> SignatureResult:
    """Verify a CMS SignedData (attached, or detached with ``content``).

    ``at``: ``"signing-time"`` validates the signer's chain at the time of its
    signing-time attribute (invalid with ``missing_signing_time`` when there is
    none), a datetime or ISO 8601 string at that time, None now.
    ``chain_options`` go to ``Verifier.verify``; ``intermediates`` are added
    to the certificates in the message, both for finding the signer and for
    path building. Every SignerInfo must verify; the result describes the
    first one that fails, or the first one. Raises ``MalformedCms`` (an
    ``InputError``) for unreadable input. A signature time-stamp token each
    SignerInfo carries is checked (pki/timestamp.py) and, when it checks out,
    proves the time the signer's chain is judged at (``at`` None or
    ``"signing-time"``), or that an ``at`` after it is proven too.
    """
    result = _verify_cms(cms_der, verifier, content, at, signature_algorithms, digests, chain_options, True)
    if result.validation_time is None:
        # Failed before any chain was judged: the time the question was for.
        when = None if isinstance(at, str) and at == SIGNING_TIME else at
        result = dataclasses.replace(result, validation_time=parse_time(when) if when is not None else parse_time(None))
    return result


def verify_cms_signed_data(cms_der: bytes, verifier: Verifier, **chain_options) -> SignatureResult:
    """A SignedData checked as ``verify_cms`` does, at the current time,
    without reading time-stamp tokens (for the tokens themselves)."""
    return _verify_cms(cms_der, verifier, None, None, None, None, chain_options, False)


def _verify_cms(cms_der, verifier: Verifier, content, at, signature_algorithms, digests, chain_options: dict,
                read_time_stamps: bool) -> SignatureResult:
    _check_chain_options(chain_options)
    if not (isinstance(at, str) and at == SIGNING_TIME):
        at = parse_time(at) if at is not None else None
    # One budget for the whole message (signer infos, certificates, pairs,
    # signature attempts); each signer's chain gets the Verifier's own.
    budget = Budget(verifier.limits)
    content_type = None
    try:
        parsed = _parse(_cms_bytes(cms_der), content, budget)
        content_type = parsed.content_type
        extra = tuple(load_many(chain_options.pop("intermediates", ()) or (), "intermediate"))
        budget.charge_cms_certificates(len(extra))
        algs = CMS_SIGNATURE_ALGORITHMS if signature_algorithms is None else signature_algorithms
        dig = DIGESTS if digests is None else digests
        if not parsed.signer_infos:
            return _signature_failure(SIGNER_NOT_FOUND, "the SignedData has no SignerInfo (a certificates-only bundle?)",
                                      content_type=parsed.content_type)
        index = _SignerIndex(parsed.certificates + extra)
        chains: dict = {}
        first = None
        # Every SignerInfo must verify and the first failure is the answer, so
        # the ones after it need not cost anything.
        for si in parsed.signer_infos:
            r = _verify_signer_info(si, parsed, extra, index, verifier, at, algs, dig, chain_options, budget, chains,
                                    read_time_stamps)
            if not r.valid:
                return r
            if first is None:
                first = r
        assert first is not None  # there is at least one SignerInfo, and each returned or set it
        return first
    except BudgetExceeded as exc:
        return _signature_failure(E.BUDGET_EXCEEDED, str(exc), content_type=content_type)


def _sid_description(sid) -> dict:
    if sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
        return {
            "issuer": sid.chosen["issuer"].human_friendly,
            "serial": format(serial, "x") if serial >= 0 else "-" + format(-serial, "x"),
        }
    return {"subject_key_identifier": bytes(sid.chosen).hex()}


def _key_identifier(cert: Certificate) -> bytes:
    if cert.subject_key_id is not None:
        return cert.subject_key_id
    # RFC 5280 4.2.1.2 method (1), for certificates without the extension.
    return hashlib.sha1(derlib.spki_parts(cert.spki)[2]).digest()


def _name_match_key(name: asn1_x509.Name) -> tuple:
    """Equal for names RFC 5280 7.1 calls equal (asn1crypto's comparison, as
    its ``==`` does); the exact DER when the name cannot be normalised, so
    an odd name still matches its own bytes."""
    try:
        return ("name", name.hashable)
    except Exception:
        return ("der", name.dump())


class _SignerIndex:
    """The message's certificates (and the intermediates given) by signer
    identifier, built once per verify_cms call, so finding each SignerInfo's
    certificates is a lookup, not a scan: a scan per SignerInfo made a message
    with many of both quadratic."""

    def __init__(self, certificates: Iterable[Certificate]) -> None:
        self._certificates: list[Certificate] = []
        seen: set[bytes] = set()
        for cert in certificates:
            if cert.sha256 not in seen:
                seen.add(cert.sha256)
                self._certificates.append(cert)
        self._by_issuer_serial: dict | None = None
        self._by_key_id: dict | None = None

    def _issuer_serial_index(self) -> dict:
        if self._by_issuer_serial is None:
            index: dict[tuple, list[Certificate]] = {}
            names: dict[bytes, tuple] = {}  # a CA's leaves share its name: normalised once
            for cert in self._certificates:
                key = names.get(cert.issuer_der)
                if key is None:
                    try:
                        key = _name_match_key(asn1_x509.Name.load(cert.issuer_der))
                    except Exception:
                        key = ("der", cert.issuer_der)
                    names[cert.issuer_der] = key
                index.setdefault((cert.serial, key), []).append(cert)
            self._by_issuer_serial = index
        return self._by_issuer_serial

    def _key_id_index(self) -> dict:
        if self._by_key_id is None:
            index: dict[bytes, list[Certificate]] = {}
            for cert in self._certificates:
                try:
                    index.setdefault(_key_identifier(cert), []).append(cert)
                except Exception:  # an SPKI too damaged to hash: it identifies nothing
                    continue
            self._by_key_id = index
        return self._by_key_id

    def candidates(self, sid) -> list[Certificate]:
        """The certificates ``sid`` matches, in the message's order."""
        if sid.name == "issuer_and_serial_number":
            key = (sid.chosen["serial_number"].native, _name_match_key(sid.chosen["issuer"]))
            return list(self._issuer_serial_index().get(key, ()))
        if sid.name == "subject_key_identifier":
            return list(self._key_id_index().get(bytes(sid.chosen), ()))
        return []


def _single_value(attrs: dict, oid: str, name: str):
    """The one value of a signed attribute, None when absent; ValidationError
    when it is repeated or multi-valued (RFC 5652 11.1-11.3)."""
    found = attrs.get(oid)
    if found is None:
        return None
    if len(found) != 1 or len(found[0]["values"]) != 1:
        raise ValidationError(SIGNED_ATTRIBUTES_INVALID, f"the {name} attribute must appear once with one value")
    return found[0]["values"][0]


def _digest(digest_oid: str, data: bytes, digests: Mapping[str, DigestFactory]) -> bytes | None:
    factory = digests.get(digest_oid)
    if factory is None:
        return None
    h = hashes.Hash(factory())
    h.update(data)
    return h.finalize()


def signature_algorithm_for(
    signature_algorithm_der: bytes,
    digest_oid: str,
    table: Mapping[tuple[str, str], str] = CMS_SIGNATURE_ALGORITHMS,
) -> bytes:
    """The signature AlgorithmIdentifier (DER) the registry verifies, for a
    SignerInfo's signatureAlgorithm and digestAlgorithm."""
    oid, _ = derlib.algorithm_identifier(signature_algorithm_der)
    mapped = table.get((oid, digest_oid))
    if mapped is None:
        return signature_algorithm_der
    return algorithm_identifier(mapped)


def algorithm_identifier(oid: str) -> bytes:
    """AlgorithmIdentifier DER for a signature OID without parameters
    (NULL for the PKCS#1 v1.5 RSA ones)."""
    body = asn1_core.ObjectIdentifier(oid).dump()
    if oid in _NULL_PARAMS:
        body += b"\x05\x00"
    return derlib.sequence(body)


def _verify_signer_info(si, parsed: _Parsed, extra, index: _SignerIndex, verifier, at, algs, digests, chain_options,
                        budget: Budget, chains: dict, read_time_stamps: bool = True) -> SignatureResult:
    sid = si["sid"]
    ctype = parsed.content_type
    candidates = index.candidates(sid)
    budget.charge_cms_candidate_pairs(len(candidates))
    if not candidates:
        return _signature_failure(
            SIGNER_NOT_FOUND,
            "no certificate in the message (or among the intermediates given) matches the signer identifier",
            _sid_description(sid),
            content_type=ctype,
        )
    digest_oid = si["digest_algorithm"]["algorithm"].dotted
    sig_alg_der = si["signature_algorithm"].dump()
    signature = bytes(si["signature"])
    signed_attrs = si["signed_attrs"]
    signing_time = None
    scheme = None
    first = candidates[0].summary()
    try:
        try:
            sig_alg = signature_algorithm_for(sig_alg_der, digest_oid, algs)
        except InputError as exc:
            raise MalformedCms(f"cms: bad signatureAlgorithm: {exc}") from None
        scheme = verifier.registry.scheme_name(sig_alg)
        if isinstance(signed_attrs, asn1_core.Void) or len(signed_attrs) == 0:
            if isinstance(signed_attrs, asn1_cms.CMSAttributes) and len(signed_attrs) == 0:
                raise ValidationError(SIGNED_ATTRIBUTES_INVALID, "signedAttrs is present but empty")
            if ctype != ID_DATA:
                raise ValidationError(
                    SIGNED_ATTRIBUTES_INVALID,
                    f"content of type {ctype} signed without signed attributes (RFC 5652 5.3 requires them)",
                )
            if digest_oid not in digests:
                raise ValidationError(UNSUPPORTED_ALGORITHM, f"unsupported digest algorithm {digest_oid}")
            message = parsed.content
        else:
            attrs: dict[str, list] = {}
            for attr in signed_attrs:
                attrs.setdefault(attr["type"].dotted, []).append(attr)
            ct = _single_value(attrs, ATTR_CONTENT_TYPE, "content-type")
            md = _single_value(attrs, ATTR_MESSAGE_DIGEST, "message-digest")
            st = _single_value(attrs, ATTR_SIGNING_TIME, "signing-time")
            if md is None:
                raise ValidationError(MISSING_MESSAGE_DIGEST, "the signed attributes carry no message-digest attribute")
            if ct is None:
                raise ValidationError(MISSING_CONTENT_TYPE, "the signed attributes carry no content-type attribute")
            try:
                ct_oid = ct.dotted
                md_value = bytes(md)
                signing_time = st.native if st is not None else None
            except Exception as exc:
                raise ValidationError(SIGNED_ATTRIBUTES_INVALID, f"unreadable signed attribute: {exc}") from None
            if ct_oid != ctype:
                raise ValidationError(
                    CONTENT_TYPE_MISMATCH,
                    f"the content-type attribute ({ct_oid}) differs from the encapsulated content type ({ctype})",
                )
            actual = _digest(digest_oid, parsed.content, digests)
            if actual is None:
                raise ValidationError(UNSUPPORTED_ALGORITHM, f"unsupported digest algorithm {digest_oid}")
            if actual != md_value:
                raise ValidationError(
                    CONTENT_MISMATCH,
                    "the content's digest differs from the signed message-digest: the content was altered "
                    "or is not the content that was signed",
                )
            raw = signed_attrs.dump()
            if raw[1] == 0x80:  # indefinite-length BER: the signature covers DER
                raw = signed_attrs.dump(force=True)
            message = b"\x31" + raw[1:]  # [0] IMPLICIT -> SET OF (RFC 5652 5.4)
        signer, error = None, None
        for cert in candidates:
            budget.charge_signature()
            try:
                ok = verifier.registry.verify(cert.spki, sig_alg, signature, message)
            except UnsupportedSignatureAlgorithm as exc:
                error = ValidationError(UNSUPPORTED_ALGORITHM, f"cannot verify the signature: {exc}")
                continue
            if ok:
                signer = cert
                break
        if signer is None:
            if error is not None and len(candidates) == 1:
                raise error
            raise ValidationError(
                SIGNATURE_INVALID,
                f"the {scheme} signature does not verify under the signer certificate's key",
            )
        if not (isinstance(signed_attrs, asn1_core.Void) or len(signed_attrs) == 0):
            _check_signing_certificate(attrs, signer, digests)
    except ValidationError as err:
        return SignatureResult(False, first, signing_time, None, err, scheme, ctype)
    time_stamp = None
    if read_time_stamps:
        time_stamp = _time_stamp(si, signature, verifier, digests, budget, parsed.certificates + extra, chain_options)
    return _finish(signer, signing_time, scheme, ctype, verifier, at, parsed.certificates + extra, chain_options, chains,
                   time_stamp)


def _time_stamp(si, signature: bytes, verifier: Verifier, digests, budget: Budget, certificates, chain_options) -> TimeStamp | None:
    """The earliest signature time-stamp that checks out, else the first one
    looked at (reported with what is wrong with it); None when there is none."""
    tokens = tokens_of(si)[:MAX_TOKENS]
    if not tokens:
        return None
    # Each token is a SignedData of its own: counted against the message's budget.
    budget.charge_cms_signer_infos(len(tokens))
    options = dict(chain_options)
    options["intermediates"] = list(certificates)
    checked = [verify_token(t, signature, verifier, digests, **options) for t in tokens]
    valid = [t for t in checked if t.valid and t.time is not None]
    if valid:
        return min(valid, key=lambda t: t.time or dt.datetime.max.replace(tzinfo=dt.timezone.utc))
    return checked[0]


def _check_signing_certificate(attrs: dict, signer: Certificate, digests) -> None:
    """RFC 5035 / RFC 2634: the first ESSCertID(v2) of a signing-certificate
    attribute names the signer's certificate: its hash, and its issuer and
    serial number when given. ValidationError signing_certificate_mismatch
    otherwise; signed_attributes_invalid when the attribute is unreadable."""
    for oid, v2 in ((ATTR_SIGNING_CERTIFICATE_V2, True), (ATTR_SIGNING_CERTIFICATE, False)):
        value = _single_value(attrs, oid, "signing-certificate-v2" if v2 else "signing-certificate")
        if value is None:
            continue
        try:
            first = value["certs"][0]
            hash_oid = first["hash_algorithm"]["algorithm"].dotted if v2 else SHA1
            cert_hash = bytes(first["cert_hash"])
            issuer_serial = first["issuer_serial"]
            serial = issuer_serial["serial_number"].native if issuer_serial.native is not None else None
            names = [g.chosen for g in issuer_serial["issuer"] if g.name == "directory_name"] if serial is not None else []
        except Exception as exc:
            raise ValidationError(SIGNED_ATTRIBUTES_INVALID, f"unreadable signing-certificate attribute: {exc}") from None
        actual = _digest(hash_oid, signer.der, digests)
        if actual is None:
            raise ValidationError(UNSUPPORTED_ALGORITHM, f"unsupported digest algorithm {hash_oid} in the signing-certificate attribute")
        if actual != cert_hash:
            raise ValidationError(SIGNING_CERTIFICATE_MISMATCH, "the signing-certificate attribute names another "
                                  "certificate than the one whose key verifies the signature (its hash differs)",
                                  0, signer.subject_text)
        if serial is not None:
            issuer_key = _name_match_key(asn1_x509.Name.load(signer.issuer_der))
            if serial != signer.serial or not any(_name_match_key(n) == issuer_key for n in names):
                raise ValidationError(SIGNING_CERTIFICATE_MISMATCH, "the signing-certificate attribute's issuer and "
                                      "serial number are not the signer certificate's", 0, signer.subject_text)


def _signer_key_usage_error(cert: Certificate) -> ValidationError | None:
    ku = cert.key_usage
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        return ValidationError(
            E.PURPOSE,
            "the signer certificate's keyUsage allows neither digitalSignature nor nonRepudiation",
            0,
            cert.subject_text,
        )
    return None


def _finish(signer: Certificate, signing_time, scheme, ctype, verifier: Verifier, at, intermediates, chain_options,
            chains: dict | None = None, time_stamp: TimeStamp | None = None):
    summary = signer.summary()
    proof = time_stamp.time if time_stamp is not None and time_stamp.valid else None
    poe = False
    if proof is not None and (at is None or (isinstance(at, str) and at == SIGNING_TIME)):
        # EN 319 102-1 best-signature-time: the proven time, not the claimed one.
        at, poe = proof, True
    elif proof is not None and isinstance(at, dt.datetime) and proof <= at:
        poe = True  # existing at the proof's time, it existed at any later time asked about
    elif isinstance(at, str) and at == SIGNING_TIME:
        if signing_time is None:
            err = ValidationError(
                MISSING_SIGNING_TIME,
                "validation at the signing time was asked for, but the signature carries no signing-time attribute",
            )
            return SignatureResult(False, summary, None, None, err, scheme, ctype, time_stamp)
        at = signing_time
    signed_at_unknown = at is None
    # SignerInfos of one signer (at one time) share its chain's answer within
    # a call: repeating a valid SignerInfo must not repeat the path search.
    chain_key = (signer.sha256, at, poe)
    chain = chains.get(chain_key) if chains is not None else None
    if chain is None:
        chain = verifier.verify(signer, at=at, intermediates=list(intermediates), poe=poe, **chain_options)
        if chains is not None:
            chains[chain_key] = chain
    error = _signer_key_usage_error(signer) or chain.error
    if error is None and not chain.valid:  # pragma: no cover - the verifier always says why
        error = ValidationError(E.NO_PATH, "the signer certificate's chain is not valid", 0, signer.subject_text)
    return SignatureResult(error is None, summary, signing_time, chain, error, scheme, ctype, time_stamp,
                           chain.validation_time, signed_at_unknown)


# --- raw signatures ---------------------------------------------------------------


def _pss(hash_name: str, salt: int) -> bytes:
    return asn1_algos.SignedDigestAlgorithm(
        {
            "algorithm": "rsassa_pss",
            "parameters": {
                "hash_algorithm": {"algorithm": hash_name},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
                "salt_length": salt,
                "trailer_field": "trailer_field_bc",
            },
        }
    ).dump()


def _norm(name: str) -> str:
    return re.sub(r"[-_ /]", "", name).lower()


_NAMED: dict[str, bytes] = {}
for _oid, _names in {
    "1.2.840.113549.1.1.5": ("sha1WithRSAEncryption", "rsa-sha1"),
    "1.2.840.113549.1.1.14": ("sha224WithRSAEncryption", "rsa-sha224"),
    "1.2.840.113549.1.1.11": ("sha256WithRSAEncryption", "rsa-sha256", "RS256"),
    "1.2.840.113549.1.1.12": ("sha384WithRSAEncryption", "rsa-sha384", "RS384"),
    "1.2.840.113549.1.1.13": ("sha512WithRSAEncryption", "rsa-sha512", "RS512"),
    "1.2.840.10045.4.1": ("ecdsa-with-SHA1",),
    "1.2.840.10045.4.3.1": ("ecdsa-with-SHA224",),
    "1.2.840.10045.4.3.2": ("ecdsa-with-SHA256", "ES256"),
    "1.2.840.10045.4.3.3": ("ecdsa-with-SHA384", "ES384"),
    "1.2.840.10045.4.3.4": ("ecdsa-with-SHA512", "ES512"),
    "1.2.840.10040.4.3": ("dsa-with-sha1",),
    "2.16.840.1.101.3.4.3.1": ("dsa-with-sha224",),
    "2.16.840.1.101.3.4.3.2": ("dsa-with-sha256",),
    ED25519_KEY: ("ed25519",),
    ED448_KEY: ("ed448",),
    SM2_WITH_SM3: ("sm2-with-sm3", "sm2sign-with-sm3", "sm2"),
}.items():
    for _n in _names:
        _NAMED[_norm(_n)] = algorithm_identifier(_oid)
for _bits, _hash in ((256, "sha256"), (384, "sha384"), (512, "sha512")):
    _NAMED[_norm(f"rsassa-pss-{_hash}")] = _pss(_hash, _bits // 8)
    _NAMED[_norm(f"PS{_bits}")] = _pss(_hash, _bits // 8)
NAMED_ALGORITHMS: Mapping[str, bytes] = MappingProxyType(_NAMED)
del _oid, _names, _n, _bits, _hash, _NAMED

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


def raw_signature_algorithm(algorithm: str) -> bytes:
    """Signature AlgorithmIdentifier DER for a name ("ecdsa-with-SHA256",
    "sha256WithRSAEncryption", "rsassa-pss-sha256" (MGF1 with the same hash,
    salt = hash length), "ed25519", "sm2-with-sm3", JOSE "ES256"/"RS256"/
    "PS256") or a dotted OID. InputError for names it does not know."""
    if not isinstance(algorithm, str) or not algorithm.strip():
        raise InputError("algorithm: expected a name or an OID")
    algorithm = algorithm.strip()
    if _OID.match(algorithm):
        if algorithm == RSA_PSS:
            raise InputError("algorithm: RSASSA-PSS needs parameters; name it rsassa-pss-sha256/384/512")
        return algorithm_identifier(algorithm)
    found = NAMED_ALGORITHMS.get(_norm(algorithm))
    if found is None:
        raise InputError(f"algorithm: unknown signature algorithm {algorithm!r}")
    return found


def default_signature_algorithm(cert: Certificate, verifier: Verifier) -> bytes:
    """The usual signature algorithm for the certificate's key: RSA PKCS#1
    v1.5 with SHA-256, ECDSA with SHA-256/384/512 by curve size, Ed25519,
    Ed448, SM2 with SM3, DSA with SHA-256. UnsupportedSignatureAlgorithm
    for other keys."""
    key_oid, params, _ = derlib.spki_parts(cert.spki)
    if key_oid == RSA_KEY:
        return algorithm_identifier(_RSA_WITH[SHA256])
    if key_oid in (ED25519_KEY, ED448_KEY):
        return algorithm_identifier(key_oid)
    if key_oid == DSA_KEY:
        return algorithm_identifier(_DSA_WITH[SHA256])
    sm2_curve = asn1_core.ObjectIdentifier(SM2_CURVE).dump()
    if key_oid == SM2_CURVE or (key_oid == EC_KEY and params == sm2_curve):
        return algorithm_identifier(SM2_WITH_SM3)
    if key_oid == EC_KEY:
        key = verifier.registry.public_key(cert.spki)
        size = key.curve.key_size if isinstance(key, ec.EllipticCurvePublicKey) else 256
        digest = SHA256 if size <= 256 else SHA384 if size <= 384 else SHA512
        return algorithm_identifier(_ECDSA_WITH[digest])
    raise UnsupportedSignatureAlgorithm(f"no default signature algorithm for keys of type {key_oid}")


def verify_raw_signature(
    certificate: bytes | str | Certificate,
    signature: bytes,
    data: bytes,
    verifier: Verifier,
    *,
    algorithm: str | None = None,
    at: dt.datetime | str | None = None,
    **chain_options,
) -> SignatureResult:
    """Verify ``signature`` over ``data`` by the key of ``certificate``, then
    the certificate's chain (at ``at``, default now). ``algorithm`` names the
    scheme (see ``raw_signature_algorithm``); None infers it from the key.
    ECDSA signatures may be DER or fixed-size r||s (IEEE P1363 / JOSE)."""
    _check_chain_options(chain_options)
    if isinstance(at, str) and at == SIGNING_TIME:
        raise InputError("at: a raw signature has no signing time; give a time or nothing")
    at = parse_time(at) if at is not None else None
    cert = load_certificate(certificate, "certificate")
    extra = tuple(load_many(chain_options.pop("intermediates", ()) or (), "intermediate"))
    if not isinstance(signature, (bytes, bytearray, memoryview)) or not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError("signature and data must be bytes")
    signature, data = bytes(signature), bytes(data)
    summary = cert.summary()
    sig_alg = raw_signature_algorithm(algorithm) if algorithm is not None else None
    scheme = None
    try:
        if sig_alg is None:
            sig_alg = default_signature_algorithm(cert, verifier)
        scheme = verifier.registry.scheme_name(sig_alg)
        ok = verifier.registry.verify(cert.spki, sig_alg, signature, data)
        if not ok:
            der_sig = _p1363_to_der(cert, signature, verifier)
            ok = der_sig is not None and verifier.registry.verify(cert.spki, sig_alg, der_sig, data)
    except UnsupportedSignatureAlgorithm as exc:
        err = ValidationError(UNSUPPORTED_ALGORITHM, f"cannot verify the signature: {exc}")
        return SignatureResult(False, summary, None, None, err, scheme, validation_time=at or parse_time(None))
    if not ok:
        err = ValidationError(SIGNATURE_INVALID, f"the {scheme} signature does not verify under the certificate's key")
        return SignatureResult(False, summary, None, None, err, scheme, validation_time=at or parse_time(None))
    return _finish(cert, None, scheme, None, verifier, at, extra, chain_options)


def _p1363_to_der(cert: Certificate, signature: bytes, verifier: Verifier) -> bytes | None:
    try:
        key = verifier.registry.public_key(cert.spki)
    except UnsupportedSignatureAlgorithm:
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return None
    size = (key.curve.key_size + 7) // 8
    if len(signature) != 2 * size:
        return None
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    return encode_dss_signature(r, s)


__all__ = [
    "SignatureResult",
    "verify_cms",
    "verify_raw_signature",
    "decode_base64",
    "MalformedCms",
    "raw_signature_algorithm",
    "default_signature_algorithm",
    "signature_algorithm_for",
    "CMS_SIGNATURE_ALGORITHMS",
    "DIGESTS",
    "NAMED_ALGORITHMS",
]
