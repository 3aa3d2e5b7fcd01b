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
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, select

from . import audit as audit_chain

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


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


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


# --------------------------------------------------------------------------- values handed out


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

    def epoch(self) -> int:
        """The revocation epoch (one indexed read; polled by verifiers)."""
        with self._read() as session:
            return int(session.get(Counter, "epoch").value)

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
    ) -> Enrollment:
        now = utcnow()
        with self._transaction() as session:
            # Same key enrolled and not yet cut off: refuse. The "enroll"
            # counter's row lock serialises enrollments, so two submissions of
            # one key cannot both pass this check.
            self._next_counter(session, "enroll")
            existing = session.exec(
                select(Enrollment).where(
                    Enrollment.spki_sha256 == spki_sha256, Enrollment.status.in_(("pending", "active", "suspended"))
                )
            ).first()
            if existing is not None:
                raise Conflict("already_enrolled", f"this public key is already enrolled (enrollment {existing.id}, {existing.status})")
            previous = session.exec(
                select(Enrollment)
                .where(Enrollment.member == member, Enrollment.status.in_(("pending", "active")))
                .order_by(Enrollment.created_at.desc())
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
                replaces_id=previous.id if previous is not None else None,
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
        return record

    def get_enrollment(self, enrollment_id: str) -> Enrollment:
        with self._read() as session:
            record = session.get(Enrollment, enrollment_id)
        if record is None:
            raise NotFound(f"no enrollment {enrollment_id}")
        return _fix_times(record)

    def list_enrollments(self, owner_token_id: int | None = None) -> list[Enrollment]:
        with self._read() as session:
            query = select(Enrollment)
            if owner_token_id is not None:
                query = query.where(Enrollment.owner_token_id == owner_token_id)
            rows = session.exec(query.order_by(Enrollment.created_at, Enrollment.id)).all()
        return [_fix_times(r) for r in rows]

    def set_enrollment_status(self, enrollment_id: str, *, from_status: Sequence[str], to_status: str, actor: str, reason: str) -> None:
        with self._transaction() as session:
            updated = session.execute(
                sa.update(Enrollment)
                .where(Enrollment.id == enrollment_id, Enrollment.status.in_(tuple(from_status)))
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

    def status_history(self, enrollment_id: str) -> list[MemberStatus]:
        with self._read() as session:
            rows = session.exec(
                select(MemberStatus).where(MemberStatus.enrollment_id == enrollment_id).order_by(MemberStatus.id)
            ).all()
        return [_fix_times(r) for r in rows]

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
        moved = session.execute(
            sa.update(Enrollment).where(Enrollment.id == record.id, Enrollment.status.in_(tuple(from_states)))
            .values(status=to_status, updated_at=now)
        ).rowcount
        if moved != 1:
            raise Conflict("invalid_state", f"enrollment {record.id} changed state meanwhile")

    def _crosses(self, session: Session, enrollment_id: str, statuses: Sequence[str]) -> list[CrossCertificate]:
        return list(session.exec(
            select(CrossCertificate).where(CrossCertificate.enrollment_id == enrollment_id,
                                           CrossCertificate.status.in_(tuple(statuses))).order_by(CrossCertificate.id)
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
            stored = session.execute(
                sa.update(CrossCertificate)
                .where(CrossCertificate.serial == serial_hex, CrossCertificate.status == "reserved")
                .values(status="issued", der=der, not_before=not_before, not_after=not_after, issued_at=now)
            ).rowcount
            if stored != 1:
                raise StoreError(f"serial {serial_hex} was not reserved")
            details = {"enrollment": enrollment_id, "serial": serial_hex, "supersedes": list(supersedes), "status": "active",
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
            for record in session.exec(select(Enrollment).where(Enrollment.status == "pending").order_by(Enrollment.id)).all():
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
            warned = session.execute(
                sa.update(CrossCertificate)
                .where(CrossCertificate.serial == serial, CrossCertificate.expiry_warned_at.is_(None))
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
            activated = session.execute(
                sa.update(Enrollment)
                .where(Enrollment.id == enrollment_id, Enrollment.status == "pending")
                .values(status="active", updated_at=now)
            ).rowcount
            if activated != 1:
                raise Conflict("invalid_state", f"enrollment {enrollment_id} is no longer pending")
            stored = session.execute(
                sa.update(CrossCertificate)
                .where(CrossCertificate.serial == serial_hex, CrossCertificate.status == "reserved")
                .values(status="issued", der=der, not_before=not_before, not_after=not_after, issued_at=now)
            ).rowcount
            if stored != 1:
                raise StoreError(f"serial {serial_hex} was not reserved")
            self._record_status(session, enrollment_id, "active", actor, now, "approved", {"serials": [serial_hex]})
            self._audit(session, actor, "certificate.issue", {"serial": serial_hex, "enrollment": enrollment_id, "not_after": not_after.isoformat()})
            self._audit(session, actor, "enrollment.approve", {"enrollment": enrollment_id, "serial": serial_hex})
            self._bump_epoch(session)

    def cross_certificate(self, serial: int) -> CrossCertificate:
        with self._read() as session:
            row = session.exec(select(CrossCertificate).where(CrossCertificate.serial == format(serial, "x"))).first()
        if row is None:
            raise NotFound(f"no cross-certificate with serial {serial:x}")
        return _fix_times(row)

    def cross_certificates(self, *, statuses: Sequence[str] = ("issued", "held", "revoked"), enrollment_id: str | None = None) -> list[CrossCertificate]:
        with self._read() as session:
            query = select(CrossCertificate).where(CrossCertificate.status.in_(tuple(statuses)))
            if enrollment_id is not None:
                query = query.where(CrossCertificate.enrollment_id == enrollment_id)
            rows = session.exec(query.order_by(CrossCertificate.id)).all()
        return [_fix_times(r) for r in rows]

    # ------------------------------------------------------------------ revocation and CRLs

    def _issue_crl(self, session: Session, actor: str, now: datetime, build: CrlBuilder, number: int) -> CrlRecord:
        # A suspended member's certificates ("held") are listed with
        # certificateHold; reinstated, they are simply left off the next CRL
        # (RFC 5280 5.3.1; removeFromCRL is for delta CRLs, which this bridge does not issue).
        rows = session.exec(
            select(CrossCertificate).where(CrossCertificate.status.in_(("revoked", "held"))).order_by(CrossCertificate.id)
        ).all()
        revoked = [
            RevokedEntry(int(r.serial, 16), _aware(r.revoked_at),
                         "certificateHold" if r.status == "held" else r.revocation_reason or "unspecified")
            for r in rows
        ]
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
                    sa.update(Enrollment).where(Enrollment.id == row.enrollment_id).values(status="revoked", updated_at=now)
                )
                self._record_status(session, row.enrollment_id, "revoked", actor, now, reason, {"serials": [serial_hex]})
            self._audit(session, actor, "certificate.revoke", {"serial": serial_hex, "reason": reason, "enrollment": row.enrollment_id})
            return self._issue_crl(session, actor, now, build_crl, number)

    def issue_crl(self, *, actor: str, build_crl: CrlBuilder) -> CrlRecord:
        with self._transaction() as session:
            number = self._next_counter(session, "crl")
            return self._issue_crl(session, actor, utcnow(), build_crl, number)

    def latest_crl(self) -> CrlRecord | None:
        with self._read() as session:
            row = session.exec(select(Crl).order_by(Crl.number.desc())).first()
        if row is None:
            return None
        return CrlRecord(row.number, row.der, _aware(row.this_update), _aware(row.next_update))

    def crl_numbers(self) -> list[int]:
        with self._read() as session:
            return [int(n) for n in session.exec(select(Crl.number).order_by(Crl.number)).all()]

    # ------------------------------------------------------------------ reverse certificates

    def add_reverse_certificate(self, *, actor: str, enrollment_id: str, der: bytes, sha256: str, not_after: datetime) -> ReverseCertificate:
        try:
            with self._transaction() as session:
                if session.get(Enrollment, enrollment_id) is None:
                    raise NotFound(f"no enrollment {enrollment_id}")
                row = ReverseCertificate(enrollment_id=enrollment_id, sha256=sha256, der=der, not_after=not_after, created_at=utcnow())
                session.add(row)
                session.flush()
                self._audit(session, actor, "reverse.upload", {"enrollment": enrollment_id, "sha256": sha256})
                self._bump_epoch(session)
            return row
        except IntegrityViolation as exc:
            if "sha256" in str(exc):
                raise Conflict("duplicate", "this reverse certificate is already stored") from exc
            raise

    def reverse_certificates(self, *, enrollment_statuses: Sequence[str] = ("active",)) -> list[ReverseCertificate]:
        with self._read() as session:
            rows = session.exec(
                select(ReverseCertificate)
                .join(Enrollment, Enrollment.id == ReverseCertificate.enrollment_id)
                .where(Enrollment.status.in_(tuple(enrollment_statuses)))
                .order_by(ReverseCertificate.id)
            ).all()
        return [_fix_times(r) for r in rows]

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
            return int(row.id)

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

    def find_token(self, token_hash: str) -> ApiToken | None:
        """The token with this hash, unless revoked or expired."""
        with self._read() as session:
            row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))).first()
        if row is None:
            return None
        row = _fix_times(row)
        # Compared here rather than in SQL: SQLite stores the times as text, so
        # a WHERE on them would compare strings.
        if row.expires_at is not None and row.expires_at <= utcnow():
            return None
        return row

    def list_tokens(self) -> list[ApiToken]:
        with self._read() as session:
            rows = session.exec(select(ApiToken).order_by(ApiToken.id)).all()
        return [_fix_times(r) for r in rows]

    # ------------------------------------------------------------------ audit

    def audit_entries(self) -> list[AuditEntry]:
        with self._read() as session:
            return list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())

    def audit_counter(self) -> int:
        with self._read() as session:
            return int(session.get(Counter, "audit").value)

    def verify_audit(self) -> audit_chain.AuditFinding:
        return audit_chain.verify_chain(self.audit_entries(), expected_count=self.audit_counter())


def _fix_times(row):
    for name, value in list(vars(row).items()):
        if isinstance(value, datetime):
            setattr(row, name, _aware(value))
    return row
