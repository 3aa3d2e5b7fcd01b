"""The storage authority: the only module that touches the database.

SQLModel tables, schema migrations (Alembic, applied programmatically), and
the transactions the bridge needs. Every write that matters appends to the
hash-chained audit log in the same transaction, so a write and its audit
entry are committed together or not at all.

Concurrency: two counters serialise what must be ordered. ``crl`` allocates
CRL numbers: a revocation takes it first (a row lock on PostgreSQL, the
database write lock on SQLite), so the CRL it signs sees every revocation
committed before it and its number is larger than theirs. ``audit`` orders
the audit chain the same way. The lock order is always crl, then audit.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence, overload

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from . import audit as audit_chain
from . import clock
from .records import (
    ApiTokenRecord,
    AuditEntryRecord,
    BlacklistEntryRecord,
    BlacklistPublicationRecord,
    CheckpointRecord,
    CrlRecord,
    CrossCertificateRecord,
    EnrollmentRecord,
    ExternalTrustListRecord,
    ProposalRecord,
    ReverseCertificateRecord,
    RevokedEntry,
    StatusChangeRecord,
    TrustListIssueRecord,
    TrustListVersionRecord,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """The database could not do what was asked (refused a write, unreachable, ...)."""


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    """The request conflicts with the stored state (already revoked, not pending, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class IntegrityViolation(StoreError):
    """The database refused a write by a constraint or trigger."""


class SerialCollision(StoreError):
    """A freshly drawn serial number is already taken (draw another)."""


# --------------------------------------------------------------------------- tables


utcnow = clock.now


@overload
def _aware(value: datetime) -> datetime: ...
@overload
def _aware(value: None) -> None: ...
@overload
def _aware(value: datetime | None) -> datetime | None: ...
def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; everything here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


TZDateTime = sa.DateTime(timezone=True)


class Enrollment(SQLModel, table=True):
    """One member root submitted to the bridge. A key rollover is a new row for the same member."""

    __tablename__ = "enrollment"
    id: str = Field(primary_key=True, max_length=32)
    member: str = Field(index=True, max_length=200)
    jurisdiction: str = Field(max_length=16)
    status: str = Field(max_length=16)  # pending, active, revoked, expired, rejected
    root_der: bytes = Field(sa_type=sa.LargeBinary)
    root_subject: str
    spki_sha256: str = Field(index=True, max_length=64)
    policy_mappings: str  # JSON [{"bridge_policy", "member_policy"}]
    permitted_subtrees: str  # JSON [{"type", "value"}]
    excluded_subtrees: str
    path_length: int | None = None
    replaces_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=TZDateTime)
    updated_at: datetime = Field(sa_type=TZDateTime)
    owner_token_id: int | None = None  # the API token that submitted it (migration 0002)


class CrossCertificate(SQLModel, table=True):
    """A certificate the bridge issued to a member root.

    A row is first ``reserved`` (serial and hash of the to-be-signed bytes,
    committed before the key is used), then ``issued`` with its DER once the
    signed certificate is stored. A reservation that never completes is a
    certificate nobody ever received.
    """

    __tablename__ = "cross_certificate"
    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    status: str = Field(max_length=16)  # reserved, issued, revoked
    tbs_sha256: str = Field(max_length=64)
    der: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    not_before: datetime | None = Field(default=None, sa_type=TZDateTime)
    not_after: datetime | None = Field(default=None, sa_type=TZDateTime)
    reserved_at: datetime = Field(sa_type=TZDateTime)
    issued_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    revocation_reason: str | None = Field(default=None, max_length=32)
    # When the maintenance task warned that it nears its notAfter (migration 0005).
    expiry_warned_at: datetime | None = Field(default=None, sa_type=TZDateTime)


class MemberStatus(SQLModel, table=True):
    """One change of an enrollment's status (migration 0005): the status history views and the public register show."""

    __tablename__ = "member_status"
    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    status: str = Field(max_length=16)
    at: datetime = Field(sa_type=TZDateTime)
    reason: str = ""
    actor: str = Field(max_length=200)
    details: str = "{}"  # JSON: the serials the change touched, ...


class ReverseCertificate(SQLModel, table=True):
    """A certificate a member root issued to the bridge (published in issued-to-bridge.p7c)."""

    __tablename__ = "reverse_certificate"
    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: str = Field(foreign_key="enrollment.id", index=True, max_length=32)
    sha256: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    der: bytes = Field(sa_type=sa.LargeBinary)
    not_after: datetime = Field(sa_type=TZDateTime)
    created_at: datetime = Field(sa_type=TZDateTime)


class BlacklistEntry(SQLModel, table=True):
    """One blacklist (黑名单) entry (migration 0006). Removal is soft: ``ended_at`` is set, the row stays."""

    __tablename__ = "blacklist_entry"
    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(index=True, max_length=32)  # pki.blocklist kinds
    value: str  # canonical JSON of the kind's value (bridge/blacklist.py)
    reason: str = Field(max_length=200)
    public_note: str = ""
    internal_note: str = ""
    evidence: str = ""
    effective_at: datetime = Field(sa_type=TZDateTime)
    author: str = Field(max_length=200)
    source: str = Field(default="admin", max_length=16)  # admin | keyCompromise
    enrollment_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=TZDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    ended_by: str | None = Field(default=None, max_length=200)
    end_reason: str | None = None


class BlacklistPublication(SQLModel, table=True):
    """A signed publication of the blacklist: the exact JSON bytes and their detached CMS signature (migration 0006)."""

    __tablename__ = "blacklist_publication"
    sha256: str = Field(primary_key=True, max_length=64)
    document: bytes = Field(sa_type=sa.LargeBinary)
    signature: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(sa_type=TZDateTime)


class TrustListIssue(SQLModel, table=True):
    """One issued trust list (bridge/trust_list.py, migration 0008): both forms' exact signed bytes, so
    every worker and server serves the same documents under one sequence number."""

    __tablename__ = "trust_list_issue"
    sequence: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    content_sha256: str = Field(max_length=64)
    issued_at: datetime = Field(sa_type=TZDateTime)
    next_update: datetime = Field(sa_type=TZDateTime)
    xml: bytes | None = Field(default=None, sa_type=sa.LargeBinary)  # None: no key can sign XML (SM2 only)
    xml_problem: str | None = None
    json_document: bytes = Field(sa_type=sa.LargeBinary)
    json_signature: bytes = Field(sa_type=sa.LargeBinary)  # detached CMS SignedData over json_document, DER


class Crl(SQLModel, table=True):
    __tablename__ = "crl"
    number: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    der: bytes = Field(sa_type=sa.LargeBinary)
    this_update: datetime = Field(sa_type=TZDateTime)
    next_update: datetime = Field(sa_type=TZDateTime)


class Counter(SQLModel, table=True):
    __tablename__ = "counter"
    name: str = Field(primary_key=True, max_length=32)
    value: int = Field(sa_type=sa.BigInteger)


class ApiToken(SQLModel, table=True):
    """An API token, stored only as its SHA-256 (tokens are 256-bit random, so no slow hash is needed)."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(sa_type=TZDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=TZDateTime)  # None: never (migration 0004)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    seq: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    at: str = Field(max_length=40)  # ISO 8601 text, hashed exactly as stored
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    details: str
    prev_hash: str = Field(max_length=64)
    entry_hash: str = Field(max_length=64)


class ExternalTrustList(SQLModel, table=True):
    """A TS 119 612 list of another scheme that the bridge recognises (migration 0009)."""

    __tablename__ = "external_trust_list"
    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    url: str | None = None
    allowed_signers: str  # JSON list of base64 DER certificates
    mapping: str = "{}"  # JSON: service types and policy prefixes onto the bridge's (bridge/trust_lists.py)
    status: str = Field(max_length=16)  # active, removed
    created_at: datetime = Field(sa_type=TZDateTime)
    created_by: str = Field(max_length=200)
    last_fetch_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    last_fetch_error: str | None = None


class ExternalTrustListVersion(SQLModel, table=True):
    """One accepted version of an external list, whole (migration 0009)."""

    __tablename__ = "external_trust_list_version"
    id: int | None = Field(default=None, primary_key=True)
    list_id: str = Field(foreign_key="external_trust_list.id", index=True, max_length=32)
    sequence_number: int = Field(sa_type=sa.BigInteger)
    issued_at: datetime = Field(sa_type=TZDateTime)
    next_update: datetime | None = Field(default=None, sa_type=TZDateTime)
    xml: bytes = Field(sa_type=sa.LargeBinary)
    sha256: str = Field(max_length=64)
    signature: str  # JSON
    schema_check: str  # JSON
    accepted_at: datetime = Field(sa_type=TZDateTime)
    source: str = Field(max_length=16)  # fetch, upload


class Proposal(SQLModel, table=True):
    """An admin action waiting for a second administrator (two-person control, migration 0007)."""

    __tablename__ = "proposal"
    id: str = Field(primary_key=True, max_length=32)
    action: str = Field(max_length=64)
    params: str  # JSON: the action's parameters
    proposer: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=TZDateTime)
    expires_at: datetime = Field(sa_type=TZDateTime)
    status: str = Field(index=True, max_length=16)  # pending, confirmed, failed, cancelled, expired
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    outcome: str | None = None  # JSON: the action's result, or its error


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of the audit chain's head: ``entries`` entries, the last one's hash ``head_hash`` (migration 0007)."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    entries: int = Field(sa_type=sa.BigInteger, index=True)
    head_hash: str = Field(max_length=64)
    at: str = Field(max_length=40)  # ISO 8601 text, signed exactly as stored
    algorithm: bytes = Field(sa_type=sa.LargeBinary)  # AlgorithmIdentifier DER
    signature: bytes = Field(sa_type=sa.LargeBinary)
    signer_sha256: str = Field(max_length=64)


# --------------------------------------------------------------------------- values handed out


class SignedTrustList(Protocol):
    """What ``publish_trust_list``'s ``build`` returns (bridge/trust_list.py: PublishedTrustList)."""

    @property
    def issued_at(self) -> datetime: ...
    @property
    def next_update(self) -> datetime: ...
    @property
    def xml(self) -> bytes | None: ...
    @property
    def xml_problem(self) -> str | None: ...
    @property
    def json(self) -> bytes: ...
    @property
    def json_signature(self) -> bytes: ...


