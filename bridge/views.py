"""The JSON views of an enrollment (GET /v1/issuers): what the API, the CLI
and the register show of the store's records, rendered in one place."""
from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import translated
from .records import CrossCertificateRecord
from .store import Store, StoreError


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def cross_der(row: CrossCertificateRecord) -> bytes:
    """A handed-out cross-certificate's DER (issued, held and revoked rows have it; only a reservation has none)."""
    if row.der is None:
        raise StoreError(f"cross-certificate {row.serial} is {row.status} but no certificate is stored")
    return row.der


def issuer_view(store: Store, record) -> dict:
    """An enrollment as the API shows it (GET /v1/issuers/{id}); needs the database only."""
    crosses = store.cross_certificates(enrollment_id=record.id)
    return {
        "id": record.id,
        "name": record.member,
        "jurisdiction": record.jurisdiction,
        "status": record.status,
        "root_subject": record.root_subject,
        "root_certificate": pem(x509.load_der_x509_certificate(record.root_der)),
        "policy_mappings": json.loads(record.policy_mappings),
        "permitted_subtrees": json.loads(record.permitted_subtrees),
        "excluded_subtrees": json.loads(record.excluded_subtrees),
        "path_length": record.path_length,
        "replaces": record.replaces_id,
        "created_at": record.created_at.isoformat(),
        "status_history": [
            {"status": h.status, "at": h.at.isoformat(), "reason": h.reason, "serials": json.loads(h.details).get("serials", [])}
            for h in store.status_history(record.id)
        ],
        "cross_certificates": [
            {
                "serial": c.serial,
                "status": c.status,
                "not_before": c.not_before.isoformat() if c.not_before else None,
                "not_after": c.not_after.isoformat() if c.not_after else None,
                "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
                "revocation_reason": c.revocation_reason,
                "certificate": pem(x509.load_der_x509_certificate(cross_der(c))),
            }
            for c in crosses
        ],
    }


def issuers_without_key(home: Path | str) -> list[dict]:
    """GET /v1/issuers as an admin sees it, from the database alone."""
    from .home import store_of

    with store_of(home) as store, translated():
        return [issuer_view(store, r) for r in store.list_enrollments()]


def issuer_without_key(home: Path | str, enrollment_id: str) -> dict:
    from .home import store_of

    with store_of(home) as store, translated():
        return issuer_view(store, store.get_enrollment(enrollment_id))

