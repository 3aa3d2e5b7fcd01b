"""The one error the bridge's callers see: ``BridgeError``.

A failure carries a stable ``code`` (what went wrong, for programs), a plain
``message`` (for people) and a ``kind`` (which sort of failure it is). The
kind is the domain's word, not a transport's: api/problems.py alone turns it
into an HTTP status, and the CLI into an exit code.

The facade's helpers (``translated``) turn the roles' own exceptions
(registration, store, signer, authority) into BridgeErrors at the facade's
edge, so a caller handles one type.
"""
from __future__ import annotations

from typing import Literal, get_args

Kind = Literal[
    "malformed",     # the input cannot be read at all (bad encoding, not a certificate, a bad setting)
    "invalid",       # read, and refused on its merits
    "unauthorized",  # no identity, or one not accepted
    "forbidden",     # an identity not allowed to do this
    "not_found",     # names something that does not exist (or that this caller may not see)
    "conflict",      # the current state does not allow it (already done, wrong state, a taken name)
    "too_large",     # more than a configured limit allows
    "rate_limited",  # too many requests for now
    "unavailable",   # a resource the bridge depends on (database, key) cannot be used now
    "internal",      # the bridge's own fault
]
KINDS: tuple[str, ...] = get_args(Kind)


class BridgeError(Exception):
    """A failure the caller can act on: stable ``code``, plain ``message``, its ``kind``."""

    def __init__(self, code: str, message: str, kind: Kind = "invalid"):
        if kind not in KINDS:  # an HTTP status here is an old caller's: say so rather than guess
            raise ValueError(f"BridgeError kind {kind!r} is not one of {', '.join(KINDS)}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind: Kind = kind

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "kind": self.kind}


# EnrollmentError codes that are not "invalid": the request could not be
# read, or the enrollment's state does not allow the step.
_ENROLLMENT_KINDS: dict[str, Kind] = {"malformed_certificate": "malformed", "invalid_state": "conflict"}


def translate(exc: Exception) -> BridgeError:
    """The BridgeError for one of the roles' exceptions; anything else is re-raised."""
    # Imported here: errors.py is imported by the modules these come from.
    from .authority import ProfileViolation
    from .registration import EnrollmentError
    from .signer import SignerError
    from .store import Conflict, NotFound, StoreError

    if isinstance(exc, BridgeError):
        return exc
    if isinstance(exc, EnrollmentError):
        return BridgeError(exc.code, exc.message, _ENROLLMENT_KINDS.get(exc.code, "invalid"))
    if isinstance(exc, NotFound):
        return BridgeError("not_found", str(exc), "not_found")
    if isinstance(exc, Conflict):
        return BridgeError(exc.code, str(exc), "conflict")
    if isinstance(exc, SignerError):
        return BridgeError("signer_unavailable", str(exc), "unavailable")
    if isinstance(exc, StoreError):
        return BridgeError("database_unavailable", str(exc), "unavailable")
    if isinstance(exc, ProfileViolation):
        return BridgeError("profile_violation", str(exc), "internal")
    raise exc


class translated:
    """Context manager: the roles' exceptions leave the block as BridgeError."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        from .authority import ProfileViolation
        from .registration import EnrollmentError
        from .signer import SignerError
        from .store import StoreError

        if isinstance(exc, BridgeError) or not isinstance(exc, (EnrollmentError, StoreError, SignerError, ProfileViolation)):
            return False
        raise translate(exc) from exc