# A CRL builder the store calls inside the revocation transaction:
# (crl_number, revoked entries, now) -> (der, this_update, next_update)
CrlBuilder = Callable[[int, Sequence[RevokedEntry], datetime], tuple[bytes, datetime, datetime]]


def _engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy own transactions, and take the write lock at BEGIN
            # (BEGIN IMMEDIATE): a reader that later writes cannot deadlock.
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take the lock up front so concurrent writers queue
            # instead of deadlocking; readers must not, or every verification
            # request would queue behind every other.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("bridgeca_read") else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Store:
    """Persistence for the bridge. Thread-safe: each call opens its own session."""

    def __init__(self, engine: sa.Engine, url: str):
        self.engine = engine
        # Same pool; on SQLite, read transactions begin deferred (see _engine_for).
        self._read_engine = engine.execution_options(bridgeca_read=True)
        self.url = url
        self._lock = threading.Lock()
        # Set by a process that holds the bridge key (bridge/checkpoints.py):
        # the audit chain's head is then signed at least every
        # ``checkpoint_every`` entries, in the transaction of the entry that
        # reaches the count. A store opened without the key writes none; the
        # next keyed process catches up.
        self.checkpoint_signer: Callable[[int, str, str], tuple[bytes, bytes, str]] | None = None
        self.checkpoint_every: int = 100

    # ------------------------------------------------------------------ opening and migrating

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> "Store":
        """Open the database at ``url``, applying pending migrations.

        With ``create`` false, a database without the bridge's schema is an
        error (it was never initialised, or the URL points elsewhere).
        """
        try:
            engine = _engine_for(url)
            store = cls(engine, url)
            if not create and store.schema_revision() is None:
                engine.dispose()
                raise StoreError(f"database {store.safe_url} holds no bridge; run 'bridgeca init' first")
            store.migrate()
            return store
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open database {sa.make_url(url).render_as_string(hide_password=True)}: {_describe(exc)}") from exc

    @property
    def safe_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of a SQLite store (None for PostgreSQL or an in-memory database)."""
        parsed = sa.make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return Path(parsed.database)

    def _alembic_config(self, connection):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        return config

    def schema_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def migrate(self) -> None:
        from alembic import command

        with self.engine.begin() as connection:
            command.upgrade(self._alembic_config(connection), "head")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Session]:
        """One transaction; database failures become StoreError with the driver's message."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                with session.begin():
                    yield session
        except StoreError:
            raise
        except IntegrityError as exc:
            raise IntegrityViolation(f"database refused the write: {_describe(exc)}") from exc
        except DBAPIError as exc:
            raise StoreError(f"database refused the operation: {_describe(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {_describe(exc)}") from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self._read_engine, expire_on_commit=False) as session:
                yield session
        except DBAPIError as exc:
            raise StoreError(f"database read failed: {_describe(exc)}") from exc

    def _next_counter(self, session: Session, name: str) -> int:
        # UPDATE ... RETURNING takes the row lock (PostgreSQL) and is atomic;
        # a second transaction waits here until the first commits.
        value = session.execute(
            sa.text("UPDATE counter SET value = value + 1 WHERE name = :name RETURNING value"), {"name": name}
        ).scalar_one()
        return int(value)

    def _bump_epoch(self, session: Session) -> None:
        """A trust change: caches built on an older epoch must not be used."""
        self._next_counter(session, "epoch")

    @staticmethod
    def _counter_value(session: Session, name: str) -> int:
        row = session.get(Counter, name)
        if row is None:  # every counter row is created by the migrations
            raise StoreError(f"database is broken: counter {name!r} is missing")
        return int(row.value)

    def epoch(self) -> int:
        """The revocation epoch (one indexed read; polled by verifiers)."""
        with self._read() as session:
            return self._counter_value(session, "epoch")

    def _audit(self, session: Session, actor: str, action: str, details: dict) -> AuditEntry:
        seq = self._next_counter(session, "audit")
        prev_hash = audit_chain.GENESIS_HASH
        if seq > 1:
            prev = session.get(AuditEntry, seq - 1)
            if prev is None:
                raise StoreError(f"audit log is broken: entry {seq - 1} is missing")
            prev_hash = prev.entry_hash
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        text = audit_chain.canonical_details(details)
        entry = AuditEntry(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            details=text,
            prev_hash=prev_hash,
            entry_hash=audit_chain.entry_hash(seq, at, actor, action, text, prev_hash),
        )
        session.add(entry)
        session.flush()
        if self.checkpoint_signer is not None:
            self._checkpoint_if_due(session, entry)
        return entry

    def append_audit(self, actor: str, action: str, details: dict) -> None:
        with self._transaction() as session:
            self._audit(session, actor, action, details)

    # ------------------------------------------------------------------ enrollments

    def add_enrollment(
        self,
        *,
        actor: str,
        member: str,
        jurisdiction: str,
        root_der: bytes,
        root_subject: str,
        spki_sha256: str,
        policy_mappings: list[dict],
        permitted_subtrees: list[dict],
        excluded_subtrees: list[dict],
        path_length: int | None,
        owner_token_id: int | None = None,
        rollover_of: str | None = None,
        same_name: Callable[[bytes], bool] | None = None,
        may_roll_over: Callable[[EnrollmentRecord], bool] | None = None,
    ) -> EnrollmentRecord:
        """``same_name(root_der)``: whether a stored root has this root's name.
        A name an active or suspended member holds under another key is
        refused unless ``rollover_of`` names that member's enrollment (one the
        submitter may see: ``may_roll_over``). Refusals never name another
        enrollment's id."""
        now = utcnow()
        with self._transaction() as session:
            # Same key enrolled and not yet cut off: refuse. The "enroll"
            # counter's row lock serialises enrollments, so two submissions of
            # one key cannot both pass this check.
            self._next_counter(session, "enroll")
            existing = session.exec(
                select(Enrollment).where(
                    Enrollment.spki_sha256 == spki_sha256, col(Enrollment.status).in_(("pending", "active", "suspended"))
                )
            ).first()
            if existing is not None:
                # No id: the enrollment may be another issuer's.
                raise Conflict("already_enrolled", f"this public key is already enrolled ({existing.status})")
            rollover = self._rollover_target(session, same_name, rollover_of, may_roll_over)
            previous = session.exec(
                select(Enrollment)
                .where(Enrollment.member == member, col(Enrollment.status).in_(("pending", "active")))
                .order_by(col(Enrollment.created_at).desc())
            ).first()
            record = Enrollment(
                id=uuid.uuid4().hex,
                member=member,
                jurisdiction=jurisdiction,
                status="pending",
                root_der=root_der,
                root_subject=root_subject,
                spki_sha256=spki_sha256,
                policy_mappings=json.dumps(policy_mappings),
                permitted_subtrees=json.dumps(permitted_subtrees),
                excluded_subtrees=json.dumps(excluded_subtrees),
                path_length=path_length,
                replaces_id=rollover.id if rollover is not None else previous.id if previous is not None else None,
                owner_token_id=owner_token_id,
                created_at=now,
                updated_at=now,
            )
            session.add(record)
            session.flush()
            self._record_status(session, record.id, "pending", actor, now)
            self._audit(
                session,
                actor,
                "enrollment.submit",
                {
                    "enrollment": record.id,
                    "member": member,
                    "jurisdiction": jurisdiction,
                    "root_subject": root_subject,
                    "spki_sha256": spki_sha256,
                    "policy_mappings": policy_mappings,
                    "replaces": record.replaces_id,
                },
            )
        return _record(record)

    def _rollover_target(self, session: Session, same_name: Callable[[bytes], bool] | None, rollover_of: str | None,
                         may_roll_over: Callable[[EnrollmentRecord], bool] | None) -> Enrollment | None:
        if same_name is None:
            return None
        holders = [r for r in session.exec(select(Enrollment).where(col(Enrollment.status).in_(("active", "suspended")))).all()
                   if same_name(r.root_der)]
        if rollover_of is None:
            if holders:
                raise Conflict("name_taken", "an active member already holds this root name under another key; "
                                             "a key rollover of that member must say so (rollover_of)")
            return None
        target = session.get(Enrollment, rollover_of)
        if target is None or (may_roll_over is not None and not may_roll_over(_record(target))):
            raise NotFound(f"no enrollment {rollover_of}")
        if target.status not in ("active", "suspended") or not same_name(target.root_der):
            raise Conflict("invalid_rollover", "rollover_of must name an active enrollment whose root has this root's name")
        return target

    def get_enrollment(self, enrollment_id: str) -> EnrollmentRecord:
        with self._read() as session:
            record = session.get(Enrollment, enrollment_id)
        if record is None:
            raise NotFound(f"no enrollment {enrollment_id}")
        return _record(record)

    def list_enrollments(self, owner_token_id: int | None = None) -> list[EnrollmentRecord]:
        with self._read() as session:
            query = select(Enrollment)
            if owner_token_id is not None:
                query = query.where(Enrollment.owner_token_id == owner_token_id)
            rows = session.exec(query.order_by(col(Enrollment.created_at), col(Enrollment.id))).all()
        return [_record(r) for r in rows]

    def set_enrollment_status(self, enrollment_id: str, *, from_status: Sequence[str], to_status: str, actor: str, reason: str) -> None:
        with self._transaction() as session:
            updated = session.exec(
                sa.update(Enrollment)
                .where(col(Enrollment.id) == enrollment_id, col(Enrollment.status).in_(tuple(from_status)))
                .values(status=to_status, updated_at=utcnow())
            ).rowcount
            if updated != 1:
                raise Conflict("invalid_state", f"enrollment {enrollment_id} is not in state {'/'.join(from_status)}")
            self._record_status(session, enrollment_id, to_status, actor, utcnow(), reason)
            self._audit(session, actor, f"enrollment.{to_status}", {"enrollment": enrollment_id, "reason": reason})
            self._bump_epoch(session)

    def expire_enrollments(self, *, actor: str, now: datetime) -> list[str]:
        """Mark active enrollments expired once no cross-certificate of theirs is in force."""
        expired: list[str] = []
        with self._transaction() as session:
            for record in session.exec(select(Enrollment).where(Enrollment.status == "active")).all():
                in_force = [
                    c for c in session.exec(
                        select(CrossCertificate).where(CrossCertificate.enrollment_id == record.id, CrossCertificate.status == "issued")
                    ).all()
                    if c.not_after is not None and _aware(c.not_after) > now
                ]
                if not in_force:
                    record.status, record.updated_at = "expired", now
                    session.add(record)
                    expired.append(record.id)
                    self._record_status(session, record.id, "expired", actor, now, "no cross-certificate in force")
                    self._audit(session, actor, "enrollment.expired", {"enrollment": record.id})
                    self._bump_epoch(session)
        return expired

    # ------------------------------------------------------------------ member lifecycle (bridge/lifecycle.py)

    def _record_status(self, session: Session, enrollment_id: str, status: str, actor: str, at: datetime,
                       reason: str = "", details: dict | None = None) -> None:
        session.add(MemberStatus(enrollment_id=enrollment_id, status=status, at=at, reason=reason or "", actor=actor,
                                 details=json.dumps(details or {}, sort_keys=True)))
        session.flush()

    def status_history(self, enrollment_id: str) -> list[StatusChangeRecord]:
        with self._read() as session:
            rows = session.exec(
                select(MemberStatus).where(MemberStatus.enrollment_id == enrollment_id).order_by(col(MemberStatus.id))
            ).all()
        return [_record(r) for r in rows]

    def _enrollment_in(self, session: Session, enrollment_id: str, states: Sequence[str], action: str) -> Enrollment:
        record = session.get(Enrollment, enrollment_id)
        if record is None:
            raise NotFound(f"no enrollment {enrollment_id}")
        if record.status not in states:
            raise Conflict("invalid_state", f"enrollment {enrollment_id} is {record.status}; only {' or '.join(states)} "
                                            f"enrollments can be {action}")
        return record

    def _move(self, session: Session, record: Enrollment, from_states: Sequence[str], to_status: str, now: datetime) -> None:
        # Conditional on the state read: a concurrent change makes this one fail rather than overwrite it.
        moved = session.exec(
            sa.update(Enrollment).where(col(Enrollment.id) == record.id, col(Enrollment.status).in_(tuple(from_states)))
            .values(status=to_status, updated_at=now)
        ).rowcount
        if moved != 1:
            raise Conflict("invalid_state", f"enrollment {record.id} changed state meanwhile")

    def _crosses(self, session: Session, enrollment_id: str, statuses: Sequence[str]) -> list[CrossCertificate]:
        return list(session.exec(
            select(CrossCertificate).where(CrossCertificate.enrollment_id == enrollment_id,
                                           col(CrossCertificate.status).in_(tuple(statuses))).order_by(col(CrossCertificate.id))
        ).all())

    def withdraw_enrollment(self, *, actor: str, enrollment_id: str, reason: str, build_crl: CrlBuilder) -> tuple[list[str], CrlRecord | None]:
        """Pending: withdrawn. Active or suspended: every cross-certificate in
        force or on hold revoked (cessationOfOperation) and a CRL issued, then
        withdrawn. One transaction; returns (revoked serials, the CRL or None)."""
        with self._transaction() as session:
            number = self._next_counter(session, "crl")  # lock order: crl, then audit
            now = utcnow()
            record = self._enrollment_in(session, enrollment_id, ("pending", "active", "suspended"), "withdrawn")
            previous = record.status
            serials = []
            for row in self._crosses(session, enrollment_id, ("issued", "held")):
                row.status, row.revoked_at, row.revocation_reason = "revoked", now, "cessationOfOperation"
                session.add(row)
                serials.append(row.serial)
            session.flush()
            self._move(session, record, (previous,), "withdrawn", now)
            self._record_status(session, enrollment_id, "withdrawn", actor, now, reason, {"serials": serials, "from": previous})
            for serial in serials:
                self._audit(session, actor, "certificate.revoke",
                            {"serial": serial, "reason": "cessationOfOperation", "enrollment": enrollment_id})
            self._audit(session, actor, "issuer.withdraw", {"enrollment": enrollment_id, "serials": serials, "from": previous,
                                                            "status": "withdrawn", "reason": reason})
            if serials:
                return serials, self._issue_crl(session, actor, now, build_crl, number)
            self._bump_epoch(session)
            return serials, None

    def suspend_member(self, *, actor: str, enrollment_id: str, reason: str, build_crl: CrlBuilder) -> tuple[list[str], CrlRecord]:
        """Active -> suspended: its cross-certificates go on hold and the CRL that lists them is issued, in one transaction."""
        with self._transaction() as session:
            number = self._next_counter(session, "crl")
            now = utcnow()
            record = self._enrollment_in(session, enrollment_id, ("active",), "suspended")
            serials = []
            for row in self._crosses(session, enrollment_id, ("issued",)):
                row.status, row.revoked_at, row.revocation_reason = "held", now, "certificateHold"
                session.add(row)
                serials.append(row.serial)
            session.flush()
            self._move(session, record, ("active",), "suspended", now)
            self._record_status(session, enrollment_id, "suspended", actor, now, reason, {"serials": serials})
            self._audit(session, actor, "issuer.suspend",
                        {"enrollment": enrollment_id, "serials": serials, "status": "suspended", "reason": reason})
            return serials, self._issue_crl(session, actor, now, build_crl, number)

    def reinstate_member(self, *, actor: str, enrollment_id: str, reason: str, build_crl: CrlBuilder) -> tuple[list[str], CrlRecord]:
        """Suspended -> active: its certificates come off hold, and the CRL issued in the same transaction no longer lists them."""
        with self._transaction() as session:
            number = self._next_counter(session, "crl")
            now = utcnow()
            record = self._enrollment_in(session, enrollment_id, ("suspended",), "reinstated")
            serials = []
            for row in self._crosses(session, enrollment_id, ("held",)):
                row.status, row.revoked_at, row.revocation_reason = "issued", None, None
                session.add(row)
                serials.append(row.serial)
            session.flush()
            self._move(session, record, ("suspended",), "active", now)
            self._record_status(session, enrollment_id, "active", actor, now, reason or "reinstated", {"serials": serials})
            self._audit(session, actor, "issuer.reinstate",
                        {"enrollment": enrollment_id, "serials": serials, "status": "active", "reason": reason})
            return serials, self._issue_crl(session, actor, now, build_crl, number)

    def reserve_reissue(self, *, actor: str, enrollment_id: str, serial: int, tbs_sha256: str, purpose: str) -> None:
        """reserve_serial for an active member's new cross-certificate (renewal, new terms)."""
        try:
            with self._transaction() as session:
                self._enrollment_in(session, enrollment_id, ("active",), "given a new cross-certificate")
                session.add(CrossCertificate(serial=format(serial, "x"), enrollment_id=enrollment_id, status="reserved",
                                             tbs_sha256=tbs_sha256, reserved_at=utcnow()))
                session.flush()
                self._audit(session, actor, "key.use",
                            {"purpose": purpose, "serial": format(serial, "x"), "tbs_sha256": tbs_sha256, "enrollment": enrollment_id})
        except IntegrityViolation as exc:
            if "serial" in str(exc):
                raise SerialCollision(f"serial {serial:x} already used") from exc
            raise

    def complete_reissue(self, *, actor: str, action: str, enrollment_id: str, serial: int, der: bytes, not_before: datetime,
                         not_after: datetime, supersedes: Sequence[str], reason: str = "", terms: dict | None = None) -> None:
        """Publish an active member's new cross-certificate beside the ones it
        supersedes (they stay in force until ``supersede``), and with ``terms``
        record the enrollment's new mappings/constraints. Bumps the epoch, so
        every verifier has the new certificate before an old one goes."""
        serial_hex = format(serial, "x")
        with self._transaction() as session:
            now = utcnow()
            record = self._enrollment_in(session, enrollment_id, ("active",), "given a new cross-certificate")
            stored = session.exec(
                sa.update(CrossCertificate)
                .where(col(CrossCertificate.serial) == serial_hex, col(CrossCertificate.status) == "reserved")
                .values(status="issued", der=der, not_before=not_before, not_after=not_after, issued_at=now)
            ).rowcount
            if stored != 1:
                raise StoreError(f"serial {serial_hex} was not reserved")
            details: dict[str, object] = {"enrollment": enrollment_id, "serial": serial_hex, "supersedes": list(supersedes), "status": "active",
                       "not_after": not_after.isoformat(), "reason": reason}
            if terms is not None:
                record.policy_mappings = json.dumps(terms["policy_mappings"])
                record.permitted_subtrees = json.dumps(terms["permitted_subtrees"])
                record.excluded_subtrees = json.dumps(terms["excluded_subtrees"])
                record.path_length = terms["path_length"]
                record.updated_at = now
                session.add(record)
                details["terms"] = terms
            self._audit(session, actor, "certificate.issue", {"serial": serial_hex, "enrollment": enrollment_id, "not_after": not_after.isoformat()})
            self._audit(session, actor, action, details)
            self._record_status(session, enrollment_id, "active", actor, now,
                                reason or ("new terms" if terms is not None else "cross-certificate renewed"),
                                {"serials": [serial_hex], "supersedes": list(supersedes), "action": action})
            self._bump_epoch(session)

    def supersede(self, *, actor: str, enrollment_id: str, serials: Sequence[str], build_crl: CrlBuilder) -> CrlRecord | None:
        """Revoke (reason superseded) those of ``serials`` still in force, and issue the CRL listing them."""
        with self._transaction() as session:
            number = self._next_counter(session, "crl")
            now = utcnow()
            done = []
            for row in self._crosses(session, enrollment_id, ("issued",)):
                if row.serial in serials:
                    row.status, row.revoked_at, row.revocation_reason = "revoked", now, "superseded"
                    session.add(row)
                    done.append(row.serial)
                    self._audit(session, actor, "certificate.revoke", {"serial": row.serial, "reason": "superseded", "enrollment": enrollment_id})
            if not done:
                return None
            session.flush()
            return self._issue_crl(session, actor, now, build_crl, number)

    def expire_pending(self, *, actor: str, created_before: datetime) -> list[str]:
        """Pending enrollments submitted before ``created_before`` become expired (idempotent: each only once)."""
        expired = []
        with self._transaction() as session:
            for record in session.exec(select(Enrollment).where(Enrollment.status == "pending").order_by(col(Enrollment.id))).all():
                if _aware(record.created_at) >= created_before:  # compared in Python: SQLite keeps times as text
                    continue
                now = utcnow()
                self._move(session, record, ("pending",), "expired", now)
                self._record_status(session, record.id, "expired", actor, now, "pending too long: never approved")
                self._audit(session, actor, "enrollment.expired",
                            {"enrollment": record.id, "from": "pending", "status": "expired", "serials": []})
                expired.append(record.id)
            if expired:
                self._bump_epoch(session)
        return expired

    def mark_expiry_warned(self, *, actor: str, serial: str, not_after: datetime, enrollment_id: str, days_left: float) -> bool:
        """Record the near-expiry warning of one cross-certificate once; False when it was already warned about."""
        with self._transaction() as session:
            warned = session.exec(
                sa.update(CrossCertificate)
                .where(col(CrossCertificate.serial) == serial, col(CrossCertificate.expiry_warned_at).is_(None))
                .values(expiry_warned_at=utcnow())
            ).rowcount
            if warned != 1:
                return False
            self._audit(session, actor, "certificate.expiring",
                        {"serial": serial, "enrollment": enrollment_id, "not_after": not_after.isoformat(),
                         "days_left": round(days_left, 1), "status": "issued"})
            return True

    # ------------------------------------------------------------------ cross-certificates

    def reserve_serial(self, *, actor: str, enrollment_id: str, serial: int, tbs_sha256: str, purpose: str) -> None:
        """Commit the serial (unique) and the intent to sign, before the key is used."""
        try:
            with self._transaction() as session:
                enrollment = session.get(Enrollment, enrollment_id)
                if enrollment is None:
                    raise NotFound(f"no enrollment {enrollment_id}")
                if enrollment.status != "pending":
                    raise Conflict("invalid_state", f"enrollment {enrollment_id} is {enrollment.status}, not pending")
                session.add(
                    CrossCertificate(
                        serial=format(serial, "x"),
                        enrollment_id=enrollment_id,
                        status="reserved",
                        tbs_sha256=tbs_sha256,
                        reserved_at=utcnow(),
                    )
                )
                session.flush()
                self._audit(
                    session,
                    actor,
                    "key.use",
                    {"purpose": purpose, "serial": format(serial, "x"), "tbs_sha256": tbs_sha256, "enrollment": enrollment_id},
                )
        except IntegrityViolation as exc:
            if "serial" in str(exc):
                raise SerialCollision(f"serial {serial:x} already used") from exc
            raise

    def complete_issuance(self, *, actor: str, enrollment_id: str, serial: int, der: bytes, not_before: datetime, not_after: datetime) -> None:
        """Store the signed cross-certificate and activate the enrollment, atomically."""
        serial_hex = format(serial, "x")
        with self._transaction() as session:
            now = utcnow()
            activated = session.exec(
                sa.update(Enrollment)
                .where(col(Enrollment.id) == enrollment_id, col(Enrollment.status) == "pending")
                .values(status="active", updated_at=now)
            ).rowcount
            if activated != 1:
                raise Conflict("invalid_state", f"enrollment {enrollment_id} is no longer pending")
            stored = session.exec(
                sa.update(CrossCertificate)
                .where(col(CrossCertificate.serial) == serial_hex, col(CrossCertificate.status) == "reserved")
                .values(status="issued", der=der, not_before=not_before, not_after=not_after, issued_at=now)
            ).rowcount
            if stored != 1:
                raise StoreError(f"serial {serial_hex} was not reserved")
            self._record_status(session, enrollment_id, "active", actor, now, "approved", {"serials": [serial_hex]})
            self._audit(session, actor, "certificate.issue", {"serial": serial_hex, "enrollment": enrollment_id, "not_after": not_after.isoformat()})
            self._audit(session, actor, "enrollment.approve", {"enrollment": enrollment_id, "serial": serial_hex})
            self._bump_epoch(session)

    def cross_certificate(self, serial: int) -> CrossCertificateRecord:
        with self._read() as session:
            row = session.exec(select(CrossCertificate).where(CrossCertificate.serial == format(serial, "x"))).first()
        if row is None:
            raise NotFound(f"no cross-certificate with serial {serial:x}")
        return _record(row)

    def cross_certificates(self, *, statuses: Sequence[str] = ("issued", "held", "revoked"), enrollment_id: str | None = None) -> list[CrossCertificateRecord]:
        with self._read() as session:
            query = select(CrossCertificate).where(col(CrossCertificate.status).in_(tuple(statuses)))
            if enrollment_id is not None:
                query = query.where(CrossCertificate.enrollment_id == enrollment_id)
            rows = session.exec(query.order_by(col(CrossCertificate.id))).all()
        return [_record(r) for r in rows]

    # ------------------------------------------------------------------ revocation and CRLs

    def _issue_crl(self, session: Session, actor: str, now: datetime, build: CrlBuilder, number: int) -> CrlRecord:
        # A suspended member's certificates ("held") are listed with
        # certificateHold; reinstated, they are simply left off the next CRL
        # (RFC 5280 5.3.1; removeFromCRL is for delta CRLs, which this bridge does not issue).
        rows = session.exec(
            select(CrossCertificate).where(col(CrossCertificate.status).in_(("revoked", "held"))).order_by(col(CrossCertificate.id))
        ).all()
        revoked = []
        for r in rows:
            if r.revoked_at is None:  # set whenever the status becomes revoked or held
                raise StoreError(f"cross-certificate {r.serial} is {r.status} without a revocation time")
            revoked.append(RevokedEntry(int(r.serial, 16), _aware(r.revoked_at),
                                        "certificateHold" if r.status == "held" else r.revocation_reason or "unspecified"))
        self._audit(session, actor, "key.use", {"purpose": "crl", "crl_number": number})
        self._bump_epoch(session)
        der, this_update, next_update = build(number, revoked, now)
        session.add(Crl(number=number, der=der, this_update=this_update, next_update=next_update))
        session.flush()
        self._audit(
            session,
            actor,
            "crl.issue",
            {"crl_number": number, "revoked": len(revoked), "next_update": next_update.isoformat()},
        )
        return CrlRecord(number, der, this_update, next_update)

    def revoke(self, *, actor: str, serial: int, reason: str, build_crl: CrlBuilder) -> CrlRecord:
        """Revoke a cross-certificate and issue the CRL that lists it, in one transaction."""
        serial_hex = format(serial, "x")
        with self._transaction() as session:
            number = self._next_counter(session, "crl")  # taken first: see module docstring
            now = utcnow()
            row = session.exec(select(CrossCertificate).where(CrossCertificate.serial == serial_hex)).first()
            if row is None or row.status == "reserved":
                raise NotFound(f"no cross-certificate with serial {serial_hex}")
            if row.status == "revoked":
                raise Conflict("already_revoked", f"cross-certificate {serial_hex} is already revoked")
            row.status, row.revoked_at, row.revocation_reason = "revoked", now, reason
            session.add(row)
            # The member is cut off when none of its cross-certificates stays in force.
            session.flush()
            still_issued = session.exec(
                select(CrossCertificate).where(CrossCertificate.enrollment_id == row.enrollment_id, CrossCertificate.status == "issued")
            ).first()
            if still_issued is None:
                session.execute(
                    sa.update(Enrollment).where(col(Enrollment.id) == row.enrollment_id).values(status="revoked", updated_at=now)
                )
                self._record_status(session, row.enrollment_id, "revoked", actor, now, reason, {"serials": [serial_hex]})
            # revoked_at: the row's own time, so that replaying the log finds an edited one (bridge/audit.py).
            self._audit(session, actor, "certificate.revoke", {"serial": serial_hex, "reason": reason, "enrollment": row.enrollment_id,
                                                               "revoked_at": now.isoformat()})
            if reason == "keyCompromise":
                self._blacklist_compromised_root(session, actor, row.enrollment_id, serial_hex, now)
            return self._issue_crl(session, actor, now, build_crl, number)

    def issue_crl(self, *, actor: str, build_crl: CrlBuilder) -> CrlRecord:
        with self._transaction() as session:
            number = self._next_counter(session, "crl")
            return self._issue_crl(session, actor, utcnow(), build_crl, number)

    def latest_crl(self) -> CrlRecord | None:
        with self._read() as session:
            row = session.exec(select(Crl).order_by(col(Crl.number).desc())).first()
        if row is None:
            return None
        return CrlRecord(row.number, row.der, _aware(row.this_update), _aware(row.next_update))

    def crl_numbers(self) -> list[int]:
        with self._read() as session:
            return [int(n) for n in session.exec(select(Crl.number).order_by(col(Crl.number))).all()]

    # ------------------------------------------------------------------ reverse certificates

    def add_reverse_certificate(self, *, actor: str, enrollment_id: str, der: bytes, sha256: str, not_after: datetime,
                                same_key: Callable[[bytes], bool] | None = None) -> ReverseCertificateRecord:
        """Store a reverse certificate. ``same_key(der)`` says whether a stored
        one of this enrollment certifies the same bridge key: those are
        replaced, in the same transaction (one per enrollment and key, so an
        issuer cannot fill every path search with its uploads)."""
        try:
            with self._transaction() as session:
                # Row-locked (PostgreSQL) so two uploads for one enrollment
                # replace each other instead of both staying.
                if session.exec(select(Enrollment).where(Enrollment.id == enrollment_id).with_for_update()).first() is None:
                    raise NotFound(f"no enrollment {enrollment_id}")
                replaced = []
                if same_key is not None:
                    for old in session.exec(select(ReverseCertificate).where(ReverseCertificate.enrollment_id == enrollment_id)).all():
                        if old.sha256 == sha256:
                            raise Conflict("duplicate", "this reverse certificate is already stored")
                        if same_key(old.der):
                            replaced.append(old.sha256)
                            session.delete(old)
                    session.flush()
                row = ReverseCertificate(enrollment_id=enrollment_id, sha256=sha256, der=der, not_after=not_after, created_at=utcnow())
                session.add(row)
                session.flush()
                details: dict[str, object] = {"enrollment": enrollment_id, "sha256": sha256}
                if replaced:
                    details["replaces"] = replaced
                self._audit(session, actor, "reverse.upload", details)
                self._bump_epoch(session)
            return _record(row)
        except IntegrityViolation as exc:
            if "sha256" in str(exc):
                raise Conflict("duplicate", "this reverse certificate is already stored") from exc
            raise

    def reverse_certificates(self, *, enrollment_statuses: Sequence[str] = ("active",)) -> list[ReverseCertificateRecord]:
        with self._read() as session:
            rows = session.exec(
                select(ReverseCertificate)
                .join(Enrollment, col(Enrollment.id) == col(ReverseCertificate.enrollment_id))
                .where(col(Enrollment.status).in_(tuple(enrollment_statuses)))
                .order_by(col(ReverseCertificate.id))
            ).all()
        return [_record(r) for r in rows]

    # ------------------------------------------------------------------ blacklist (bridge/blacklist.py)

    def add_blacklist_entry(self, *, actor: str, kind: str, value: str, reason: str, public_note: str = "",
                            internal_note: str = "", evidence: str = "", effective_at: datetime | None = None) -> BlacklistEntryRecord:
        """A new entry, audited (blacklist.add), with the epoch bumped: every verifier drops what it built on the old list."""
        with self._transaction() as session:
            now = utcnow()
            if self._active_blacklist_entry(session, kind, value) is not None:
                raise Conflict("already_blacklisted", "an entry in force already lists this " + kind.replace("_", " "))
            row = BlacklistEntry(id=uuid.uuid4().hex, kind=kind, value=value, reason=reason, public_note=public_note,
                                 internal_note=internal_note, evidence=evidence, effective_at=effective_at or now,
                                 author=actor, source="admin", created_at=now)
            session.add(row)
            session.flush()
            self._audit(session, actor, "blacklist.add", {"entry": row.id, "kind": kind, "value": json.loads(value),
                                                          "reason": reason, "status": "active"})
            self._bump_epoch(session)
            return _record(row)

    def end_blacklist_entry(self, *, actor: str, entry_id: str, reason: str = "") -> BlacklistEntryRecord:
        """Soft removal: the entry stays, with its end time, author and reason (blacklist.remove)."""
        with self._transaction() as session:
            row = session.get(BlacklistEntry, entry_id)
            if row is None:
                raise NotFound(f"no blacklist entry {entry_id}")
            if row.ended_at is not None:
                raise Conflict("already_removed", f"blacklist entry {entry_id} was already removed")
            row.ended_at, row.ended_by, row.end_reason = utcnow(), actor, reason
            session.add(row)
            session.flush()
            self._audit(session, actor, "blacklist.remove", {"entry": row.id, "kind": row.kind, "value": json.loads(row.value),
                                                             "reason": reason, "status": "removed"})
            self._bump_epoch(session)
            return _record(row)

    def _active_blacklist_entry(self, session: Session, kind: str, value: str) -> BlacklistEntry | None:
        return session.exec(select(BlacklistEntry).where(BlacklistEntry.kind == kind, BlacklistEntry.value == value,
                                                         col(BlacklistEntry.ended_at).is_(None))).first()

    def _blacklist_compromised_root(self, session: Session, actor: str, enrollment_id: str, serial_hex: str, now: datetime) -> None:
        """A root whose cross-certificate is revoked for keyCompromise: its key is blacklisted in the revocation's transaction."""
        record = session.get(Enrollment, enrollment_id)
        if record is None:  # the revoked cross-certificate's enrollment (a foreign key)
            raise StoreError(f"enrollment {enrollment_id} is missing")
        value = json.dumps(record.spki_sha256)
        if self._active_blacklist_entry(session, "spki_sha256", value) is not None:
            return
        row = BlacklistEntry(id=uuid.uuid4().hex, kind="spki_sha256", value=value, reason="keyCompromise",
                             public_note=f"key of {record.root_subject}: cross-certificate {serial_hex} revoked for keyCompromise",
                             internal_note="", evidence=f"cross-certificate {serial_hex}", effective_at=now, author=actor,
                             source="keyCompromise", enrollment_id=enrollment_id, created_at=now)
        session.add(row)
        session.flush()
        self._audit(session, actor, "blacklist.auto", {"entry": row.id, "kind": row.kind, "value": record.spki_sha256,
                                                       "reason": "keyCompromise", "serial": serial_hex,
                                                       "enrollment": enrollment_id, "status": "active"})
        self._bump_epoch(session)

    def blacklist_entries(self) -> list[BlacklistEntryRecord]:
        """Every entry, removed ones included, oldest first."""
        with self._read() as session:
            rows = session.exec(select(BlacklistEntry).order_by(col(BlacklistEntry.created_at), col(BlacklistEntry.id))).all()
        return [_record(r) for r in rows]

    def blacklist_publication(self, sha256: str) -> BlacklistPublicationRecord | None:
        with self._read() as session:
            row = session.get(BlacklistPublication, sha256)
            return _record(row) if row is not None else None

    def add_blacklist_publication(self, *, actor: str, sha256: str, document: bytes, sign: Callable[[bytes], bytes]) -> BlacklistPublicationRecord:
        """Sign ``document`` (the key use audited in the same transaction) and
        store it; another worker that stored the same document first wins, and
        its signature is the one every worker serves."""
        try:
            with self._transaction() as session:
                existing = session.get(BlacklistPublication, sha256)
                if existing is not None:
                    return _record(existing)
                self._audit(session, actor, "key.use", {"purpose": "blacklist", "sha256": sha256})
                row = BlacklistPublication(sha256=sha256, document=document, signature=sign(document), created_at=utcnow())
                session.add(row)
                session.flush()
                return _record(row)
        except IntegrityViolation:
            found = self.blacklist_publication(sha256)
            if found is None:
                raise
            return found

    # ------------------------------------------------------------------ our trust list (bridge/trust_list.py)

    def latest_trust_list(self) -> TrustListIssueRecord | None:
        with self._read() as session:
            row = session.exec(select(TrustListIssue).order_by(col(TrustListIssue.sequence).desc())).first()
        return _record(row) if row is not None else None

    def publish_trust_list(self, *, actor: str, content_sha256: str, now: datetime,
                           build: Callable[[int, datetime], SignedTrustList]) -> TrustListIssueRecord:
        """The list to serve for content ``content_sha256``: the latest issued
        one when its content is the same and it is not past half its validity,
        else a new one with the next sequence number, built by ``build(sequence,
        now)`` (it signs: the key use is audited in the same transaction). The
        ``trust_list`` counter's row lock serialises issuers, so workers that
        see one change at once sign it once."""
        with self._transaction() as session:
            last_sequence = int(session.execute(
                sa.text("UPDATE counter SET value = value WHERE name = 'trust_list' RETURNING value")).scalar_one())
            latest = session.get(TrustListIssue, last_sequence) if last_sequence else None
            if latest is not None:
                issued_at, next_update = _aware(latest.issued_at), _aware(latest.next_update)
                if latest.content_sha256 == content_sha256 and now < issued_at + (next_update - issued_at) / 2:
                    session.expunge(latest)
                    return _record(latest)
            sequence = self._next_counter(session, "trust_list")
            self._audit(session, actor, "key.use", {"purpose": "trust-list", "sequence": sequence})
            issued = build(sequence, now)
            row = TrustListIssue(sequence=sequence, content_sha256=content_sha256, issued_at=issued.issued_at,
                                 next_update=issued.next_update, xml=issued.xml, xml_problem=issued.xml_problem,
                                 json_document=issued.json, json_signature=issued.json_signature)
            session.add(row)
            session.flush()
            self._audit(session, actor, "trust_list.issue", {
                "sequence": sequence, "content_sha256": content_sha256, "next_update": issued.next_update.isoformat(),
                "why": "content changed" if latest is None or latest.content_sha256 != content_sha256 else "refresh before next update",
            })
            return _record(row)

    # ------------------------------------------------------------------ API tokens

    def add_token(self, *, actor: str, role: str, token_hash: str, expires_at: datetime | None = None) -> int:
        with self._transaction() as session:
            row = ApiToken(role=role, token_hash=token_hash, created_at=utcnow(), expires_at=expires_at)
            session.add(row)
            session.flush()
            # The hash's prefix only: enough to correlate, useless to log in with.
            details = {"token_id": row.id, "role": role, "hash_prefix": token_hash[:8]}
            if expires_at is not None:
                details["expires_at"] = expires_at.isoformat()
            self._audit(session, actor, "token.create", details)
            if row.id is None:  # assigned by the flush above
                raise StoreError("the database assigned the API token no id")
            return row.id

    def revoke_token(self, *, actor: str, token_id: int) -> None:
        with self._transaction() as session:
            row = session.get(ApiToken, token_id)
            if row is None:
                raise NotFound(f"no API token {token_id}")
            if row.revoked_at is not None:
                raise Conflict("already_revoked", f"API token {token_id} is already revoked")
            row.revoked_at = utcnow()
            session.add(row)
            self._audit(session, actor, "token.revoke", {"token_id": token_id, "role": row.role})
            # Processes cache known tokens per epoch: this makes them forget.
            self._bump_epoch(session)

    def find_token(self, token_hash: str) -> ApiTokenRecord | None:
        """The token with this hash, unless revoked or expired."""
        with self._read() as session:
            row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash, col(ApiToken.revoked_at).is_(None))).first()
        if row is None:
            return None
        token = _record(row)
        # Compared here rather than in SQL: SQLite stores the times as text, so
        # a WHERE on them would compare strings.
        if token.expires_at is not None and token.expires_at <= utcnow():
            return None
        return token

    def list_tokens(self) -> list[ApiTokenRecord]:
        with self._read() as session:
            rows = session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()
        return [_record(r) for r in rows]

    # ------------------------------------------------------------------ external trust lists (bridge/trust_lists.py)

    def add_external_trust_list(self, *, actor: str, name: str, url: str | None, allowed_signers: str, mapping: str) -> ExternalTrustListRecord:
        """Register a list. A trust change (a new possible anchor): bumps the epoch."""
        now = utcnow()
        row = ExternalTrustList(id=uuid.uuid4().hex, name=name, url=url, allowed_signers=allowed_signers, mapping=mapping,
                                status="active", created_at=now, created_by=actor)
        with self._transaction() as session:
            session.add(row)
            session.flush()
            self._audit(session, actor, "trust_list.register", {"list": row.id, "name": name, "url": url,
                                                                "allowed_signers": len(json.loads(allowed_signers))})
            self._bump_epoch(session)
        return _record(row)

    def external_trust_list(self, list_id: str) -> ExternalTrustListRecord:
        with self._read() as session:
            row = session.get(ExternalTrustList, list_id)
            if row is None or row.status != "active":
                raise NotFound(f"no trust list {list_id}")
            return _record(row)

    def external_trust_lists(self) -> list[ExternalTrustListRecord]:
        with self._read() as session:
            rows = session.exec(select(ExternalTrustList).where(ExternalTrustList.status == "active")
                                .order_by(col(ExternalTrustList.created_at), col(ExternalTrustList.id))).all()
            return [_record(r) for r in rows]

    def add_trust_list_version(self, *, actor: str, list_id: str, sequence_number: int, issued_at: datetime,
                               next_update: datetime | None, xml: bytes, sha256: str, signature: str, schema_check: str,
                               source: str) -> tuple[TrustListVersionRecord, bool]:
        """Keep an accepted version: (the version, whether it is new). The
        same sequence number with the same bytes is the version already
        kept; an older sequence number, or the same one with other bytes,
        never replaces what is kept (Conflict). A new version is a trust
        change: audited, and the epoch bumped in the same transaction."""
        with self._transaction() as session:
            head = session.get(ExternalTrustList, list_id)
            if head is None or head.status != "active":
                raise NotFound(f"no trust list {list_id}")
            # Lock the list's row first (PostgreSQL), so two fetches of the
            # same list cannot both insert "the newest" version.
            session.exec(sa.update(ExternalTrustList).where(col(ExternalTrustList.id) == list_id)
                            .values(last_fetch_at=utcnow(), last_fetch_error=None))
            latest = session.exec(select(ExternalTrustListVersion).where(ExternalTrustListVersion.list_id == list_id)
                                  .order_by(col(ExternalTrustListVersion.sequence_number).desc()).limit(1)).first()
            if latest is not None:
                if latest.sequence_number == sequence_number and latest.sha256 == sha256:
                    return _record(latest), False
                if sequence_number <= latest.sequence_number:
                    raise Conflict("stale_sequence_number",
                                   f"the list's sequence number {sequence_number} is not newer than the kept version's {latest.sequence_number}")
            row = ExternalTrustListVersion(list_id=list_id, sequence_number=sequence_number, issued_at=issued_at,
                                           next_update=next_update, xml=xml, sha256=sha256, signature=signature,
                                           schema_check=schema_check, accepted_at=utcnow(), source=source)
            session.add(row)
            session.flush()
            self._audit(session, actor, "trust_list.version", {"list": list_id, "sequence_number": sequence_number,
                                                               "sha256": sha256, "source": source})
            self._bump_epoch(session)
            return _record(row), True

    def record_trust_list_fetch_failure(self, list_id: str, error: str) -> None:
        """Remember the last failed fetch for display (not a trust change: no epoch, no audit entry)."""
        with self._transaction() as session:
            session.exec(sa.update(ExternalTrustList).where(col(ExternalTrustList.id) == list_id)
                            .values(last_fetch_at=utcnow(), last_fetch_error=error[:2000]))

    def trust_list_versions(self, list_id: str) -> list[TrustListVersionRecord]:
        """Every kept version, newest first."""
        with self._read() as session:
            rows = session.exec(select(ExternalTrustListVersion).where(ExternalTrustListVersion.list_id == list_id)
                                .order_by(col(ExternalTrustListVersion.sequence_number).desc())).all()
            return [_record(r) for r in rows]

    def latest_trust_list_version(self, list_id: str) -> TrustListVersionRecord | None:
        with self._read() as session:
            row = session.exec(select(ExternalTrustListVersion).where(ExternalTrustListVersion.list_id == list_id)
                               .order_by(col(ExternalTrustListVersion.sequence_number).desc()).limit(1)).first()
            return _record(row) if row is not None else None

    # ------------------------------------------------------------------ audit

    def audit_entries(self) -> list[AuditEntryRecord]:
        with self._read() as session:
            return [_record(r) for r in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()]

    def audit_counter(self) -> int:
        with self._read() as session:
            return self._counter_value(session, "audit")

    def verify_audit(self) -> audit_chain.AuditFinding:
        return audit_chain.verify_chain(self.audit_entries(), expected_count=self.audit_counter())


    # ------------------------------------------------------------------ two-person control (bridge/governance.py)

    def add_proposal(self, *, actor: str, action: str, params: dict, expires_at: datetime) -> ProposalRecord:
        with self._transaction() as session:
            row = Proposal(id=uuid.uuid4().hex, action=action, params=audit_chain.canonical_details(params), proposer=actor,
                           created_at=utcnow(), expires_at=expires_at, status="pending")
            session.add(row)
            session.flush()
            self._audit(session, actor, "proposal.create", {"proposal": row.id, "action": action, "params": params,
                                                            "expires_at": expires_at.isoformat()})
            return _record(row)

    def proposal(self, proposal_id: str) -> ProposalRecord:
        with self._read() as session:
            row = session.get(Proposal, proposal_id)
        if row is None:
            raise NotFound(f"no proposal {proposal_id}")
        return _record(row)

    def proposals(self, status: str | None = None) -> list[ProposalRecord]:
        with self._read() as session:
            query = select(Proposal)
            if status is not None:
                query = query.where(Proposal.status == status)
            rows = session.exec(query.order_by(col(Proposal.created_at), col(Proposal.id))).all()
        return [_record(r) for r in rows]

    def _expire_proposal(self, session: Session, row: Proposal, actor: str, now: datetime) -> None:
        row.status, row.decided_at = "expired", now
        session.add(row)
        session.flush()
        self._audit(session, actor, "proposal.expire", {"proposal": row.id, "action": row.action, "proposer": row.proposer,
                                                        "expires_at": _aware(row.expires_at).isoformat()})

    def expire_proposals(self, *, actor: str, now: datetime | None = None) -> list[str]:
        """Pending proposals past their expiry become expired (each audited once)."""
        now = now or utcnow()
        expired = []
        with self._transaction() as session:
            for row in session.exec(select(Proposal).where(Proposal.status == "pending").order_by(col(Proposal.id))).all():
                if _aware(row.expires_at) <= now:  # compared in Python: SQLite keeps times as text
                    self._expire_proposal(session, row, actor, now)
                    expired.append(row.id)
        return expired

    def _decide(self, proposal_id: str, *, actor: str, to_status: str, audit_action: str, details: dict,
                check: Callable[[ProposalRecord], None] | None = None) -> ProposalRecord:
        """Move a pending proposal to ``to_status`` (conditional on it still
        being pending: of two admins confirming at once, one wins). A proposal
        found past its expiry is recorded expired instead (committed), then
        refused with proposal_expired."""
        now = utcnow()
        expired = False
        with self._transaction() as session:
            row = session.exec(select(Proposal).where(Proposal.id == proposal_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"no proposal {proposal_id}")
            if row.status == "pending" and _aware(row.expires_at) <= now:
                self._expire_proposal(session, row, "bridgeca", now)
                expired = True
            elif row.status != "pending":
                code = "proposal_expired" if row.status == "expired" else "proposal_not_pending"
                raise Conflict(code, f"proposal {proposal_id} is {row.status}")
            else:
                if check is not None:
                    check(_record(row))
                row.status, row.decided_by, row.decided_at = to_status, actor, now
                session.add(row)
                session.flush()
                self._audit(session, actor, audit_action, {"proposal": row.id, "action": row.action,
                                                           "params": json.loads(row.params), "proposer": row.proposer, **details})
        if expired:
            raise Conflict("proposal_expired", f"proposal {proposal_id} expired at {_aware(row.expires_at).isoformat()}")
        return _record(row)

    def confirm_proposal(self, proposal_id: str, *, actor: str, check: Callable[[ProposalRecord], None] | None = None) -> ProposalRecord:
        """Claim a pending proposal for its confirmation (proposal.confirm); the caller then does the action."""
        return self._decide(proposal_id, actor=actor, to_status="confirmed", audit_action="proposal.confirm", details={}, check=check)

    def cancel_proposal(self, proposal_id: str, *, actor: str, reason: str = "") -> ProposalRecord:
        return self._decide(proposal_id, actor=actor, to_status="cancelled", audit_action="proposal.cancel", details={"reason": reason})

    def finish_proposal(self, proposal_id: str, *, actor: str, outcome: dict, failed: bool) -> ProposalRecord:
        """Record what the confirmed action returned; a refused action makes the proposal failed (proposal.fail)."""
        with self._transaction() as session:
            row = session.get(Proposal, proposal_id)
            if row is None:
                raise NotFound(f"no proposal {proposal_id}")
            row.outcome = json.dumps(outcome, sort_keys=True, default=str)
            if failed:
                row.status = "failed"
                self._audit(session, actor, "proposal.fail", {"proposal": row.id, "action": row.action, **outcome})
            session.add(row)
            session.flush()
            return _record(row)

    # ------------------------------------------------------------------ audit: reading, checkpoints, replay state

    def audit_page(self, *, action: str | None = None, actor: str | None = None, since: datetime | None = None,
                   after_seq: int = 0, limit: int = 100) -> list[AuditEntryRecord]:
        """Entries after ``after_seq`` (in order), filtered; at most ``limit``."""
        with self._read() as session:
            query = select(AuditEntry).where(AuditEntry.seq > after_seq)
            if action is not None:
                # "certificate." matches every certificate.* action.
                query = query.where(col(AuditEntry.action).startswith(action) if action.endswith(".") else AuditEntry.action == action)
            if actor is not None:
                query = query.where(AuditEntry.actor == actor)
            if since is not None:
                # ``at`` is ISO text in UTC, all written alike, so text order is time order.
                query = query.where(AuditEntry.at >= since.astimezone(timezone.utc).isoformat(timespec="microseconds"))
            return [_record(r) for r in session.exec(query.order_by(col(AuditEntry.seq)).limit(limit)).all()]

    def _checkpoint_if_due(self, session: Session, entry: AuditEntry) -> None:
        last = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.entries).desc())).first()
        if last is None or entry.seq - int(last.entries) >= self.checkpoint_every:
            self._write_checkpoint(session, entry.seq, entry.entry_hash)

    def _write_checkpoint(self, session: Session, entries: int, head: str) -> AuditCheckpoint:
        if self.checkpoint_signer is None:  # callers check; a store without the bridge key writes no checkpoint
            raise StoreError("checkpoints need the bridge key")
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        signature, algorithm, signer_sha256 = self.checkpoint_signer(entries, head, at)
        row = AuditCheckpoint(entries=entries, head_hash=head, at=at, algorithm=algorithm, signature=signature,
                              signer_sha256=signer_sha256)
        session.add(row)
        session.flush()
        return row

    def checkpoint_head(self) -> CheckpointRecord | None:
        """Sign the chain's head now, unless the last checkpoint already covers it
        (the periodic checkpoint: entries written since are covered within T
        minutes even when fewer than N). Needs ``checkpoint_signer``."""
        if self.checkpoint_signer is None:
            raise StoreError("checkpoints need the bridge key")
        with self._transaction() as session:
            # The audit counter's row lock: no entry is appended meanwhile, and
            # two workers do not both sign the same head.
            count = int(session.execute(
                sa.text("UPDATE counter SET value = value WHERE name = 'audit' RETURNING value")).scalar_one())
            if count == 0:
                return None
            last = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.entries).desc())).first()
            if last is not None and int(last.entries) >= count:
                return None
            head = session.get(AuditEntry, count)
            if head is None:
                raise StoreError(f"audit log is broken: entry {count} is missing")
            return _record(self._write_checkpoint(session, count, head.entry_hash))

    def audit_checkpoints(self, limit: int | None = None) -> list[CheckpointRecord]:
        """Checkpoints, oldest first (with ``limit``, the newest ``limit`` of them)."""
        with self._read() as session:
            query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc())
            if limit is not None:
                query = query.limit(limit)
            return [_record(r) for r in reversed(session.exec(query).all())]

    def state_snapshot(self) -> audit_chain.StateSnapshot:
        """The state tables that replaying the audit log must reproduce (bridge/audit.py: replay)."""
        with self._read() as session:
            crosses = [{"serial": r.serial, "enrollment": r.enrollment_id, "status": r.status,
                        "revoked_at": _aware(r.revoked_at), "reason": r.revocation_reason}
                       for r in session.exec(select(CrossCertificate).order_by(col(CrossCertificate.id))).all()]
            enrollments = [{"id": r.id, "status": r.status} for r in session.exec(select(Enrollment).order_by(col(Enrollment.id))).all()]
            tokens = [{"id": r.id, "role": r.role, "revoked": r.revoked_at is not None,
                       "expires_at": _aware(r.expires_at).isoformat() if r.expires_at is not None else None}
                      for r in session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()]
            reverses = [{"enrollment": r.enrollment_id, "sha256": r.sha256}
                        for r in session.exec(select(ReverseCertificate).order_by(col(ReverseCertificate.id))).all()]
            blacklist = [{"id": r.id, "ended": r.ended_at is not None} for r in session.exec(select(BlacklistEntry)).all()]
        return audit_chain.StateSnapshot(crosses, enrollments, tokens, reverses, blacklist)

