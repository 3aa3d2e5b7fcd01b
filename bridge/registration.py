"""The registration authority: decides whether a member root may be cross-certified.

Pure decisions, no database and no key: enrollment checks (each failure an
``EnrollmentError`` with a stable code), policy-mapping and name-constraint
parsing, revocation reasons, and the enrollment state machine. The service
asks the store for what the checks need (keys already enrolled) and records
the outcome through it.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from pki import sm2 as pki_sm2

ANY_POLICY = "2.5.29.32.0"
JURISDICTIONS = ("GD", "SZ", "HK", "MO")
ACCEPTED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048
WEAK_HASHES = ("md5", "sha1")

# Enrollment states. A key rollover is a new enrollment for the same member.
PENDING, ACTIVE, REVOKED, EXPIRED, REJECTED = "pending", "active", "revoked", "expired", "rejected"
TRANSITIONS = {
    PENDING: {ACTIVE, REJECTED},
    ACTIVE: {REVOKED, EXPIRED},
    REVOKED: set(),
    EXPIRED: set(),
    REJECTED: set(),
}

# RFC 5280 5.3.1 reason names. certificateHold/removeFromCRL are refused: a
# bridge cuts a member off or it does not.
REVOCATION_REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
}

SUBTREE_TYPES = ("directoryName", "dNSName", "rfc822Name", "uniformResourceIdentifier", "iPAddress")

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class EnrollmentError(Exception):
    """A refused request: ``code`` is stable (snake_case), ``message`` says why in plain words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PolicyMapping:
    bridge_policy: str  # issuerDomainPolicy of the cross-certificate
    member_policy: str  # subjectDomainPolicy

    def to_dict(self) -> dict:
        return {"bridge_policy": self.bridge_policy, "member_policy": self.member_policy}


@dataclass(frozen=True)
class Subtree:
    type: str
    value: str

    def to_dict(self) -> dict:
        return {"type": self.type, "value": self.value}

    def general_name(self) -> x509.GeneralName:
        return subtree_general_name(self)


@dataclass(frozen=True)
class EnrollmentRequest:
    member: str
    jurisdiction: str
    root_certificate: bytes  # PEM or DER
    policy_mappings: Sequence
    permitted_subtrees: Sequence | None = None
    excluded_subtrees: Sequence | None = None
    path_length: int | None = None


@dataclass(frozen=True)
class CheckedEnrollment:
    member: str
    jurisdiction: str
    root: x509.Certificate
    root_der: bytes
    spki_sha256: str
    policy_mappings: tuple[PolicyMapping, ...]
    permitted_subtrees: tuple[Subtree, ...]
    excluded_subtrees: tuple[Subtree, ...]
    path_length: int | None


def load_certificate(data: bytes | str, what: str = "certificate") -> x509.Certificate:
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise EnrollmentError("malformed_certificate", f"the {what} cannot be parsed: {exc}") from exc


def raw_spki(certificate: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo exactly as the certificate encodes it."""
    return asn1_x509.TbsCertificate.load(certificate.tbs_certificate_bytes)["subject_public_key_info"].dump()


class _AlgorithmIdentifier(asn1_core.Sequence):
    _fields = [("algorithm", asn1_core.ObjectIdentifier), ("parameters", asn1_core.Any, {"optional": True})]


class _SubjectPublicKeyInfo(asn1_core.Sequence):
    _fields = [("algorithm", _AlgorithmIdentifier), ("subject_public_key", asn1_core.BitString)]


def canonical_sm2_spki(spki: bytes) -> bytes:
    """An SM2 key in its standard encoding (id-ecPublicKey with the
    sm2p256v1 curve, GM/T 0015), whichever of the encodings real
    certificates carry it in, so the same key is recognised in both."""
    parsed = _SubjectPublicKeyInfo.load(spki)
    return _SubjectPublicKeyInfo(
        {
            "algorithm": _AlgorithmIdentifier(
                {"algorithm": pki_sm2.EC_PUBLIC_KEY_OID, "parameters": asn1_core.ObjectIdentifier(pki_sm2.SM2_CURVE_OID)}
            ),
            "subject_public_key": parsed["subject_public_key"],
        }
    ).dump(force=True)


def spki_der(certificate: x509.Certificate) -> bytes:
    """The certificate's key as SubjectPublicKeyInfo DER in a canonical
    encoding: cryptography's for the keys it knows, the standard SM2 encoding
    for SM2 keys. EnrollmentError for keys of any other type."""
    try:
        return certificate.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (UnsupportedAlgorithm, ValueError):
        spki = raw_spki(certificate)
        if pki_sm2.is_sm2_public_key(spki):
            return canonical_sm2_spki(spki)
        raise EnrollmentError("unsupported_key", "the certificate's public key is of a type that is not accepted") from None


def spki_sha256(certificate: x509.Certificate) -> str:
    return hashlib.sha256(spki_der(certificate)).hexdigest()


def is_sm2_certificate_key(certificate: x509.Certificate) -> bool:
    return pki_sm2.is_sm2_public_key(raw_spki(certificate))


def signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The certificate's signature verifies with the issuer's key, by the
    verifier's own algorithm registry (so SM2-with-SM3 too, where the system
    libcrypto has it)."""
    from .signer import signed_object_verifies

    return signed_object_verifies(certificate.public_bytes(serialization.Encoding.DER), raw_spki(issuer))


def check_certificate_key(certificate: x509.Certificate, what: str = "root") -> None:
    """check_key for a certificate's key, SM2 keys (either encoding) included."""
    if is_sm2_certificate_key(certificate):
        if not pki_sm2.sm2_available():
            raise EnrollmentError(
                "unsupported_key", f"the {what} key is SM2, and this system's libcrypto cannot verify SM2 signatures"
            )
        try:
            pki_sm2.Sm2PublicKey(raw_spki(certificate))
        except Exception as exc:  # InputError: not a point on the curve, trailing bytes, ...
            raise EnrollmentError("unsupported_key", f"the {what} SM2 key cannot be loaded: {exc}") from None
        return
    try:
        public_key = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise EnrollmentError("unsupported_key", f"the {what} key is of a type that is not accepted: {exc}") from None
    check_key(public_key, what)


def check_key(public_key, what: str = "root") -> None:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise EnrollmentError("unsupported_key", f"the {what} key is RSA-{public_key.key_size}; at least RSA-{MIN_RSA_BITS} is required")
        return
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ACCEPTED_CURVES):
            raise EnrollmentError("unsupported_key", f"the {what} key is on curve {public_key.curve.name}; P-256, P-384 or P-521 is required")
        return
    if isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return
    raise EnrollmentError("unsupported_key", f"the {what} key type {type(public_key).__name__} is not accepted")


