"""What the store hands out: plain, immutable records with timezone-aware
times, one per table (bridge/store.py's SQLModel rows never leave it).

A stored row always has its primary key, so ``id`` is never None here.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EnrollmentRecord:
    """One member root submitted to the bridge (a key rollover is a new record for the same member)."""

    id: str
    member: str
    jurisdiction: str
    status: str
    root_der: bytes
    root_subject: str
    spki_sha256: str
    policy_mappings: str
    permitted_subtrees: str
    excluded_subtrees: str
    path_length: int | None
    replaces_id: str | None
    created_at: datetime
    updated_at: datetime
    owner_token_id: int | None


@dataclass(frozen=True)
class CrossCertificateRecord:
    """A certificate the bridge issued to a member root: ``reserved`` (no DER yet), ``issued``, ``held``, ``revoked``."""

    id: int
    serial: str
    enrollment_id: str
    status: str
    tbs_sha256: str
    der: bytes | None
    not_before: datetime | None
    not_after: datetime | None
    reserved_at: datetime
    issued_at: datetime | None
    revoked_at: datetime | None
    revocation_reason: str | None
    expiry_warned_at: datetime | None


@dataclass(frozen=True)
class StatusChangeRecord:
    """One change of an enrollment's status (the status history, the public register)."""

    id: int
    enrollment_id: str
    status: str
    at: datetime
    reason: str
    actor: str
    details: str


@dataclass(frozen=True)
class ReverseCertificateRecord:
    """A certificate a member root issued to the bridge."""

    id: int
    enrollment_id: str
    sha256: str
    der: bytes
    not_after: datetime
    created_at: datetime


@dataclass(frozen=True)
class BlacklistEntryRecord:
    """One blacklist entry; ``ended_at`` is set when it was removed."""

    id: str
    kind: str
    value: str
    reason: str
    public_note: str
    internal_note: str
    evidence: str
    effective_at: datetime
    author: str
    source: str
    enrollment_id: str | None
    created_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None


@dataclass(frozen=True)
class BlacklistPublicationRecord:
    """A signed publication of the blacklist: the JSON bytes and their detached CMS signature."""

    sha256: str
    document: bytes
    signature: bytes
    created_at: datetime


@dataclass(frozen=True)
class TrustListIssueRecord:
    """One issued trust list of this bridge: both forms' exact signed bytes."""

    sequence: int
    content_sha256: str
    issued_at: datetime
    next_update: datetime
    xml: bytes | None
    xml_problem: str | None
    json_document: bytes
    json_signature: bytes


@dataclass(frozen=True)
class ApiTokenRecord:
    """An API token (its SHA-256 only)."""

    id: int
    role: str
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class AuditEntryRecord:
    """One entry of the hash-chained audit log (``at`` is the ISO 8601 text hashed)."""

    seq: int
    at: str
    actor: str
    action: str
    details: str
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class ExternalTrustListRecord:
    """A TS 119 612 list of another scheme that the bridge recognises."""

    id: str
    name: str
    url: str | None
    allowed_signers: str
    mapping: str
    status: str
    created_at: datetime
    created_by: str
    last_fetch_at: datetime | None
    last_fetch_error: str | None


@dataclass(frozen=True)
class TrustListVersionRecord:
    """One accepted version of an external list, whole."""

    id: int
    list_id: str
    sequence_number: int
    issued_at: datetime
    next_update: datetime | None
    xml: bytes
    sha256: str
    signature: str
    schema_check: str
    accepted_at: datetime
    source: str


@dataclass(frozen=True)
class ProposalRecord:
    """An admin action waiting for (or decided by) a second administrator."""

    id: str
    action: str
    params: str
    proposer: str
    created_at: datetime
    expires_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    outcome: str | None


@dataclass(frozen=True)
class CheckpointRecord:
    """A signed statement of the audit chain's head."""

    id: int
    entries: int
    head_hash: str
    at: str
    algorithm: bytes
    signature: bytes
    signer_sha256: str


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str


@dataclass(frozen=True)
class CrlRecord:
    number: int
    der: bytes
    this_update: datetime
    next_update: datetime
