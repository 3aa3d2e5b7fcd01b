"""The federation's blacklist (黑名单): what an entry may say, how it is
stored, what of it is public, and what it refuses.

Four kinds, as ``pki.blocklist`` matches them: ``spki_sha256`` (a key),
``certificate_sha256`` (one certificate), ``issuer_serial`` (an issuer name
and serial) and ``subject_identity`` (a subject attribute, e.g. the unified
social credit code in organizationIdentifier 2.5.4.97 or serialNumber
2.5.4.5). Each entry's value is stored as canonical JSON, so one value has
one spelling (and an entry in force is not added twice).

Public: every field but the internal note and the evidence reference (a case
file is not for relying parties). The published document is deterministic
JSON of the public views; the store keeps one signature per distinct
document, so every worker serves the same signed bytes.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki import blocklist as pki_blocklist
from pki.errors import InputError
from pki.loading import load_certificate as load_pki_certificate

from .registration import EnrollmentError, load_certificate, raw_spki, spki_sha256

KINDS = pki_blocklist.KINDS
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_SERIAL = re.compile(r"^[0-9a-f]{1,40}$")
# Subject attributes an identity entry may name by name (the OID is always accepted).
IDENTITY_ATTRIBUTES = {
    "organizationIdentifier": "2.5.4.97",  # e.g. the unified social credit code (统一社会信用代码)
    "serialNumber": "2.5.4.5",
    "commonName": "2.5.4.3",
    "organizationName": "2.5.4.10",
    "emailAddress": "1.2.840.113549.1.9.1",
}
DOCUMENT_VERSION = 1


class BlacklistError(EnrollmentError):
    """An entry that cannot be stored as given (code ``invalid_blacklist_entry``)."""

    def __init__(self, message: str):
        super().__init__("invalid_blacklist_entry", message)


@dataclass(frozen=True)
class EntryValue:
    kind: str
    value: object  # str (hex) | {"issuer", "serial"} | {"oid", "value"}

    @property
    def stored(self) -> str:
        return json.dumps(self.value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hex_digest(text, kind: str) -> str:
    if not isinstance(text, str) or not _HEX64.match(text.strip().lower().replace(":", "")):
        raise BlacklistError(f"a {kind} value is a SHA-256 digest: 64 hexadecimal digits")
    return text.strip().lower().replace(":", "")


def parse_entry_value(kind: str, value, certificate: bytes | str | None = None) -> EntryValue:
    """The canonical value of an entry of ``kind``, from ``value`` or from a
    ``certificate`` (PEM or DER) for the kinds a certificate determines."""
    if kind not in KINDS:
        raise BlacklistError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if certificate is not None:
        if value is not None:
            raise BlacklistError("give value or certificate, not both")
        cert = load_certificate(certificate, "certificate")
        if kind == pki_blocklist.SPKI_SHA256:
            return EntryValue(kind, hashlib.sha256(raw_spki(cert)).hexdigest())
        if kind == pki_blocklist.CERTIFICATE_SHA256:
            return EntryValue(kind, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest())
        if kind == pki_blocklist.ISSUER_SERIAL:
            return EntryValue(kind, {"issuer": cert.issuer.rfc4514_string(), "serial": format(cert.serial_number, "x")})
        raise BlacklistError("a subject_identity entry names an attribute and a value, not a certificate")
    if value is None:
        raise BlacklistError("an entry needs a value (or a certificate)")
    if kind in (pki_blocklist.SPKI_SHA256, pki_blocklist.CERTIFICATE_SHA256):
        return EntryValue(kind, _hex_digest(value, kind))
    if not isinstance(value, dict):
        raise BlacklistError(f"a {kind} value is an object: " + ("{issuer, serial}" if kind == pki_blocklist.ISSUER_SERIAL else "{oid, value}"))
    if kind == pki_blocklist.ISSUER_SERIAL:
        if set(value) != {"issuer", "serial"}:
            raise BlacklistError("an issuer_serial value is {issuer (RFC 4514), serial (hexadecimal)}")
        issuer, serial = value["issuer"], value["serial"]
        try:
            name = x509.Name.from_rfc4514_string(issuer) if isinstance(issuer, str) and issuer.strip() else None
        except ValueError:
            name = None
        if name is None or not len(name):
            raise BlacklistError(f"issuer {issuer!r} is not an RFC 4514 name")
        serial_text = serial.strip().lower().replace(":", "") if isinstance(serial, str) else ""
        if not _SERIAL.match(serial_text) or int(serial_text, 16) == 0:
            raise BlacklistError(f"serial {serial!r} is not a positive hexadecimal serial number of at most 20 octets")
        return EntryValue(kind, {"issuer": name.rfc4514_string(), "serial": format(int(serial_text, 16), "x")})
    if set(value) != {"oid", "value"}:
        raise BlacklistError("a subject_identity value is {oid (dotted, or a name such as organizationIdentifier), value}")
    oid = IDENTITY_ATTRIBUTES.get(value["oid"], value["oid"]) if isinstance(value["oid"], str) else None
    if oid is None or not _OID.match(oid):
        raise BlacklistError(f"oid {value['oid']!r} is not a dotted OID or one of {', '.join(IDENTITY_ATTRIBUTES)}")
    text = value["value"]
    if not isinstance(text, str) or not text.strip():
        raise BlacklistError("a subject_identity value's value is a non-empty string")
    return EntryValue(kind, {"oid": oid, "value": text.strip()})


def check_effective_at(effective_at: datetime | None, now: datetime) -> datetime | None:
    """An entry takes effect when it is stored or earlier (a compromise found
    later is dated back): verifiers are rebuilt per epoch, which a date
    arriving later would not bump."""
    if effective_at is None:
        return None
    if effective_at.tzinfo is None:
        raise BlacklistError("effective_at needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    if effective_at.astimezone(timezone.utc) > now:
        raise BlacklistError("effective_at may not be in the future")
    return effective_at.astimezone(timezone.utc).replace(microsecond=0)


def _stored_value(row):
    return json.loads(row.value)


def state(row) -> str:
    return "removed" if row.ended_at is not None else "active"


def public_view(row) -> dict:
    """What anyone may see of an entry: never the internal note or the evidence reference."""
    return {
        "id": row.id,
        "kind": row.kind,
        "value": _stored_value(row),
        "reason": row.reason,
        "public_note": row.public_note,
        "effective_at": row.effective_at.isoformat(),
        "source": row.source,
        "status": state(row),
        "removed_at": row.ended_at.isoformat() if row.ended_at else None,
    }


def admin_view(row) -> dict:
    return {
        **public_view(row),
        "internal_note": row.internal_note,
        "evidence": row.evidence,
        "author": row.author,
        "created_at": row.created_at.isoformat(),
        "removed_by": row.ended_by,
        "removal_reason": row.end_reason,
        "enrollment": row.enrollment_id,
    }


def document(rows, bridge_certificate: x509.Certificate) -> bytes:
    """The published list: deterministic JSON (UTF-8), a function of the entries alone."""
    changed = [r.created_at for r in rows] + [r.ended_at for r in rows if r.ended_at is not None]
    body = {
        "version": DOCUMENT_VERSION,
        "issuer": bridge_certificate.subject.rfc4514_string(),
        "issuer_certificate_sha256": hashlib.sha256(bridge_certificate.public_bytes(serialization.Encoding.DER)).hexdigest(),
        "updated_at": max(changed).isoformat() if changed else None,
        "entries": [public_view(r) for r in rows],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def in_force(rows, now: datetime | None = None):
    now = now or datetime.now(timezone.utc)
    return [r for r in rows if r.ended_at is None and r.effective_at <= now]


def blocklist(rows, enrollments=()) -> pki_blocklist.Blocklist:
    """The ``pki`` blocklist of the entries in force. A key entry also lists,
    for each enrolled root with that key, the key as that root encodes it
    (an SM2 key has two encodings; pki matches the encoded bytes)."""
    entries = []
    for row in in_force(rows):
        value = _stored_value(row)
        if row.kind == pki_blocklist.ISSUER_SERIAL:
            value = (value["issuer"], value["serial"])
        elif row.kind == pki_blocklist.SUBJECT_IDENTITY:
            value = (value["oid"], value["value"])
        entries.append((row.kind, value, row.id, row.reason))
        if row.kind == pki_blocklist.SPKI_SHA256:
            for record in enrollments:
                if record.spki_sha256 == value:
                    raw = hashlib.sha256(raw_spki(x509.load_der_x509_certificate(record.root_der))).hexdigest()
                    if raw != value:
                        entries.append((row.kind, raw, row.id, row.reason))
    return pki_blocklist.Blocklist(entries)


def refusal(root: x509.Certificate, rows, enrollments=()) -> str | None:
    """Why a root may not be enrolled (or approved), or None: its key, the
    certificate, its issuer and serial, or a subject attribute is listed."""
    listed = blocklist(rows, enrollments)
    if not len(listed):
        return None
    der = root.public_bytes(serialization.Encoding.DER)
    try:
        hit = listed.match(load_pki_certificate(der))
    except InputError:
        hit = None
    if hit is not None:
        return f"the root is on the blacklist (entry {hit.id}, {hit.kind.replace('_', ' ')}: {hit.reason})"
    canonical = spki_sha256(root)  # the key in the encoding enrollments record
    for row in in_force(rows):
        if row.kind == pki_blocklist.SPKI_SHA256 and _stored_value(row) == canonical:
            return f"the root is on the blacklist (entry {row.id}, spki sha256: {row.reason})"
    return None