def check_policy_oid(value: object, field: str) -> str:
    if not isinstance(value, str) or not _OID.match(value.strip()):
        raise EnrollmentError("invalid_policy_mapping", f"{field} {value!r} is not a dotted OID")
    if value.strip() == ANY_POLICY:
        # RFC 5280 4.2.1.5: policies are not mapped to or from anyPolicy.
        raise EnrollmentError("invalid_policy_mapping", f"{field} may not be anyPolicy")
    return value.strip()


def parse_policy_mappings(items) -> tuple[PolicyMapping, ...]:
    if not items:
        raise EnrollmentError("invalid_policy_mapping", "at least one policy mapping (bridge_policy, member_policy) is required")
    mappings: list[PolicyMapping] = []
    for item in items:
        bridge_policy: object
        member_policy: object
        if isinstance(item, PolicyMapping):
            bridge_policy, member_policy = item.bridge_policy, item.member_policy
        elif isinstance(item, dict):
            bridge_policy, member_policy = item.get("bridge_policy"), item.get("member_policy")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            bridge_policy, member_policy = item[0], item[1]
        else:
            raise EnrollmentError("invalid_policy_mapping", f"policy mapping {item!r} is not {{bridge_policy, member_policy}}")
        mapping = PolicyMapping(
            check_policy_oid(bridge_policy, "bridge_policy"), check_policy_oid(member_policy, "member_policy")
        )
        if mapping not in mappings:
            mappings.append(mapping)
    return tuple(mappings)


def subtree_general_name(subtree: Subtree) -> x509.GeneralName:
    kind, value = subtree.type, subtree.value
    try:
        if kind == "directoryName":
            return x509.DirectoryName(x509.Name.from_rfc4514_string(value))
        if kind == "dNSName":
            return x509.DNSName(value)
        if kind == "rfc822Name":
            return x509.RFC822Name(value)
        if kind == "uniformResourceIdentifier":
            return x509.UniformResourceIdentifier(value)
        if kind == "iPAddress":
            return x509.IPAddress(ipaddress.ip_network(value, strict=True))
    except (ValueError, TypeError) as exc:
        raise EnrollmentError("invalid_name_constraints", f"{kind} subtree {value!r} is not valid: {exc}") from exc
    raise EnrollmentError("invalid_name_constraints", f"subtree type {kind!r} is not one of {', '.join(SUBTREE_TYPES)}")


def parse_subtrees(items) -> tuple[Subtree, ...]:
    subtrees: list[Subtree] = []
    for item in items or ():
        if isinstance(item, Subtree):
            subtree = item
        elif isinstance(item, dict) and isinstance(item.get("type"), str) and isinstance(item.get("value"), str):
            subtree = Subtree(item["type"], item["value"])
        else:
            raise EnrollmentError("invalid_name_constraints", f"subtree {item!r} is not {{type, value}}")
        subtree_general_name(subtree)
        subtrees.append(subtree)
    return tuple(subtrees)


