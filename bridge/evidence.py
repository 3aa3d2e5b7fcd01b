"""The evidence store: what signed receipts name (bridge/receipts.py), kept by
SHA-256 so that a receipt's hashes can be checked against the bytes they
stand for, served by ``GET /v1/evidence/{sha256}``.

Retention is bounded (settings): an item is kept ``evidence_retention_days``
after the last receipt that named it, and beyond ``evidence_max_bytes`` in
all the least recently named go first. Signed content over
``evidence_content_max_bytes`` is named by its hash only and not kept: the
platform holds its documents; the bridge holds what it judged them by.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from .store import EvidenceRecord, evidence_record, keep_evidence

if TYPE_CHECKING:
    from .settings import BridgeSettings
    from .store import Store

KINDS = ("certificate", "cms", "content", "crl", "ocsp", "timestamp")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Item:
    """One piece of evidence: its kind and bytes."""

    kind: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class EvidenceStore:
    def __init__(self, store: Store, settings: BridgeSettings):
        self._store = store
        self._retention = timedelta(days=settings.evidence_retention_days)
        self._max_bytes = settings.evidence_max_bytes
        self.content_max_bytes = settings.evidence_content_max_bytes

    def keep(self, items: list[Item], now: datetime | None = None) -> None:
        now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        unique = {item.sha256: item for item in items}
        keep_evidence(self._store, [(sha, item.kind, item.data) for sha, item in sorted(unique.items())],
                      now=now, keep_until=now + self._retention, max_bytes=self._max_bytes)

    def get(self, sha256: str, now: datetime | None = None) -> EvidenceRecord | None:
        """The evidence with that SHA-256 (64 hex digits, any case); None if unknown, expired or not a hash."""
        sha256 = sha256.lower()
        if not SHA256_HEX.match(sha256):
            return None
        return evidence_record(self._store, sha256, now=now or datetime.now(timezone.utc))
