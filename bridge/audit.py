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
from typing import Iterable, Protocol, Sequence

GENESIS_HASH = "0" * 64


class AuditRecord(Protocol):
    """An audit entry as read (bridge/records.py's AuditEntryRecord): read-only."""

    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def details(self) -> str: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def entry_hash(self) -> str: ...


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


# --------------------------------------------------------------------------- signed checkpoints

# Prefixed so that a checkpoint signature can never be taken for the bridge
# key's signature over a certificate or CRL (their signed bytes are DER,
# which starts with 0x30; this starts with "b").
CHECKPOINT_CONTEXT = b"bridgeca audit checkpoint v1\n"


def checkpoint_message(entries: int, head: str, at: str) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    body = json.dumps({"entries": entries, "head": head, "at": at}, sort_keys=True, separators=(",", ":"))
    return CHECKPOINT_CONTEXT + body.encode("utf-8")


@dataclass(frozen=True)
class CheckpointClaim:
    """What a (signature-checked) checkpoint says: the log had ``entries``
    entries at ``at``, the last one's hash being ``head``."""

    entries: int
    head: str
    at: str


def compare_with_checkpoints(entries: Sequence[AuditRecord], claims: Iterable[CheckpointClaim]) -> list[str]:
    """Findings (one line each) where the log disagrees with checkpoints held
    elsewhere. A rewrite that recomputed every later hash, entries reordered
    or inserted, leave a self-consistent chain whose entry at a checkpoint's
    count no longer has the signed head; a deleted tail (counter lowered) or
    an emptied log leaves fewer entries than a checkpoint covers."""
    by_seq = {e.seq: e for e in entries}
    count = max(by_seq, default=0)
    findings: list[str] = []
    last_good = 0
    rewritten: list[CheckpointClaim] = []
    beyond: list[CheckpointClaim] = []
    for claim in sorted(claims, key=lambda c: (c.entries, c.at)):
        entry = by_seq.get(claim.entries)
        if entry is None and claim.entries > count:
            beyond.append(claim)
        elif entry is None or entry.entry_hash != claim.head:
            rewritten.append(claim)
        elif not rewritten:
            last_good = claim.entries
    if rewritten:
        first = rewritten[0]
        later = f"; {len(rewritten) - 1} later checkpoint(s) disagree too" if len(rewritten) > 1 else ""
        findings.append(f"audit log rewritten between entries {last_good + 1} and {first.entries}: entry {first.entries} "
                        f"is not the head {first.head[:16]} signed in the checkpoint of {first.at}{later}")
    if beyond:
        top = beyond[-1]
        if count == 0:
            findings.append(f"audit log emptied: it has no entries, but the checkpoint of {top.at} covers {top.entries}")
        else:
            findings.append(f"audit log truncated: it has {count} entries, but the checkpoint of {top.at} covers {top.entries} "
                            f"(entries {count + 1} to {top.entries} were deleted)")
    return findings


# --------------------------------------------------------------------------- replay against the state tables

ENROLLMENT_STATUSES = frozenset({"pending", "active", "suspended", "revoked", "expired", "rejected", "withdrawn"})
# Slack between a state row's time (whole seconds, taken in the same
# transaction before the entry) and the entry's own time, for entries that do
# not carry the row's time themselves (written before they did).
_TIME_SLACK_SECONDS = 10


@dataclass
class StateSnapshot:
    """The state tables as replay compares them (bridge/store.py: Store.state_snapshot)."""

    crosses: list[dict]  # serial, enrollment, status, revoked_at (datetime | None), reason
    enrollments: list[dict]  # id, status
    tokens: list[dict]  # id, role, revoked (bool), expires_at (ISO text | None)
    reverses: list[dict]  # enrollment, sha256
    blacklist: list[dict] | None = None  # id, ended (bool); None: no blacklist table


@dataclass
class _Cross:
    enrollment: str | None
    status: str
    revoked_at: str | None = None  # the entry's own time or the one it carries
    exact: bool = False  # revoked_at is the row's time, not the entry's
    reason: str | None = None


