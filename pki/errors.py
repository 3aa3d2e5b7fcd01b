"""The two error types of the verification core.

``InputError`` is raised for bytes that cannot be read at all (the CLI maps it
to exit status 2, the API to 400). ``ValidationError`` is the one error type a
certificate that parses but fails produces: a stable ``code``, a plain-words
``message``, and the certificate it concerns (index in the path and subject).
"""
from __future__ import annotations

from dataclasses import dataclass, field


class InputError(ValueError):
    """Malformed input: unparseable DER/PEM, bad OIDs, unreadable files."""


# Stable codes of the public contract (INTERFACE.md). New codes may be added;
# none may be renamed.
SIGNATURE_INVALID = "signature_invalid"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
NAME_CHAINING = "name_chaining"
NOT_A_CA = "not_a_ca"
PATH_LENGTH_EXCEEDED = "path_length_exceeded"
KEY_USAGE = "key_usage"
POLICY_REQUIRED = "policy_required"
NAME_CONSTRAINTS = "name_constraints"
REVOKED = "revoked"
REVOCATION_UNKNOWN = "revocation_unknown"
# Revoked after the validation time, a time only claimed (a signing-time
# attribute, a time the caller names): nothing proves the signature existed
# before the revocation (EN 319 102-1 REVOKED_NO_POE).
REVOKED_NO_POE = "revoked_no_poe"
UNKNOWN_CRITICAL_EXTENSION = "unknown_critical_extension"
NO_PATH = "no_path"
BUDGET_EXCEEDED = "budget_exceeded"
UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
MALFORMED_CERTIFICATE = "malformed_certificate"
# The trust anchor's certificate cannot serve (expired, not a CA, unknown
# critical extension) when its own constraints are honoured.
ANCHOR_INVALID = "anchor_invalid"
# The path does not allow what the relying party asked it for (key usage,
# extended key usage).
PURPOSE = "purpose"
# A certificate on hold (certificateHold, RFC 5280 5.3.1): the bridge says so
# of a suspended member's cross-certificate.
SUSPENDED = "suspended"
# A certificate, key or subject on the relying party's blocklist (pki/blocklist.py).
BLACKLISTED = "blacklisted"


@dataclass(frozen=True)
class ValidationError(Exception):
    """Why a path failed: which certificate (index, subject), which check, why.

    ``index`` counts from the end-entity (0) towards the anchor, as ``path`` in
    the result object does; ``None`` when the failure concerns no single
    certificate (for instance ``no_path``).
    """

    code: str
    message: str
    index: int | None = None
    subject: str | None = None
    # Revocation statuses found on the path before it failed (per path index),
    # so that a result can report them: set by validate_path.
    statuses: tuple = field(default=(), compare=False, repr=False)
    # The blocklist entry that refused the certificate (code blacklisted).
    blacklist_entry: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        if self.subject is not None:
            return f"{self.message} (certificate {self.index}: {self.subject})"
        return self.message

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": str(self), "certificate": self.index}
        if self.blacklist_entry is not None:
            out["blacklist_entry"] = self.blacklist_entry
        return out


class BudgetExceeded(Exception):
    """Raised inside a search when its budget runs out; fatal for the call."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"verification budget exceeded: more than {limit} {what}")
        self.what = what
        self.limit = limit
        self.path: tuple | None = None  # the (partial) path being searched when it ran out
        self.index: int | None = None  # the certificate in it whose issuers were being searched
