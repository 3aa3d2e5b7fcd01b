"""Validation profiles, trust-anchor constraints and purposes.

``strict`` (the default) adds to the RFC 5280 6.1 algorithm the section-4
rules that conforming CAs MUST follow, so that a certificate no conforming CA
could have issued is not called valid; ``rfc5280`` is 6.1 alone, for
platforms that need leniency. Each rule is checked once per parsed
certificate (the answer is kept with it) and fails with
``malformed_certificate``, its message naming the rule.

Trust-anchor constraints (RFC 5937) and purposes (key usage, extended key
usage, chain depth) are the relying party's own requirements; they are
checked in pki/validation.py with the helpers here.
"""
from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from .certificate import Certificate, KeyUsage

STRICT = "strict"
RFC5280 = "rfc5280"
PROFILES = (STRICT, RFC5280)

_AKI = ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string
_SKI = ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string
_AIA = ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string
_SAN = ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string
_NC = ExtensionOID.NAME_CONSTRAINTS.dotted_string
_BC = ExtensionOID.BASIC_CONSTRAINTS.dotted_string
_EMPTY_NAME = b"\x30\x00"

ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0"

# KeyUsage bit names as RFC 5280 4.2.1.3 spells them (and cryptography's).
KEY_USAGE_NAMES = {
    "digitalSignature": "digital_signature",
    "nonRepudiation": "content_commitment",
    "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "keyCertSign": "key_cert_sign",
    "cRLSign": "crl_sign",
}

# Names accepted for extended_key_usage, besides dotted OIDs.
EXTENDED_KEY_USAGE_NAMES = {
    "serverAuth": "1.3.6.1.5.5.7.3.1",
    "clientAuth": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3",
    "emailProtection": "1.3.6.1.5.5.7.3.4",
    "timeStamping": "1.3.6.1.5.5.7.3.8",
    "OCSPSigning": "1.3.6.1.5.5.7.3.9",
    "ocspSigning": "1.3.6.1.5.5.7.3.9",
    # RFC 9336: id-kp-documentSigning.
    "documentSigning": "1.3.6.1.5.5.7.3.36",
    "anyExtendedKeyUsage": ANY_EXTENDED_KEY_USAGE,
}

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")
_LOCAL_PART = re.compile(r"[^\s@\"(),:;<>\[\\\]]+\Z")


def _dns_name(name: str, wildcard: bool) -> bool:
    """RFC 1034's preferred name syntax, as RFC 5280 4.2.1.6 requires of a
    dNSName (underscores tolerated, as real names carry them); a leftmost
    ``*`` label when ``wildcard``."""
    if not name or len(name) > 253 or not name.isascii():
        return False
    labels = name.split(".")
    if wildcard and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    return all(_LABEL.match(label) for label in labels)


def _mailbox(value: str) -> bool:
    """An RFC 5322 addr-spec in its plain form (RFC 5280 4.2.1.6)."""
    local, at, domain = value.rpartition("@")
    return bool(at) and bool(local) and _LOCAL_PART.match(local) is not None and _dns_name(domain, False)


def _name_constraint_problem(subtree: x509.GeneralName) -> str | None:
    # RFC 5280 4.2.1.10: a dNSName constraint is a host name ("host.example.com");
    # labels are added to its left, so a wildcard or a leading period has no
    # meaning there. An empty one (every name) is allowed.
    if isinstance(subtree, x509.DNSName):
        value = subtree.value
        if value and not _dns_name(value, False):
            return f"dNSName constraint {value!r} is not a host name (no wildcard or leading period allowed)"
    # An rfc822Name constraint is a mailbox, a host, or ".domain".
    elif isinstance(subtree, x509.RFC822Name):
        value = subtree.value
        ok = _mailbox(value) if "@" in value else _dns_name(value[1:] if value.startswith(".") else value, False)
        if not ok:
            return f"rfc822Name constraint {value!r} is neither a mailbox, a host nor a domain"
    # An iPAddress constraint is an address and a mask; cryptography refuses a
    # mask that is not a prefix when it decodes the extension, so such a
    # certificate is malformed (Certificate.defect) in every profile.
    return None


def _alt_name_problem(name: x509.GeneralName) -> str | None:
    # RFC 5280 4.2.1.6: dNSName in preferred name syntax, " " forbidden;
    # rfc822Name an addr-spec.
    if isinstance(name, x509.DNSName):
        if not _dns_name(name.value, True):
            return f"subjectAltName dNSName {name.value!r} is not a valid host name"
    elif isinstance(name, x509.RFC822Name):
        if not _mailbox(name.value):
            return f"subjectAltName rfc822Name {name.value!r} is not a valid email address"
    return None


def strict_violation(cert: Certificate) -> str | None:
    """The first RFC 5280 section-4 MUST that ``cert`` (a certificate on a
    path, not its trust anchor) breaks, in plain words; None when it breaks
    none. Kept with the certificate: it is parsed once and immutable."""
    # Kept in the certificate's cache by hand: this runs for every new leaf.
    cache = cert._cache
    found = cache.get("strict_violation", cache)
    if found is cache:
        found = cache["strict_violation"] = _strict_violation(cert)
    return found