# Each table's record (bridge/records.py): what leaves the store instead of the row.
_RECORD_OF = {
    Enrollment: EnrollmentRecord,
    CrossCertificate: CrossCertificateRecord,
    MemberStatus: StatusChangeRecord,
    ReverseCertificate: ReverseCertificateRecord,
    BlacklistEntry: BlacklistEntryRecord,
    BlacklistPublication: BlacklistPublicationRecord,
    TrustListIssue: TrustListIssueRecord,
    ApiToken: ApiTokenRecord,
    AuditEntry: AuditEntryRecord,
    ExternalTrustList: ExternalTrustListRecord,
    ExternalTrustListVersion: TrustListVersionRecord,
    Proposal: ProposalRecord,
    AuditCheckpoint: CheckpointRecord,
}


def _record(row):
    """The plain record of a row, times made timezone-aware."""
    record_class = _RECORD_OF[type(row)]
    values = {}
    for field in dataclasses.fields(record_class):
        value = getattr(row, field.name)
        values[field.name] = _aware(value) if isinstance(value, datetime) else value
    return record_class(**values)


# --------------------------------------------------------------------------- the federation graph (bridge/federation_graph.py)


@dataclass(frozen=True)
class FederationRows:
    """Every row the federation graph draws, as plain values with aware datetimes (attribute access, like the
    tables' rows). Read with Core queries in one read transaction: at 60 members, building ORM objects for the
    same rows cost some 35 times the queries themselves."""

    enrollments: list  # by creation time
    cross_certificates: list  # handed out (issued, held, revoked): reservations have no certificate
    reverse_certificates: list  # by id, so an enrollment's newest is its last
    status_changes: list  # member_status rows, oldest first
    trust_lists: list  # external lists in force
    trust_list_versions: list  # their versions' facts (no XML), newest sequence number first


