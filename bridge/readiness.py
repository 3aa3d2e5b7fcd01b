"""Readiness: can this process do its work now?

Liveness (/v1/health) only says the event loop answers. Readiness asks what
a verification or an issuance needs: the database answers, the signing key
signs (for PKCS#11 that proves the session is open and logged in), the
bridge CRL relying parties are handed is not past its nextUpdate, and the
revocation epoch -- how this process learns of revocations made through
others -- is being read. Each check is independent and reports why it
failed; a failure is a fact about the service, never an exception.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

# Signed by the readiness check. Not DER, so the signature cannot stand for a
# certificate, CRL or OCSP response (their signatures cover a DER
# SEQUENCE); it never leaves the process either.
PROBE_MESSAGE = b"bridgeca readiness probe: not a certificate, CRL or OCSP response\n"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return {"status": "ok" if self.ok else "failed", "detail": self.detail}


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_dict(self) -> dict:
        return {"status": "ready" if self.ready else "not_ready", "checks": {c.name: c.to_dict() for c in self.checks}}


def _error(exc: BaseException) -> str:
    # BridgeError and StoreError carry a one-line message meant for operators
    # (database URLs with the password hidden); anything else by type only.
    message = getattr(exc, "message", None) or (str(exc) if exc.__class__.__module__.startswith("bridge") else "")
    message = message.strip().splitlines()[0] if message and message.strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def check_database(ca) -> Check:
    """A trivial query through the store. For SQLite also the file itself:
    the pool's open connections keep answering from a file that was removed
    or made unreadable, but a restart, or any other process, would not find
    the bridge there -- and a new connection would create an empty one."""
    path = ca.store.sqlite_file
    if path is not None:
        if not path.exists():
            return Check("database", False, f"the SQLite database {path} is gone")
        if not os.access(path, os.R_OK | os.W_OK):
            return Check("database", False, f"the SQLite database {path} is not readable and writable")
    try:
        epoch = ca.store.epoch()
    except Exception as exc:
        return Check("database", False, f"the database does not answer: {_error(exc)}")
    return Check("database", True, f"{ca.store.safe_url} answers (epoch {epoch})")


def check_signer(ca) -> Check:
    """Every bridge key signs a fixed message, and the signature verifies
    under the key's certificate."""
    from .signer import verify_with_spki

    for i, key in enumerate(ca.authority.keys):
        which = "the bridge key" if i == 0 else "the second bridge key"
        try:
            signature = key.signer.sign(PROBE_MESSAGE)
        except Exception as exc:
            return Check("signer", False, f"{which} ({key.key_type}) cannot sign: {_error(exc)}")
        if not verify_with_spki(key.spki, key.signer.signature_algorithm_der, signature, PROBE_MESSAGE):
            return Check("signer", False, f"{which} ({key.key_type}) made a signature that does not verify under its certificate")
    types = ", ".join(k.key_type for k in ca.authority.keys)
    return Check("signer", True, f"signs ({types})")


def crl_times(ca) -> tuple[dt.datetime, dt.datetime | None]:
    """thisUpdate and nextUpdate of the CRL the bridge publishes now (the
    one /v1/crl serves: renewed there once half its validity has passed)."""
    from cryptography import x509

    crl = x509.load_der_x509_crl(ca.current_crl())
    return crl.last_update_utc, crl.next_update_utc


def check_crl(ca, now: dt.datetime | None = None) -> Check:
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        _this_update, next_update = crl_times(ca)
    except Exception as exc:
        return Check("crl", False, f"no current CRL: {_error(exc)}")
    if next_update is None:
        return Check("crl", False, "the current CRL has no nextUpdate")
    left = (next_update - now).total_seconds()
    if left <= 0:
        return Check("crl", False, f"the current CRL is past its nextUpdate ({next_update:%Y-%m-%dT%H:%M:%SZ})")
    return Check("crl", True, f"nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ}, in {int(left)} s")


def check_epoch(verification) -> Check:
    """The epoch was read within the poll interval, or can be read now."""
    from .verification import EPOCH_POLL_SECONDS

    epoch = verification.known_epoch()
    if epoch is not None:
        return Check("epoch", True, f"epoch {epoch}, read within the last {EPOCH_POLL_SECONDS:g} s")
    try:
        epoch = verification.current_epoch()
    except Exception as exc:
        return Check("epoch", False, f"the revocation epoch cannot be read: {_error(exc)}")
    return Check("epoch", True, f"epoch {epoch}, read now")


def readiness(ca, verification) -> Readiness:
    """Every check, in order; blocking (database, signing): call it from a thread."""
    return Readiness((check_database(ca), check_signer(ca), check_crl(ca), check_epoch(verification)))
