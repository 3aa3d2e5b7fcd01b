"""RFC 3161 signature time-stamp tokens: proofs that a signature existed.

A CMS signer may carry, as the unsigned attribute
id-aa-signatureTimeStampToken (RFC 3161 appendix A), a time-stamp token over
its signature value. A token that checks out proves the signature existed at
the token's genTime (a proof of existence, POE, in EN 319 102-1's words), so
the signer's chain can be judged at that time, revocations after it
notwithstanding (pki/validation.py).

A token is checked as a CMS signature of its own, through the same Verifier
(same anchors, revocation sources and budget limits): its SignedData
signature and signed attributes (ESS signing-certificate binding included),
the TSA's chain at the current time with the purpose timeStamping, the TSA
certificate's extendedKeyUsage (RFC 3161 2.3: critical, timeStamping only),
and its message imprint over the SignerInfo's signature value. A bad token is
reported, never raised: the signature is then judged without the proof.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import tsp as asn1_tsp

from .errors import BudgetExceeded, InputError, ValidationError
from .indication import TOTAL_FAILED, for_code, iso

if TYPE_CHECKING:
    from .verifier import VerificationResult, Verifier

ATTR_SIGNATURE_TIME_STAMP = "1.2.840.113549.1.9.16.2.14"
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
TIME_STAMPING = "1.3.6.1.5.5.7.3.8"
EXTENDED_KEY_USAGE = "2.5.29.37"
# Tokens looked at per SignerInfo: one proves existence; a few allow a TSA
# change; more are a way to make a message expensive.
MAX_TOKENS = 4

# Codes of a token's own defects (a token's CMS or chain failure keeps its code).
TIMESTAMP_MALFORMED = "timestamp_malformed"
TIMESTAMP_IMPRINT_MISMATCH = "timestamp_imprint_mismatch"
TIMESTAMP_NOT_A_TSA = "timestamp_not_a_tsa"

# The chain options a token's own chain is checked with: the signer's
# revocation settings and limits, not its policies or purposes.
_TSA_CHAIN_OPTIONS = ("revocation", "revocation_provider", "profile", "anchor_constraints", "intermediates")


@dataclass(frozen=True)
class TimeStamp:
    status: str  # "valid" | "invalid" (final) | "indeterminate" (e.g. the TSA's revocation status unknown)
    sha256: str  # hex SHA-256 of the token's DER, naming the evidence
    tsa: str | None = None  # the TSA certificate's subject
    time: dt.datetime | None = None  # genTime
    error: ValidationError | None = None
    chain: "VerificationResult | None" = None  # the TSA's chain

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    def to_dict(self) -> dict:
        return {
            "tsa": self.tsa,
            "time": iso(self.time),
            "status": self.status,
            "sha256": self.sha256,
            "error": self.error.to_dict() if self.error is not None else None,
        }


def tokens_of(signer_info: asn1_cms.SignerInfo) -> list[bytes]:
    """The DER of the signature time-stamp tokens a SignerInfo carries."""
    unsigned = signer_info["unsigned_attrs"]
    out: list[bytes] = []
    if isinstance(unsigned, asn1_core.Void):
        return out
    for attr in unsigned:
        if attr["type"].dotted == ATTR_SIGNATURE_TIME_STAMP:
            # Raw bytes, never the native form (slow in asn1crypto for nested SignedData).
            out.extend(value.dump() for value in attr["values"])
    return out


def _failed(sha: str, code: str, message: str, **kw) -> TimeStamp:
    return TimeStamp("invalid", sha, error=ValidationError(code, message), **kw)


def verify_token(token: bytes, signature_value: bytes, verifier: "Verifier", digests: Mapping,
                 **chain_options) -> TimeStamp:
    """Check one token over ``signature_value`` (see the module's text)."""
    from .cms import verify_cms_signed_data

    sha = hashlib.sha256(token).hexdigest()
    try:
        info = asn1_cms.ContentInfo.load(token)
        if info["content_type"].dotted != "1.2.840.113549.1.7.2":
            return _failed(sha, TIMESTAMP_MALFORMED, "the time-stamp token is not a CMS SignedData")
        encap = info["content"]["encap_content_info"]
        if encap["content_type"].dotted != ID_CT_TST_INFO:
            return _failed(sha, TIMESTAMP_MALFORMED, "the time-stamp token does not hold a TSTInfo")
        tst = asn1_tsp.TSTInfo.load(bytes(encap["content"]))
        gen_time = tst["gen_time"].native
        imprint = tst["message_imprint"]
        hash_oid = imprint["hash_algorithm"]["algorithm"].dotted
        hashed = bytes(imprint["hashed_message"])
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError ...
        return _failed(sha, TIMESTAMP_MALFORMED, f"unreadable time-stamp token: {exc}")
    if not isinstance(gen_time, dt.datetime):
        return _failed(sha, TIMESTAMP_MALFORMED, "the time-stamp token has no genTime")
    gen_time = gen_time.astimezone(dt.timezone.utc)
    factory = digests.get(hash_oid)
    if factory is None:
        return _failed(sha, TIMESTAMP_MALFORMED, f"the time-stamp's message imprint uses an unsupported hash {hash_oid}",
                       time=gen_time)
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(factory())
    h.update(signature_value)
    if h.finalize() != hashed:
        return _failed(sha, TIMESTAMP_IMPRINT_MISMATCH,
                       "the time-stamp's message imprint is not the hash of this signature value", time=gen_time)
    options = {k: v for k, v in chain_options.items() if k in _TSA_CHAIN_OPTIONS}
    try:
        # The TSA's chain at the current time (proven): a TSA revoked since is not believed.
        result = verify_cms_signed_data(token, verifier, extended_key_usage=["timeStamping"], **options)
    except (InputError, BudgetExceeded) as exc:
        return _failed(sha, TIMESTAMP_MALFORMED, f"the time-stamp token: {exc}", time=gen_time)
    tsa_cert = result.chain.path[0] if result.chain is not None and result.chain.path else None
    tsa = tsa_cert.subject_text if tsa_cert is not None else (result.signer or {}).get("subject")
    if result.error is not None:
        of_signature = result.chain is None or result.error is not result.chain.error
        indication, _ = for_code(result.error.code, of_signature=of_signature)
        status = "invalid" if indication == TOTAL_FAILED else "indeterminate"
        return TimeStamp(status, sha, tsa, gen_time, result.error, result.chain)
    assert tsa_cert is not None  # a valid result has its signer's chain
    # RFC 3161 2.3: the TSA's certificate MUST have the one purpose timeStamping, critical.
    if tsa_cert.extended_key_usage != (TIME_STAMPING,) or EXTENDED_KEY_USAGE not in tsa_cert.critical_extensions:
        return _failed(sha, TIMESTAMP_NOT_A_TSA, "the time-stamp's signer certificate does not have a critical "
                       "extendedKeyUsage of timeStamping alone (RFC 3161 2.3)", tsa=tsa, time=gen_time)
    return TimeStamp("valid", sha, tsa, gen_time, None, result.chain)