def federation_rows(store: Store) -> FederationRows:
    from types import SimpleNamespace

    def plain(statement) -> list:
        result = connection.execute(statement)
        keys = tuple(result.keys())
        return [SimpleNamespace(**{k: _aware(v) if isinstance(v, datetime) else v for k, v in zip(keys, row, strict=True)})
                for row in result]

    enrollment, cross = Enrollment.__table__.c, CrossCertificate.__table__.c  # type: ignore[attr-defined]
    reverse, status = ReverseCertificate.__table__.c, MemberStatus.__table__.c  # type: ignore[attr-defined]
    lists, versions = ExternalTrustList.__table__.c, ExternalTrustListVersion.__table__.c  # type: ignore[attr-defined]
    with store._read() as session:
        connection = session.connection()
        return FederationRows(
            enrollments=plain(sa.select(Enrollment.__table__).order_by(enrollment.created_at, enrollment.id)),  # type: ignore[attr-defined]
            cross_certificates=plain(sa.select(CrossCertificate.__table__)  # type: ignore[attr-defined]
                                     .where(cross.status.in_(("issued", "held", "revoked"))).order_by(cross.id)),
            reverse_certificates=plain(sa.select(ReverseCertificate.__table__).order_by(reverse.id)),  # type: ignore[attr-defined]
            status_changes=plain(sa.select(MemberStatus.__table__).order_by(status.id)),  # type: ignore[attr-defined]
            trust_lists=plain(sa.select(lists.id, lists.name, lists.url, lists.created_at, lists.created_by,
                                        lists.last_fetch_error).where(lists.status == "active")
                              .order_by(lists.created_at, lists.id)),
            trust_list_versions=plain(sa.select(versions.list_id, versions.sequence_number, versions.issued_at,
                                                versions.next_update, versions.sha256)
                                      .order_by(versions.sequence_number.desc())),
        )