def _strict_violation(cert: Certificate) -> str | None:
    critical = cert.critical_extensions
    is_ca = cert.is_ca is True
    # 4.1.2.2: a positive integer of at most 20 octets.
    if cert.serial <= 0:
        return "the serial number is not a positive integer"
    if (cert.serial.bit_length() + 8) // 8 > 20:
        return "the serial number is longer than 20 octets"
    # 4.2.1.1: keyIdentifier in every certificate but a self-signed one; non-critical.
    if _AKI in critical:
        return "the authorityKeyIdentifier extension is marked critical"
    if cert.authority_key_id is None and not cert.is_self_issued:
        return "the authorityKeyIdentifier extension (with a keyIdentifier) is missing"
    # 4.2.1.2: in every CA certificate; non-critical.
    if _SKI in critical:
        return "the subjectKeyIdentifier extension is marked critical"
    if is_ca and cert.subject_key_id is None:
        return "a CA certificate without the subjectKeyIdentifier extension"
    # 4.2.2.1: authorityInfoAccess non-critical.
    if _AIA in critical:
        return "the authorityInfoAccess extension is marked critical"
    # 4.1.2.6 and 4.2.1.6: an empty subject needs a critical subjectAltName.
    if cert.subject_der == _EMPTY_NAME:
        if cert.subject_alt_names is None:
            return "the subject is empty and there is no subjectAltName extension"
        if _SAN not in critical:
            return "the subject is empty and the subjectAltName extension is not marked critical"
    # 4.2.1.3: keyCertSign only with cA set.
    if not is_ca and cert.key_usage is not None and cert.key_usage.key_cert_sign:
        return "keyUsage asserts keyCertSign in a certificate that is not a CA (basicConstraints cA is not set)"
    # 4.2.1.10: only in CA certificates, and critical.
    if cert.name_constraints is not None:
        if not is_ca:
            return "the nameConstraints extension appears in a certificate that is not a CA"
        if _NC not in critical:
            return "the nameConstraints extension is not marked critical"
        nc = cert.name_constraints
        for subtree in (*(nc.permitted_subtrees or ()), *(nc.excluded_subtrees or ())):
            problem = _name_constraint_problem(subtree)
            if problem:
                return problem
    for name in cert.subject_alt_names or ():
        problem = _alt_name_problem(name)
        if problem:
            return problem
    return None


def anchor_problem(anchor: Certificate, at, issues_certificates: bool) -> str | None:
    """Why ``anchor`` cannot serve as a trust anchor at ``at`` when its
    certificate's own constraints are honoured (RFC 5937); None when it can.
    ``issues_certificates``: the anchor signed the next certificate of the
    path (an anchor that is the target itself need not be a CA)."""
    if at < anchor.not_before:
        return f"the trust anchor is not valid before {_time(anchor.not_before)}; validation time is {_time(at)}"
    if at > anchor.not_after:
        return f"the trust anchor expired at {_time(anchor.not_after)}; validation time is {_time(at)}"
    if anchor.unhandled_critical:
        return f"the trust anchor carries an unrecognised critical extension {', '.join(anchor.unhandled_critical)}"
    if issues_certificates:
        # RFC 5280 4.2.1.9: a CA's basicConstraints is present, critical, cA
        # set; 4.2.1.3: keyCertSign when keyUsage is present.
        if anchor.is_ca is None:
            return "the trust anchor is not a CA certificate (basicConstraints is absent)"
        if anchor.is_ca is not True:
            return "the trust anchor is not a CA certificate (basicConstraints says it is not a CA)"
        if _BC not in anchor.critical_extensions:
            return "the trust anchor's basicConstraints extension is not marked critical"
        if anchor.key_usage is not None and not anchor.key_usage.key_cert_sign:
            return "the trust anchor's keyUsage does not allow certificate signing (keyCertSign)"
    return None


def key_usage_problem(cert: Certificate, required: frozenset[str]) -> str | None:
    """Every bit in ``required`` (attribute names of KeyUsage) must be set
    when the certificate has keyUsage; without it, RFC 5280 4.2.1.3 puts no
    restriction on the key."""
    ku = cert.key_usage
    if not required or ku is None:
        return None
    missing = [name for name, attr in KEY_USAGE_NAMES.items()
               if attr in required and not getattr(ku, attr) and name != "contentCommitment"]
    if missing:
        return f"keyUsage does not allow {', '.join(missing)}, which this verification requires"
    return None


def parse_key_usage(names) -> frozenset[str]:
    from .errors import InputError

    out = set()
    for name in names or ():
        attr = KEY_USAGE_NAMES.get(name)
        if attr is None:
            raise InputError(f"key_usage: unknown keyUsage name {name!r} (one of {', '.join(KEY_USAGE_NAMES)})")
        out.add(attr)
    return frozenset(out)


def parse_extended_key_usage(names) -> frozenset[str]:
    from .errors import InputError

    out = set()
    for name in names or ():
        oid = EXTENDED_KEY_USAGE_NAMES.get(name, name) if isinstance(name, str) else ""
        parts = oid.split(".")
        if len(parts) < 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 2:
            raise InputError(f"extended_key_usage: {name!r} is neither an OID nor a known purpose name")
        out.add(oid)
    return frozenset(out)


def _time(t) -> str:
    import datetime as dt

    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "PROFILES", "STRICT", "RFC5280", "strict_violation", "anchor_problem", "key_usage_problem",
    "parse_key_usage", "parse_extended_key_usage", "KeyUsage", "ANY_EXTENDED_KEY_USAGE",
]
