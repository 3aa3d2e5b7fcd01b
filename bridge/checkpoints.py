"""Signed checkpoints of the audit chain's head, and checking a log against them.

A checkpoint says "the log had N entries, the last one's hash H, at time T",
signed by the bridge's primary key. Copies held elsewhere (fetched from
GET /v1/audit/checkpoints by an auditor, a relying platform, cron) let
``bridgeca audit verify --checkpoints`` find what the hash chain alone cannot:
an edit with every later hash recomputed, a deleted tail with the counter
lowered, an emptied log, entries reordered or inserted.

Why the bridge key and not a dedicated audit key: relying parties already hold
the bridge certificate, so a checkpoint verifies with nothing new to
distribute, and existing homes need no new key. The key already signs online
(every OCSP response, every CRL), so checkpoints expose it no further, and the
signed bytes start with a text context (bridge/audit.py, CHECKPOINT_CONTEXT),
never DER, so a checkpoint signature cannot pass for a certificate's or a CRL's.
"""
from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .audit import CheckpointClaim, checkpoint_message, compare_with_checkpoints
from .signer import certificate_spki, verify_with_spki

if TYPE_CHECKING:  # pragma: no cover
    from .records import CheckpointRecord
    from .service import BridgeCA


class CheckpointSourceError(Exception):
    """The checkpoints could not be read (file, URL or JSON)."""


def _sha256(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def install(ca: "BridgeCA") -> None:
    """Let ``ca``'s store sign the chain head (every ``audit_checkpoint_entries`` entries)."""
    authority = ca.authority

    def sign(entries: int, head: str, at: str) -> tuple[bytes, bytes, str]:
        # bridge/authority.py is the only code that signs.
        signature, algorithm, certificate = authority.sign_checkpoint(checkpoint_message(entries, head, at))
        return signature, algorithm, _sha256(certificate)

    ca.store.checkpoint_every = ca.settings.audit_checkpoint_entries
    ca.store.checkpoint_signer = sign


def view(row: "CheckpointRecord") -> dict:
    return {
        "entries": int(row.entries),
        "head": row.head_hash,
        "at": row.at,
        "algorithm": base64.b64encode(row.algorithm).decode("ascii"),
        "signature": base64.b64encode(row.signature).decode("ascii"),
        "signer_sha256": row.signer_sha256,
    }


def publication(ca: "BridgeCA", limit: int | None = None) -> dict:
    """What GET /v1/audit/checkpoints serves: the checkpoints (oldest first)
    and the certificates that sign them, so a copy verifies on its own."""
    return {
        "signer_certificates": [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in ca.bridge_certificates()],
        "checkpoints": [view(r) for r in ca.store.audit_checkpoints(limit)],
    }


def load(source: str, *, timeout: float = 30.0) -> dict:
    """A checkpoints document from a file or an http(s) URL (what GET /v1/audit/checkpoints returns)."""
    if urllib.parse.urlsplit(source).scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(urllib.request.Request(source, headers={"Accept": "application/json"}),
                                        timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise CheckpointSourceError(f"cannot fetch checkpoints from {source}: {getattr(exc, 'reason', exc)}") from None
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise CheckpointSourceError(f"cannot read checkpoints file {source}: {exc.strerror or exc}") from None
    try:
        document = json.loads(data)
    except ValueError:
        raise CheckpointSourceError(f"{source} is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("checkpoints"), list) \
            or not isinstance(document.get("signer_certificates"), list):
        raise CheckpointSourceError(f"{source} is not a checkpoints document (checkpoints, signer_certificates)")
    return document


def check_signatures(document: dict, trusted: list[x509.Certificate]) -> tuple[list[CheckpointClaim], list[str]]:
    """The checkpoints whose signature verifies under one of the ``trusted``
    certificates (the home's own bridge certificates), and a finding for each
    that does not: a checkpoint nobody can vouch for proves nothing."""
    trusted_by_sha = {_sha256(c): c for c in trusted}
    offered = set()
    for text in document.get("signer_certificates") or []:
        try:
            for pem_certificate in x509.load_pem_x509_certificates(str(text).encode("ascii")):
                offered.add(_sha256(pem_certificate))
        except ValueError:
            pass
    claims, findings = [], []
    for index, item in enumerate(document["checkpoints"], start=1):
        try:
            entries, head, at = int(item["entries"]), str(item["head"]), str(item["at"])
            algorithm = base64.b64decode(item["algorithm"], validate=True)
            signature = base64.b64decode(item["signature"], validate=True)
            signer_sha256 = str(item["signer_sha256"])
        except (KeyError, TypeError, ValueError):
            findings.append(f"checkpoint {index} of the document is malformed")
            continue
        certificate = trusted_by_sha.get(signer_sha256)
        if certificate is None:
            where = "a certificate in the document" if signer_sha256 in offered else "an unknown certificate"
            findings.append(f"checkpoint {index} ({entries} entries, {at}) is signed by {where} that is not this bridge's")
            continue
        if not verify_with_spki(certificate_spki(certificate), algorithm, signature, checkpoint_message(entries, head, at)):
            findings.append(f"checkpoint {index} ({entries} entries, {at}): its signature does not verify")
            continue
        claims.append(CheckpointClaim(entries, head, at))
    return claims, findings


def verify_log(document: dict, trusted: list[x509.Certificate], entries) -> list[str]:
    """Every finding of the checkpoints ``document`` against the log ``entries``."""
    claims, findings = check_signatures(document, trusted)
    return findings + compare_with_checkpoints(entries, claims)