# =========================================================================== evidence and time-stamp serials (issue 12)
# bridge/evidence.py and bridge/tsa.py; migration 0010. Functions over a Store,
# so that this section stays apart from the class above.


class Evidence(SQLModel, table=True):
    """One piece of evidence a signed receipt named, by SHA-256 of its bytes (migration 0010)."""

    __tablename__ = "evidence"
    sha256: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # certificate, cms, content, crl, ocsp, timestamp
    data: bytes = Field(sa_type=sa.LargeBinary)
    size: int = Field(sa_type=sa.BigInteger)
    created_at: datetime = Field(sa_type=TZDateTime)
    named_at: datetime = Field(sa_type=TZDateTime, index=True)
    expires_at: datetime = Field(sa_type=TZDateTime, index=True)


@dataclass(frozen=True)
class EvidenceRecord:
    sha256: str
    kind: str
    data: bytes
    created_at: datetime
    expires_at: datetime


def next_tsa_serial(store: Store, count: int = 1) -> int:
    """Reserve ``count`` time-stamp serial numbers (unique across workers and
    restarts): the last of them is returned, the others are the ``count - 1``
    before it."""
    with store._transaction() as session:
        value = session.execute(sa.text("UPDATE counter SET value = value + :count WHERE name = 'tsa_serial' RETURNING value"),
                                {"count": count}).scalar_one()
        return int(value)


