"""Three-valued outcomes (ETSI EN 319 102-1, clause 5.1.3) for our results.

``valid`` says yes or no; a platform in a dispute also needs to know whether
"no" is final (TOTAL_FAILED: forged, revoked before the signature existed),
or the answer cannot be given with the evidence at hand (INDETERMINATE: the
CRL server is down, the signature's existence before a revocation is not
proven). The sub-indication is the standard's name for the reason.

Each of our error codes (INTERFACE.md, pki/errors.py, pki/cms.py) maps to one
(indication, sub_indication); two depend on where the failure is:
``revoked_no_poe`` is REVOKED_CA_NO_POE for a CA certificate of the path, and
``expired`` seen by a signature validated at the current time, which nothing
proves it existed before, is OUT_OF_BOUNDS_NO_POE (5.2.6: the signature may
predate the expiry; past signature validation, 5.6.2.4, would need a POE).
"""
from __future__ import annotations

import datetime as dt

TOTAL_PASSED = "TOTAL_PASSED"
TOTAL_FAILED = "TOTAL_FAILED"
INDETERMINATE = "INDETERMINATE"

# EN 319 102-1 table 5 sub-indications used here.
FORMAT_FAILURE = "FORMAT_FAILURE"
HASH_FAILURE = "HASH_FAILURE"
SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
REVOKED = "REVOKED"
EXPIRED = "EXPIRED"
NOT_YET_VALID = "NOT_YET_VALID"
SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
REVOKED_NO_POE = "REVOKED_NO_POE"
REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
TRY_LATER = "TRY_LATER"

# Our code -> (indication, sub-indication). Certificate-level failures follow
# the X.509 certificate validation block (5.2.6): constraints of the path
# (length, names, policies, the relying party's purposes and blacklist) are
# CHAIN_CONSTRAINTS_FAILURE, no path NO_CERTIFICATE_CHAIN_FOUND, a status that
# could not be had (fetch failed, on hold) TRY_LATER, and every other defect
# of a certificate in the path CERTIFICATE_CHAIN_GENERAL_FAILURE. Failures of
# the signature itself follow 5.2.7 (cryptographic verification) and 5.2.2
# (format checking).
CODES: dict[str, tuple[str, str]] = {
    # certificates and paths
    "signature_invalid": (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE),
    "expired": (TOTAL_FAILED, EXPIRED),
    "not_yet_valid": (TOTAL_FAILED, NOT_YET_VALID),
    "name_chaining": (INDETERMINATE, NO_CERTIFICATE_CHAIN_FOUND),
    "no_path": (INDETERMINATE, NO_CERTIFICATE_CHAIN_FOUND),
    "not_a_ca": (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE),
    "key_usage": (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE),
    "path_length_exceeded": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    "policy_required": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    "name_constraints": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    "purpose": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    "blacklisted": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    "revoked": (TOTAL_FAILED, REVOKED),
    "revoked_no_poe": (INDETERMINATE, REVOKED_NO_POE),
    "suspended": (INDETERMINATE, TRY_LATER),
    "revocation_unknown": (INDETERMINATE, TRY_LATER),
    "unknown_critical_extension": (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE),
    "malformed_certificate": (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE),
    "anchor_invalid": (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE),
    "budget_exceeded": (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE),
    "unsupported_algorithm": (INDETERMINATE, CRYPTO_CONSTRAINTS_FAILURE),
    # the signature itself
    "content_mismatch": (TOTAL_FAILED, HASH_FAILURE),
    "signer_not_found": (INDETERMINATE, NO_SIGNING_CERTIFICATE_FOUND),
    # 5.2.3.4 (identification of the signing certificate): an ESS
    # signing-certificate(-v2) attribute that names another certificate
    # leaves the signer unidentified; it is neither a format defect (the
    # attribute is well formed) nor a constraint of the validation policy.
    "signing_certificate_mismatch": (INDETERMINATE, NO_SIGNING_CERTIFICATE_FOUND),
    "missing_message_digest": (TOTAL_FAILED, FORMAT_FAILURE),
    "missing_content_type": (TOTAL_FAILED, FORMAT_FAILURE),
    "content_type_mismatch": (TOTAL_FAILED, FORMAT_FAILURE),
    "signed_attributes_invalid": (TOTAL_FAILED, FORMAT_FAILURE),
    # A trusted list used as the trust anchor (bridge/trust_lists.py) does
    # not grant the path's service, or its policy, at the validation time: a
    # constraint of the validation policy (EN 319 102-1 5.2.6, trust anchors).
    "not_recognised": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    "service_withdrawn": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    "policy_not_recognised": (INDETERMINATE, CHAIN_CONSTRAINTS_FAILURE),
    # The relying party asked for validation at the signing time, and the
    # signature does not say when it was made: a constraint of the question.
    "missing_signing_time": (INDETERMINATE, SIG_CONSTRAINTS_FAILURE),
}
# The cryptographic verification of the signature value (5.2.7); the same
# code on a certificate of the path is the chain's failure (above).
SIGNATURE_CODES: dict[str, tuple[str, str]] = {
    "signature_invalid": (TOTAL_FAILED, SIG_CRYPTO_FAILURE),
}
# A code we do not know yet (a newer core, a trust list's own): say so
# without claiming finality.
UNKNOWN = (INDETERMINATE, CERTIFICATE_CHAIN_GENERAL_FAILURE)


def for_code(code: str | None, *, is_ca: bool = False, of_signature: bool = False,
             signed_at_unknown: bool = False) -> tuple[str, str | None]:
    """(indication, sub_indication) for a result whose error has ``code``
    (None: valid). ``is_ca``: the failing certificate is a CA certificate of
    the path; ``of_signature``: the failure is the signature's own, not its
    signer's chain; ``signed_at_unknown``: a signature's chain was judged at
    the current time, nothing saying when the signature was made (no time
    asked for, no time-stamp)."""
    if code is None:
        return TOTAL_PASSED, None
    if of_signature and code in SIGNATURE_CODES:
        return SIGNATURE_CODES[code]
    if code == "revoked_no_poe" and is_ca:
        return INDETERMINATE, REVOKED_CA_NO_POE
    if code == "expired" and signed_at_unknown:
        return INDETERMINATE, OUT_OF_BOUNDS_NO_POE
    return CODES.get(code, UNKNOWN)


def reindicate(answer: dict) -> dict:
    """A result object (``to_dict()``) whose ``valid``/``error`` a later
    judgement changed (a trusted list's recognition): its indication again
    from its error, in place."""
    error = answer.get("error")
    if not answer.get("valid") and isinstance(error, dict):
        if answer.get("indication") == TOTAL_PASSED or answer.get("indication") is None:
            answer["indication"], answer["sub_indication"] = for_code(error.get("code"))
    return answer


def iso(t: dt.datetime | None) -> str | None:
    """ISO 8601 in whole seconds, UTC, with a Z."""
    if t is None:
        return None
    if t.tzinfo is _UTC and t.year >= 1000:  # every time the core makes; isoformat costs a third less than strftime
        return t.isoformat(timespec="seconds")[:19] + "Z"
    return t.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UTC = dt.timezone.utc


def fields(code: str | None, validation_time: dt.datetime | None, **kw) -> dict:
    """The three fields every result object carries beside ``valid``."""
    indication, sub = for_code(code, **kw)
    return {"indication": indication, "sub_indication": sub, "validation_time": iso(validation_time)}