def check_validity(certificate: x509.Certificate, now: datetime, min_remaining: timedelta, what: str = "root") -> None:
    if certificate.not_valid_before_utc > now:
        raise EnrollmentError("not_yet_valid", f"the {what} certificate is not valid before {certificate.not_valid_before_utc.isoformat()}")
    if certificate.not_valid_after_utc <= now:
        raise EnrollmentError("expired", f"the {what} certificate expired at {certificate.not_valid_after_utc.isoformat()}")
    if certificate.not_valid_after_utc < now + min_remaining:
        raise EnrollmentError(
            "validity_too_short",
            f"the {what} certificate expires at {certificate.not_valid_after_utc.isoformat()}, "
            f"less than the required {min_remaining.days} days from now",
        )


def check_enrollment(
    request: EnrollmentRequest,
    *,
    now: datetime,
    min_remaining: timedelta,
    jurisdictions: tuple[str, ...] = JURISDICTIONS,
) -> CheckedEnrollment:
    """Every check a submission must pass, in the order a reviewer would make them."""
    member = (request.member or "").strip()
    if not member:
        raise EnrollmentError("invalid_request", "the member name is empty")
    jurisdiction = (request.jurisdiction or "").strip().upper()
    if jurisdiction not in jurisdictions:
        raise EnrollmentError("unknown_jurisdiction", f"jurisdiction {request.jurisdiction!r} is not one of {', '.join(jurisdictions)}")

    root = load_certificate(request.root_certificate, "root certificate")
    if root.subject != root.issuer:
        raise EnrollmentError("not_self_signed", "the root certificate is not self-issued: its issuer differs from its subject")
    check_certificate_key(root)
    try:
        algorithm = root.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None  # SM2-with-SM3 (cryptography knows no such signature): SM3 is not weak
    if algorithm is not None and algorithm.name in WEAK_HASHES:
        raise EnrollmentError("weak_signature_algorithm", f"the root certificate is signed with {algorithm.name}")
    if not signed_by(root, root):
        raise EnrollmentError("signature_invalid", "the root certificate's self-signature does not verify with its own key")

    try:
        basic = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    except ValueError as exc:
        raise EnrollmentError("malformed_certificate", f"the root certificate's extensions cannot be parsed: {exc}") from exc
    if basic is None or not basic.ca:
        raise EnrollmentError("not_a_ca", "the root certificate is not a CA certificate (basicConstraints cA is not set)")
    try:
        usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.key_cert_sign:
        raise EnrollmentError("key_usage", "the root certificate's keyUsage does not allow keyCertSign")

    check_validity(root, now, min_remaining)

    path_length = request.path_length
    if path_length is not None and (not isinstance(path_length, int) or isinstance(path_length, bool) or path_length < 0):
        raise EnrollmentError("invalid_path_length", f"path_length {path_length!r} is not a non-negative integer")

    return CheckedEnrollment(
        member=member,
        jurisdiction=jurisdiction,
        root=root,
        root_der=root.public_bytes(serialization.Encoding.DER),
        spki_sha256=spki_sha256(root),
        policy_mappings=parse_policy_mappings(request.policy_mappings),
        permitted_subtrees=parse_subtrees(request.permitted_subtrees),
        excluded_subtrees=parse_subtrees(request.excluded_subtrees),
        path_length=path_length,
    )


def check_transition(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, set()):
        raise EnrollmentError("invalid_state", f"an enrollment that is {current} cannot become {target}")


def revocation_reason(name: str) -> x509.ReasonFlags:
    try:
        return REVOCATION_REASONS[name]
    except KeyError:
        raise EnrollmentError(
            "invalid_reason", f"revocation reason {name!r} is not one of {', '.join(REVOCATION_REASONS)}"
        ) from None


def check_reverse_certificate(reverse: x509.Certificate, member_root: x509.Certificate, bridge: x509.Certificate, now: datetime,
                              other_bridge_keys: tuple[x509.Certificate, ...] = ()) -> None:
    """A reverse certificate: issued by the member root to the bridge's name
    and key (either key of a dual-key bridge: ``other_bridge_keys`` holds the
    second key's certificate)."""
    if reverse.issuer != member_root.subject:
        raise EnrollmentError("name_chaining", "the reverse certificate's issuer is not the member root's subject")
    if not signed_by(reverse, member_root):
        raise EnrollmentError("signature_invalid", "the reverse certificate is not signed by the member root's key")
    if reverse.subject != bridge.subject:
        raise EnrollmentError("subject_mismatch", "the reverse certificate's subject is not the bridge's")
    try:
        reverse_key = spki_der(reverse)
    except EnrollmentError:
        raise EnrollmentError("key_mismatch", "the reverse certificate's public key is not the bridge's") from None
    if reverse_key not in {spki_der(c) for c in (bridge, *other_bridge_keys)}:
        raise EnrollmentError("key_mismatch", "the reverse certificate's public key is not the bridge's")
    try:
        basic = reverse.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise EnrollmentError("not_a_ca", "the reverse certificate does not make the bridge a CA (basicConstraints cA)")
    check_validity(reverse, now, timedelta(0), what="reverse")