def keep_evidence(store: Store, items: Sequence[tuple[str, str, bytes]], *, now: datetime, keep_until: datetime,
                  max_bytes: int) -> None:
    """Keep ``items`` ((sha256 hex, kind, bytes)) until ``keep_until`` (an item
    kept already is kept longer), then drop what expired and, over
    ``max_bytes`` in all, the least recently named. One transaction."""
    with store._transaction() as session:
        for sha256, kind, data in items:
            row = session.get(Evidence, sha256)
            if row is None:
                session.add(Evidence(sha256=sha256, kind=kind, data=data, size=len(data), created_at=now,
                                     named_at=now, expires_at=keep_until))
            else:
                row.named_at, row.expires_at = now, max(_aware(row.expires_at), keep_until)
        session.flush()
        _prune_evidence(session, now, max_bytes)


def _prune_evidence(session: Session, now: datetime, max_bytes: int) -> None:
    session.execute(sa.delete(Evidence).where(col(Evidence.expires_at) < now))
    total = int(session.execute(sa.select(sa.func.coalesce(sa.func.sum(col(Evidence.size)), 0))).scalar_one())
    if total <= max_bytes:
        return
    for sha256, size in session.execute(sa.select(col(Evidence.sha256), col(Evidence.size)).order_by(col(Evidence.named_at))).all():
        session.execute(sa.delete(Evidence).where(col(Evidence.sha256) == sha256))
        total -= int(size)
        if total <= max_bytes:
            return


def prune_evidence(store: Store, *, now: datetime, max_bytes: int) -> None:
    with store._transaction() as session:
        _prune_evidence(session, now, max_bytes)


def evidence_record(store: Store, sha256: str, *, now: datetime) -> EvidenceRecord | None:
    """The evidence with that SHA-256 (hex, lower case); None if absent or expired."""
    with store._read() as session:
        row = session.get(Evidence, sha256)
        if row is None or _aware(row.expires_at) <= now:
            return None
        return EvidenceRecord(row.sha256, row.kind, bytes(row.data), _aware(row.created_at), _aware(row.expires_at))
