"""The hash-chained audit log: what an entry's hash covers, and how to verify a chain.

Each entry carries the hash of the previous entry, so editing an entry breaks
its own hash, and deleting one breaks the link of the next (or, for the last
entry, leaves the sequence short of the store's audit counter). Appending is
the store's job (bridge/store.py), because the sequence number and the
previous hash must be taken under the same database lock as the write.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Protocol

GENESIS_HASH = "0" * 64


class AuditRecord(Protocol):
    seq: int
    at: str
    actor: str
    action: str
    details: str
    prev_hash: str
    entry_hash: str


def canonical_details(details: dict) -> str:
    """The one serialisation of details that goes into the log and its hash."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(seq: int, at: str, actor: str, action: str, details: str, prev_hash: str) -> str:
    # Length-prefixed JSON array: no two different entries serialise alike.
    material = json.dumps([seq, at, actor, action, details, prev_hash], separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditFinding:
    intact: bool
    entries: int
    message: str
    seq: int | None = None


def verify_chain(entries: Iterable[AuditRecord], expected_count: int | None = None) -> AuditFinding:
    """Check sequence, links and hashes of ``entries`` (in seq order).

    ``expected_count`` is the store's audit counter: when the last entries are
    deleted, the chain that is left is self-consistent, and only the counter
    shows that entries are missing.
    """
    prev = GENESIS_HASH
    count = 0
    for expected_seq, entry in enumerate(entries, start=1):
        count += 1
        if entry.seq != expected_seq:
            return AuditFinding(False, count, f"audit entry {expected_seq} is missing (next present is {entry.seq})", expected_seq)
        if entry.prev_hash != prev:
            return AuditFinding(False, count, f"audit entry {entry.seq} does not link to entry {entry.seq - 1}", entry.seq)
        recomputed = entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.details, entry.prev_hash)
        if recomputed != entry.entry_hash:
            return AuditFinding(False, count, f"audit entry {entry.seq} ({entry.action}) was altered: its hash does not match", entry.seq)
        prev = entry.entry_hash
    if expected_count is not None and expected_count != count:
        return AuditFinding(False, count, f"audit log has {count} entries but {expected_count} were appended", count + 1)
    return AuditFinding(True, count, f"audit log intact: {count} entries, head {prev[:16]}")