def _parse_time(text: str | None):
    from datetime import datetime, timezone

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def replay(entries: Sequence[AuditRecord], state: StateSnapshot) -> list[str]:
    """Replay the log's state-changing entries and compare the result with
    the state tables: one finding (a line) per row that differs. Catches a
    status row edited by SQL (a cross-certificate un-revoked, a token
    un-revoked or given another role, an enrollment reactivated, a reverse
    certificate or a blacklist entry slipped in or removed) while the log
    itself is intact."""
    crosses: dict[str, _Cross] = {}
    enrollments: dict[str, str] = {}
    tokens: dict[int, dict] = {}
    reverses: set[tuple[str, str]] = set()
    blacklist: dict[str, bool] = {}  # id -> ended

    for entry in entries:
        try:
            d = json.loads(entry.details)
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        action = entry.action
        enrollment = d.get("enrollment")
        if action == "key.use" and d.get("serial") and d.get("purpose") != "crl":
            crosses.setdefault(d["serial"], _Cross(enrollment, "reserved"))
        elif action == "certificate.issue" and d.get("serial"):
            crosses[d["serial"]] = _Cross(enrollment, "issued")
        elif action == "certificate.revoke" and d.get("serial"):
            cross = crosses.setdefault(d["serial"], _Cross(enrollment, "issued"))
            carried = d.get("revoked_at")
            cross.status, cross.reason = "revoked", d.get("reason") or "unspecified"
            cross.revoked_at, cross.exact = (carried, True) if carried else (entry.at, False)
            # Store.revoke cuts the member off when none of its certificates stays in force.
            if enrollment and not any(c.enrollment == enrollment and c.status == "issued" for c in crosses.values()):
                enrollments[enrollment] = "revoked"
        elif action == "issuer.suspend":
            for serial in d.get("serials") or []:
                cross = crosses.setdefault(serial, _Cross(enrollment, "issued"))
                cross.status, cross.reason, cross.revoked_at, cross.exact = "held", "certificateHold", entry.at, False
        elif action == "issuer.reinstate":
            for serial in d.get("serials") or []:
                cross = crosses.setdefault(serial, _Cross(enrollment, "held"))
                cross.status, cross.reason, cross.revoked_at, cross.exact = "issued", None, None, False
        elif action == "token.create" and d.get("token_id") is not None:
            tokens[int(d["token_id"])] = {"role": d.get("role"), "revoked": False, "expires_at": d.get("expires_at")}
        elif action == "token.revoke" and d.get("token_id") is not None:
            tokens.setdefault(int(d["token_id"]), {"role": d.get("role"), "expires_at": None})["revoked"] = True
        elif action == "reverse.upload" and enrollment and d.get("sha256"):
            for old in d.get("replaces") or []:
                reverses.discard((enrollment, old))
            reverses.add((enrollment, d["sha256"]))
        elif action in ("reverse.remove", "reverse.replace") and enrollment:
            for old in d.get("sha256s") or d.get("replaced") or ([d["sha256"]] if d.get("sha256") else []):
                reverses.discard((enrollment, old))
        elif action in ("blacklist.add", "blacklist.auto"):
            entry_id = d.get("id") or d.get("entry")
            if entry_id:
                blacklist[str(entry_id)] = False
        elif action == "blacklist.remove":
            entry_id = d.get("id") or d.get("entry")
            if entry_id:
                blacklist[str(entry_id)] = True

        # Enrollment statuses: the submit and approve entries, the generic
        # enrollment.<status> ones, and the lifecycle's, which carry "status".
        if not enrollment:
            continue
        if action == "enrollment.submit":
            enrollments[enrollment] = "pending"
        elif action == "enrollment.approve":
            enrollments[enrollment] = "active"
        elif action.startswith("enrollment.") and action.split(".", 1)[1] in ENROLLMENT_STATUSES:
            enrollments[enrollment] = action.split(".", 1)[1]
        elif action.startswith(("issuer.", "certificate.renew")) and d.get("status") in ENROLLMENT_STATUSES:
            enrollments[enrollment] = d["status"]

    findings: list[str] = []
    seen = set()
    for row in state.crosses:
        serial = row["serial"]
        seen.add(serial)
        expected = crosses.get(serial)
        if expected is None:
            findings.append(f"cross-certificate {serial} ({row['status']}) is in the state tables but the audit log never issued it")
            continue
        if row["status"] != expected.status:
            findings.append(f"cross-certificate {serial} is {row['status']} in the state tables, but the audit log says {expected.status}"
                            + (f" ({expected.reason}, {expected.revoked_at})" if expected.status in ("revoked", "held") else ""))
            continue
        if expected.status in ("revoked", "held"):
            if (row["reason"] or "unspecified") != (expected.reason or "unspecified"):
                findings.append(f"cross-certificate {serial} is revoked with reason {row['reason']} in the state tables, "
                                f"but the audit log says {expected.reason}")
            if not _same_time(row["revoked_at"], expected):
                shown = row["revoked_at"].isoformat() if row["revoked_at"] else None
                findings.append(f"cross-certificate {serial} was revoked at {shown} according to the state tables, "
                                f"but at {expected.revoked_at} according to the audit log")
    for serial, expected in crosses.items():
        if serial not in seen:
            findings.append(f"cross-certificate {serial} ({expected.status} in the audit log) is missing from the state tables")

    state_enrollments = {row["id"]: row["status"] for row in state.enrollments}
    for enrollment_id, status in state_enrollments.items():
        expected_status = enrollments.get(enrollment_id)
        if expected_status is None:
            findings.append(f"enrollment {enrollment_id} ({status}) is in the state tables but the audit log never submitted it")
        elif status != expected_status:
            findings.append(f"enrollment {enrollment_id} is {status} in the state tables, but the audit log says {expected_status}")
    for enrollment_id, expected_status in enrollments.items():
        if enrollment_id not in state_enrollments:
            findings.append(f"enrollment {enrollment_id} ({expected_status} in the audit log) is missing from the state tables")

    state_tokens = {int(row["id"]): row for row in state.tokens}
    for token_id, row in state_tokens.items():
        expected_token = tokens.get(token_id)
        if expected_token is None:
            findings.append(f"API token {token_id} ({row['role']}) is in the state tables but the audit log never created it")
            continue
        if row["revoked"] != expected_token["revoked"]:
            findings.append(f"API token {token_id} is {'revoked' if row['revoked'] else 'not revoked'} in the state tables, "
                            f"but the audit log says {'revoked' if expected_token['revoked'] else 'not revoked'}")
        if expected_token.get("role") and row["role"] != expected_token["role"]:
            findings.append(f"API token {token_id} has role {row['role']} in the state tables, but the audit log created it as {expected_token['role']}")
        if _time_text(row["expires_at"]) != _time_text(expected_token.get("expires_at")):
            findings.append(f"API token {token_id} expires at {row['expires_at'] or 'never'} in the state tables, "
                            f"but the audit log says {expected_token.get('expires_at') or 'never'}")
    for token_id in tokens.keys() - state_tokens.keys():
        findings.append(f"API token {token_id} (in the audit log) is missing from the state tables")

    state_reverses = {(row["enrollment"], row["sha256"]) for row in state.reverses}
    for enrollment_id, sha256 in sorted(state_reverses - reverses):
        findings.append(f"reverse certificate {sha256[:16]} of enrollment {enrollment_id} is in the state tables but the audit log never uploaded it")
    for enrollment_id, sha256 in sorted(reverses - state_reverses):
        findings.append(f"reverse certificate {sha256[:16]} of enrollment {enrollment_id} (in the audit log) is missing from the state tables")

    if state.blacklist is not None:
        state_blacklist = {str(row["id"]): bool(row["ended"]) for row in state.blacklist}
        for entry_id, ended in state_blacklist.items():
            expected_ended = blacklist.get(entry_id)
            if expected_ended is None:
                findings.append(f"blacklist entry {entry_id} is in the state tables but the audit log never added it")
            elif ended != expected_ended:
                findings.append(f"blacklist entry {entry_id} is {'removed' if ended else 'in force'} in the state tables, "
                                f"but the audit log says {'removed' if expected_ended else 'in force'}")
        for entry_id in blacklist.keys() - state_blacklist.keys():
            findings.append(f"blacklist entry {entry_id} (in the audit log) is missing from the state tables")
    return findings


def _time_text(value) -> str | None:
    parsed = value if not isinstance(value, str) else _parse_time(value)
    return parsed.replace(microsecond=0).isoformat() if parsed is not None else None


def _same_time(row_time, expected: _Cross) -> bool:
    logged = _parse_time(expected.revoked_at)
    if row_time is None or logged is None:
        return row_time is None and logged is None
    if expected.exact:
        return row_time.replace(microsecond=0) == logged.replace(microsecond=0)
    # The row's time is taken (whole seconds) before the entry's in the same transaction.
    return -_TIME_SLACK_SECONDS <= (logged - row_time).total_seconds() <= _TIME_SLACK_SECONDS
