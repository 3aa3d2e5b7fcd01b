"""A relying party's blocklist (the federation's blacklist, 黑名单): keys,
certificates, issuer-and-serial pairs and subject identities that no path
may contain, whatever their signatures and statuses say.

Pure data: the bridge loads its entries from its database and gives a
``Blocklist`` to the ``Verifier`` it builds for an epoch (a change to the
list bumps the epoch, so caches built on an older list are never used).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from cryptography import x509

from .certificate import Certificate
from .errors import InputError
from .names import name_key, normalise_value

# Entry kinds, as the bridge stores them.
SPKI_SHA256 = "spki_sha256"  # hex SHA-256 of the DER SubjectPublicKeyInfo
CERTIFICATE_SHA256 = "certificate_sha256"  # hex SHA-256 of the DER certificate
ISSUER_SERIAL = "issuer_serial"  # (issuer as an RFC 4514 string or x509.Name, serial int or hex string)
SUBJECT_IDENTITY = "subject_identity"  # (attribute OID, value): e.g. organizationIdentifier 2.5.4.97
KINDS = (SPKI_SHA256, CERTIFICATE_SHA256, ISSUER_SERIAL, SUBJECT_IDENTITY)


@dataclass(frozen=True)
class BlocklistEntry:
    id: str
    kind: str
    reason: str | None = None


def _hex_digest(value) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
    except (TypeError, ValueError):
        raise InputError(f"blocklist: {value!r} is not a hex SHA-256 digest") from None
    if len(raw) != 32:
        raise InputError(f"blocklist: {value!r} is not a SHA-256 digest (32 bytes)")
    return raw


def _normalised(text: str) -> str:
    # RFC 5280 7.1 comparison of a string attribute (case, spaces, NFKC).
    return str(normalise_value(text))


class Blocklist:
    """Entries indexed for a lookup per certificate. Immutable once built."""

    def __init__(self, entries: Iterable[tuple[str, Any, str, "str | None"]] = ()) -> None:
        """``entries``: (kind, value, entry id, reason)."""
        self._spki: dict[bytes, BlocklistEntry] = {}
        self._certs: dict[bytes, BlocklistEntry] = {}
        self._issuer_serial: dict[tuple, BlocklistEntry] = {}
        self._subjects: dict[tuple[str, str], BlocklistEntry] = {}
        for kind, value, entry_id, reason in entries:
            entry = BlocklistEntry(str(entry_id), kind, reason)
            if kind == SPKI_SHA256:
                self._spki[_hex_digest(value)] = entry
            elif kind == CERTIFICATE_SHA256:
                self._certs[_hex_digest(value)] = entry
            elif kind == ISSUER_SERIAL:
                issuer, serial = value
                try:
                    name = x509.Name.from_rfc4514_string(issuer) if isinstance(issuer, str) else issuer
                    number = int(serial, 16) if isinstance(serial, str) else int(serial)
                except (TypeError, ValueError) as exc:
                    raise InputError(f"blocklist: bad issuer and serial {value!r}: {exc}") from None
                self._issuer_serial[(name_key(name), number)] = entry
            elif kind == SUBJECT_IDENTITY:
                oid, text = value
                self._subjects[(str(oid), _normalised(str(text)))] = entry
            else:
                raise InputError(f"blocklist: unknown entry kind {kind!r} (one of {', '.join(KINDS)})")
        self._subject_oids = frozenset(oid for oid, _ in self._subjects)

    def __len__(self) -> int:
        return len(self._spki) + len(self._certs) + len(self._issuer_serial) + len(self._subjects)

    def match(self, cert: Certificate) -> BlocklistEntry | None:
        """The entry ``cert`` falls under, if any."""
        if self._certs:
            hit = self._certs.get(cert.sha256)
            if hit is not None:
                return hit
        if self._spki:
            hit = self._spki.get(cert._derived("spki_sha256", lambda: hashlib.sha256(cert.spki).digest()))
            if hit is not None:
                return hit
        if self._issuer_serial:
            hit = self._issuer_serial.get((cert.issuer_key, cert.serial))
            if hit is not None:
                return hit
        if self._subject_oids:
            if cert.subject_defect:
                # A subject that cannot be read cannot be cleared either.
                return BlocklistEntry("undecodable-subject", SUBJECT_IDENTITY, cert.subject_defect)
            for rdn in cert.subject.rdns:
                for attr in rdn:
                    oid = attr.oid.dotted_string
                    if oid in self._subject_oids and isinstance(attr.value, str):
                        hit = self._subjects.get((oid, _normalised(attr.value)))
                        if hit is not None:
                            return hit
        return None
