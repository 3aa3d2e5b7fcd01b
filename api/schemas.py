"""Request and response bodies of the HTTP API (the public contract's JSON).

Request models are strict (a JSON string where a string is due, a JSON
boolean where a boolean is due, no unknown members) and refuse text that
cannot be UTF-8 (lone surrogates from ``\\ud800`` escapes), so that malformed
input is a 400 here rather than an exception deeper down.

Response models describe what the handlers return, for OpenAPI; they allow
extra members, because the contract lets the service add optional fields.
tests/api checks every real response against its model.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WrapValidator, field_validator
from pydantic.config import JsonDict

from pki.profile import EXTENDED_KEY_USAGE_NAMES, KEY_USAGE_NAMES

RevocationMode = Literal["auto", "require", "off"]
Profile = Literal["strict", "rfc5280"]
# RFC 5280 4.2.1.3's bit names (nonRepudiation also as X.509's contentCommitment): pki/profile.py's
# KEY_USAGE_NAMES, in its order (the OpenAPI enum's), written out so that type checkers see the names.
KeyUsageName = Literal["digitalSignature", "nonRepudiation", "contentCommitment", "keyEncipherment",
                       "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign"]
if list(get_args(KeyUsageName)) != list(KEY_USAGE_NAMES):
    raise RuntimeError("api.schemas.KeyUsageName differs from pki.profile.KEY_USAGE_NAMES")
# A dotted OID or one of the names in pki/profile.py; the core checks it.
ExtendedKeyUsage = Annotated[str, StringConstraints(max_length=200)]

PEM_EXAMPLE = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
BRIDGE_POLICY_EXAMPLE = "1.3.6.1.4.1.32473.77.1.1"
MEMBER_POLICY_EXAMPLE = "1.3.6.1.4.1.32473.77.30.1"


def _check_text(value: Any) -> Any:
    if isinstance(value, str):
        if value.isascii():  # PEM, base64, OIDs: the usual case, checked without encoding
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, list):
        for item in value:
            _check_text(item)
    return value


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        return _check_text(value)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- verification requests


class ChainOptions(RequestModel):
    intermediates: list[str] = Field(default_factory=list, description="PEM certificates that may help build the path", max_length=256)
    trust_anchor: str = Field("bridge", description='"bridge" (default), the id of an enrolled issuer whose root is the anchor, '
                                                    'or "list:<id>": the CA services of a registered external trusted list '
                                                    '(ETSI TS 119 612), checked at the validation time', max_length=200)
    policies: list[str] = Field(default_factory=list, description="acceptable policy OIDs (user-initial-policy-set)", max_length=64)
    require_explicit_policy: bool | None = Field(None, description="default: true when policies are given and are not just anyPolicy")
    inhibit_policy_mapping: bool = False
    inhibit_any_policy: bool = False
    at: str | None = Field(None, description='validation time, ISO 8601; default now ("signing-time" for signatures)', max_length=64)
    revocation: RevocationMode = Field("auto", description="auto (default), require or off; see INTERFACE.md")
    profile: Profile = Field(
        "strict",
        description='"strict" (default): RFC 5280 6.1 path validation plus the section-4 rules conforming CAs must '
                    'follow (a certificate breaking one fails with malformed_certificate); "rfc5280": 6.1 alone')
    anchor_constraints: bool = Field(
        True,
        description="true (default): the trust anchor's own certificate constrains the path (RFC 5937): its validity "
                    "at the validation time, CA-ness, critical extensions, name and policy constraints (failure: "
                    "anchor_invalid or the constraint's code); false: the anchor is a bare name and key (RFC 5280 6.1.1)")
    key_usage: list[KeyUsageName] = Field(
        default_factory=list, max_length=16,
        description="keyUsage bits the end-entity certificate must allow, all of them, when it has keyUsage "
                    "(failure: purpose). The signature route always requires digitalSignature or nonRepudiation "
                    "of a signer that has keyUsage")
    extended_key_usage: list[ExtendedKeyUsage] = Field(
        default_factory=list, max_length=64,
        description="purposes, as OIDs or names (" + ", ".join(n for n in EXTENDED_KEY_USAGE_NAMES if n != "ocspSigning")
                    + "), one of which the path must allow (failure: purpose); empty: any purpose")
    max_chain_depth: int | None = Field(
        None, ge=0, le=64,
        description="intermediate certificates allowed between the end entity and the trust anchor "
                    "(failure: path_length_exceeded); default: no limit but the verifier's own")


def _receipt() -> Any:
    return Field(False, description="true: the answer carries a signed receipt of the question and the result "
                                    "(bridge/receipts.py)")


class VerifyChainRequest(ChainOptions):
    certificate: str = Field(..., description="the end-entity certificate, PEM")
    receipt: bool = _receipt()

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"certificate": PEM_EXAMPLE, "intermediates": [PEM_EXAMPLE],
                 "trust_anchor": "bridge", "policies": [BRIDGE_POLICY_EXAMPLE]},
                {"certificate": PEM_EXAMPLE, "trust_anchor": "3f1c0e9b5d3a4e4f9a54c1a1b0d2e7f8",
                 "policies": [MEMBER_POLICY_EXAMPLE], "revocation": "require", "at": "2026-01-15T00:00:00Z"},
            ]
        },
    )


class VerifySignatureRequest(ChainOptions):
    cms: str | None = Field(None, description="base64 DER CMS SignedData")
    content: str | None = Field(None, description="base64 content, when the CMS is detached")
    certificate: str | None = Field(None, description="signer certificate (PEM), for a raw signature")
    signature: str | None = Field(None, description="base64 raw signature")
    data: str | None = Field(None, description="base64 signed data, for a raw signature")
    algorithm: str | None = Field(None, description="signature algorithm name or OID, for a raw signature", max_length=200)
    receipt: bool = _receipt()

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"cms": "MIAGCSqGSIb3DQEHAqCAMIACAQEx...", "content": "Q29udHJhY3Qgbm8uIDQy", "at": "signing-time"},
                {"certificate": PEM_EXAMPLE, "signature": "MEUCIQD...", "data": "Q29udHJhY3Qgbm8uIDQy",
                 "algorithm": "ecdsa-with-SHA256", "policies": [BRIDGE_POLICY_EXAMPLE]},
            ]
        },
    )


# --------------------------------------------------------------------------- verification results


class PathEntry(ResponseModel):
    subject: str
    issuer: str
    serial: str
    sha256: str
    revocation: str | None = Field(None, description="good, revoked, unknown, stale or not_checked (absent for the anchor)")
    revocation_source: str | None = None
    revocation_time: str | None = Field(None, description="when the certificate was revoked (ISO 8601), when it was; with "
                                                          "revocation good, a revocation after the validation time")
    revocation_reason: str | None = Field(None, description="the revocation's reason (RFC 5280 name), when it was revoked")


INDICATION_DESCRIPTION = "ETSI EN 319 102-1: TOTAL_PASSED, TOTAL_FAILED (final) or INDETERMINATE (more evidence or a later try may settle it)"
SUB_INDICATION_DESCRIPTION = ("EN 319 102-1's reason when not TOTAL_PASSED: REVOKED, REVOKED_NO_POE, REVOKED_CA_NO_POE, TRY_LATER, "
                              "NO_CERTIFICATE_CHAIN_FOUND, OUT_OF_BOUNDS_NO_POE, EXPIRED, NOT_YET_VALID, SIG_CRYPTO_FAILURE, "
                              "HASH_FAILURE, CHAIN_CONSTRAINTS_FAILURE, CERTIFICATE_CHAIN_GENERAL_FAILURE, FORMAT_FAILURE, "
                              "SIG_CONSTRAINTS_FAILURE, NO_SIGNING_CERTIFICATE_FOUND, CRYPTO_CONSTRAINTS_FAILURE")
VALIDATION_TIME_DESCRIPTION = "the time the answer holds for (ISO 8601, seconds, Z): the time asked for, a time-stamp's genTime, or now"


class TimeStampModel(ResponseModel):
    tsa: str | None = Field(None, description="the time-stamping authority's certificate subject")
    time: str | None = Field(None, description="the token's genTime (ISO 8601)")
    status: str = Field(..., description="valid (the proof of existence used), invalid, or indeterminate (the TSA's status unknown)")
    sha256: str = Field(..., description="hex SHA-256 of the token's DER")
    error: "ErrorInfo | None" = None


class ErrorInfo(ResponseModel):
    code: str = Field(..., description="stable snake_case identifier, e.g. revoked, policy_required, no_path")
    message: str
    certificate: int | None = Field(None, description="index in path of the certificate that failed")


class VerificationResultModel(ResponseModel):
    valid: bool
    indication: str | None = Field(None, description=INDICATION_DESCRIPTION)
    sub_indication: str | None = Field(None, description=SUB_INDICATION_DESCRIPTION)
    validation_time: str | None = Field(None, description=VALIDATION_TIME_DESCRIPTION)
    path: list[PathEntry]
    policies: list[str]
    revocation: str = Field(..., description="checked, partial, stale or not_checked")
    error: ErrorInfo | None = None
    recognition: dict | None = Field(
        None, description='with trust_anchor "list:<id>": the list (id, sequence_number, territory, operator), the service '
                          '(name, type, tsp, certificate index) and the status in force at the validation time that made '
                          'the certificate recognised, and the listed policy prefix it matched; null when not recognised')

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"valid": False,
                 "path": [{"subject": "CN=signer.hk.example,O=Hong Kong Example Org,C=HK", "issuer": "CN=Hong Kong Issuing CA 1,O=Hong Kong Certification Authority,C=HK",
                           "serial": "1f3a", "sha256": "eef2...", "revocation": "not_checked"}],
                 "policies": [], "revocation": "partial",
                 "error": {"code": "revoked", "message": "revoked on 2026-11-23T22:51:58Z (keyCompromise), according to CRL number 2 of the bridge", "certificate": 2}}
            ]
        }
    )


class SignerModel(ResponseModel):
    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None
    sha256: str | None = None


class SignatureResultModel(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"valid": True,
         "signer": {"subject": "CN=MO Demo Signer 01,O=Macao Demo Trading Co. (fictional),C=MO",
                    "issuer": "CN=Macao Demo Issuing CA G1,O=Macao Demo CA,C=MO", "serial": "5c0e", "sha256": "9b1d..."},
         "signing_time": "2026-11-23T22:52:59Z",
         "chain": {"valid": True, "path": [], "policies": [BRIDGE_POLICY_EXAMPLE], "revocation": "partial", "error": None},
         "error": None, "algorithm": "ecdsa-with-SHA256", "content_type": "1.2.840.113549.1.7.1"}
    ]})
    valid: bool
    indication: str | None = Field(None, description=INDICATION_DESCRIPTION)
    sub_indication: str | None = Field(None, description=SUB_INDICATION_DESCRIPTION)
    validation_time: str | None = Field(None, description=VALIDATION_TIME_DESCRIPTION)
    signer: SignerModel | None = Field(None, description="the signer's certificate (or its identifier when it was not found)")
    signing_time: str | None = Field(None, description="the signer's own signing-time attribute (a claim)")
    timestamp: TimeStampModel | None = Field(None, description="the signature time-stamp token (RFC 3161) looked at: the "
                                                               "one used as proof of existence when one is valid")
    chain: VerificationResultModel | None = None
    error: ErrorInfo | None = None
    algorithm: str | None = Field(None, description="the signature scheme used")
    content_type: str | None = Field(None, description="eContentType (CMS only), dotted OID")


# --------------------------------------------------------------------------- issuers


class Subtree(RequestModel):
    type: Literal["directoryName", "dNSName", "rfc822Name", "uniformResourceIdentifier", "iPAddress"]
    value: str = Field(..., max_length=1000)


class PolicyMapping(RequestModel):
    bridge_policy: str = Field(..., max_length=200, description="becomes issuerDomainPolicy of the cross-certificate")
    member_policy: str = Field(..., max_length=200, description="becomes subjectDomainPolicy of the cross-certificate")


class EnrollRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Hong Kong Demo e-Cert CA", "jurisdiction": "HK", "root_certificate": PEM_EXAMPLE,
                 "policy_mappings": [{"bridge_policy": BRIDGE_POLICY_EXAMPLE, "member_policy": MEMBER_POLICY_EXAMPLE}],
                 "permitted_subtrees": [{"type": "directoryName", "value": "C=HK"}], "path_length": 1}
            ]
        },
    )
    name: str = Field(..., min_length=1, max_length=200)
    jurisdiction: str = Field(..., min_length=2, max_length=16)
    root_certificate: str
    policy_mappings: list[PolicyMapping] = Field(default_factory=list, max_length=64)
    permitted_subtrees: list[Subtree] | None = Field(None, max_length=256)
    excluded_subtrees: list[Subtree] | None = Field(None, max_length=256)
    path_length: int | None = Field(None, ge=0, le=16)
    rollover_of: str | None = Field(None, min_length=1, max_length=64,
                                    description="a key rollover: the id of the active enrollment (yours) whose root name this root takes over")


class ReverseCertificateRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"certificate": PEM_EXAMPLE}]})
    certificate: str = Field(..., description="the certificate the member root issued to the bridge (subject and key the bridge's), PEM")


RevocationReason = Literal[
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn",
]


class RevokeRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "keyCompromise"}]})
    reason: str = Field("unspecified", max_length=64, description="RFC 5280 reason name: " + ", ".join(get_args(RevocationReason)))


class PolicyMappingView(ResponseModel):
    bridge_policy: str
    member_policy: str


class SubtreeView(ResponseModel):
    type: str
    value: str


class CrossCertificateView(ResponseModel):
    serial: str = Field(..., description="hexadecimal")
    status: str = Field(..., description="issued or revoked")
    not_before: str | None = None
    not_after: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None
    certificate: str = Field(..., description="PEM")


CROSS_CERTIFICATE_EXAMPLE: JsonDict = {"serial": "3751b13077d18a7cd188e5724d17966e", "status": "issued", "not_before": "2026-11-23T22:50:00Z",
                             "not_after": "2029-11-22T22:50:00Z", "revoked_at": None, "revocation_reason": None,
                             "certificate": PEM_EXAMPLE}
ISSUER_EXAMPLE: JsonDict = {"id": "ceb48e6ace2c4068b66152f52a412aaf", "name": "Hong Kong Demo e-Cert CA", "jurisdiction": "HK", "status": "active",
                  "root_subject": "CN=Hong Kong Demo e-Cert Root CA G1,O=Hong Kong Demo e-Cert CA,C=HK", "root_certificate": PEM_EXAMPLE,
                  "policy_mappings": [{"bridge_policy": BRIDGE_POLICY_EXAMPLE, "member_policy": MEMBER_POLICY_EXAMPLE}],
                  "permitted_subtrees": [], "excluded_subtrees": [], "path_length": None, "replaces": None,
                  "created_at": "2026-11-23T22:49:58Z", "cross_certificates": [CROSS_CERTIFICATE_EXAMPLE]}


class IssuerView(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ISSUER_EXAMPLE]})
    id: str
    name: str
    jurisdiction: str
    status: str = Field(..., description="pending, active, rejected, expired, ...")
    root_subject: str
    root_certificate: str = Field(..., description="PEM")
    policy_mappings: list[PolicyMappingView]
    permitted_subtrees: list[SubtreeView]
    excluded_subtrees: list[SubtreeView]
    path_length: int | None = None
    replaces: str | None = None
    created_at: str
    cross_certificates: list[CrossCertificateView]


class ApprovedIssuerView(IssuerView):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {**ISSUER_EXAMPLE, "cross_certificate": PEM_EXAMPLE, "serial": CROSS_CERTIFICATE_EXAMPLE["serial"]}]})
    cross_certificate: str = Field(..., description="the new cross-certificate (bridge → member root), PEM")
    serial: str = Field(..., description="its serial number, hexadecimal")


class ReverseCertificateView(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": ISSUER_EXAMPLE["id"], "sha256": "4e0f...", "certificate": PEM_EXAMPLE}]})
    id: str = Field(..., description="the enrollment")
    sha256: str = Field(..., description="SHA-256 of the certificate's DER, hex")
    certificate: str = Field(..., description="PEM")


class RevokeResult(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"serial": CROSS_CERTIFICATE_EXAMPLE["serial"], "status": "revoked", "reason": "keyCompromise", "crl_number": 2}]})
    serial: str
    status: Literal["revoked"]
    reason: str
    crl_number: int = Field(..., description="the CRL that first lists it")


class Health(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})
    status: Literal["ok"]


# --------------------------------------------------------------------------- problems


class FieldError(ResponseModel):
    field: str
    message: str


class ProblemDetails(ResponseModel):
    """RFC 9457 problem details, with a stable ``code``."""

    type: str = "about:blank"
    title: str
    status: int
    code: str = Field(..., description="stable snake_case identifier of the failure")
    detail: str
    errors: list[FieldError] | None = Field(None, description="for invalid_request: each field that failed")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "about:blank", "title": "Forbidden", "status": 403, "code": "forbidden",
                          "detail": "this route needs the admin role; the token is platform"}]
        }
    )


_PROBLEM_STATUSES = {
    400: "malformed input (code: invalid_request, invalid_base64, malformed_input, invalid_serial, ...)",
    401: "no token, or an unknown or revoked one (code: unauthorized)",
    403: "the token's role may not use this route (code: forbidden)",
    404: "unknown issuer or serial (code: not_found)",
    409: "conflict with the current state (code: already_enrolled, already_revoked, invalid_state, ...)",
    413: "request body over the limit (code: body_too_large)",
    415: "the body is not of the route's media type (code: unsupported_media_type)",
    422: "semantically invalid (code names the check that failed)",
    503: "the signer or the database is unavailable",
}


def problem_responses(*statuses: int) -> dict:
    """A route's documented error responses (``responses=`` of a route), as ProblemDetails."""
    return {status: {"model": ProblemDetails, "description": _PROBLEM_STATUSES[status]} for status in statuses}


# --------------------------------------------------------------------------- member lifecycle (api/routes_lifecycle.py)


class LifecycleRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "investigation of misissuance, case 2026-17"}]})
    reason: str = Field("", max_length=500, description="recorded in the status history and the audit log")


class TermsRequest(RequestModel):
    """New terms; a member left out keeps its current value. path_length null: the bridge's default."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"policy_mappings": [{"bridge_policy": BRIDGE_POLICY_EXAMPLE, "member_policy": MEMBER_POLICY_EXAMPLE}],
         "permitted_subtrees": [{"type": "directoryName", "value": "C=HK"}], "reason": "narrowed to Hong Kong names"}]})
    policy_mappings: list[PolicyMapping] | None = Field(None, max_length=64)
    permitted_subtrees: list[Subtree] | None = Field(None, max_length=256)
    excluded_subtrees: list[Subtree] | None = Field(None, max_length=256)
    path_length: int | None = Field(None, ge=0, le=16)
    reason: str = Field("", max_length=500)


class StatusChangeView(ResponseModel):
    status: str
    at: str
    reason: str
    serials: list[str] = []


class LifecycleIssuerView(IssuerView):
    """An enrollment after a lifecycle action, with what the action touched."""

    status_history: list[StatusChangeView] = []
    serial: str | None = Field(None, description="renew / terms: the new cross-certificate's serial")
    cross_certificate: str | None = Field(None, description="renew / terms: the new cross-certificate, PEM")
    superseded_serials: list[str] | None = Field(None, description="renew / terms: revoked with reason superseded")
    held_serials: list[str] | None = Field(None, description="suspend: put on hold (certificateHold)")
    released_serials: list[str] | None = Field(None, description="reinstate: taken off hold")
    revoked_serials: list[str] | None = Field(None, description="withdraw: revoked (cessationOfOperation)")
    crl_number: int | None = Field(None, description="the CRL that first shows the change")


class ExpiringView(ResponseModel):
    serial: str
    enrollment: str
    name: str | None
    status: str
    not_after: str
    days_left: float
    warned_at: str | None = None


# --------------------------------------------------------------------------- batch verification


class BatchChainItem(VerifyChainRequest):
    """A /v1/verify/chain body, tagged."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"kind": "chain", "certificate": PEM_EXAMPLE, "intermediates": [PEM_EXAMPLE]}]})
    kind: Literal["chain"]


class BatchSignatureItem(VerifySignatureRequest):
    """A /v1/verify/signature body, tagged."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"kind": "signature", "cms": "MIAGCSqGSIb3DQEHAqCAMIACAQEx...", "content": "Q29udHJhY3Qgbm8uIDQy"}]})
    kind: Literal["signature"]


BatchItem = Annotated[BatchChainItem | BatchSignatureItem, Field(discriminator="kind")]


def _read_later(value: Any, _handler: Any) -> Any:
    # An item is read on its own, after the envelope: one bad item must be
    # that item's error, not the request's, and the item count is checked
    # against the configured limit before any item costs a validation.
    return value


class VerifyBatchRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"items": [{"kind": "chain", "certificate": PEM_EXAMPLE},
                   {"kind": "chain", "certificate": PEM_EXAMPLE, "policies": [MEMBER_POLICY_EXAMPLE]},
                   {"kind": "signature", "cms": "MIAGCSqGSIb3DQEHAqCAMIACAQEx..."}],
         "options": {"intermediates": [PEM_EXAMPLE], "policies": [BRIDGE_POLICY_EXAMPLE], "revocation": "auto"}}]})
    items: list[Annotated[BatchItem, WrapValidator(_read_later)]] = Field(
        ..., min_length=1,
        description="chains and signatures to verify, each a /v1/verify/chain or /v1/verify/signature body with its "
                    "kind; at most the bridge's batch_max_items (default 100; more: 413 too_many_items)")
    options: ChainOptions | None = Field(
        None, description="chain options shared by every item; a field an item gives itself overrides the shared one")


class BatchItemResult(ResponseModel):
    index: int = Field(..., description="the item's position in items, from 0")
    kind: Literal["chain", "signature"] | None = Field(None, description="null when the item names no known kind")
    result: VerificationResultModel | SignatureResultModel | None = Field(
        None, description="the item was verified: what the single route would answer with 200")
    error: ProblemDetails | None = Field(
        None, description="the item was refused: the problem the single route would answer (its status and code)")


class VerifyBatchResponse(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"results": [
        {"index": 0, "kind": "chain", "result": {"valid": True, "path": [], "policies": [BRIDGE_POLICY_EXAMPLE],
                                                 "revocation": "partial", "error": None}},
        {"index": 1, "kind": "chain", "error": {"type": "about:blank", "title": "Bad Request", "status": 400,
                                                "code": "malformed_input", "detail": "certificate: not PEM or DER"}},
    ]}]})
    results: list[BatchItemResult] = Field(..., description="one per item, in the items' order")


# --------------------------------------------------------------------------- governance (api/routes_governance.py)


class ProposalView(ResponseModel):
    """An admin action waiting for (or given) a second administrator's confirmation."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"id": "5f0c2d4e8a9b4c1d9e7f6a5b4c3d2e1f", "action": "revoke", "params": {"serial": "3751b1", "reason": "keyCompromise"},
         "proposer": "admin:3", "created_at": "2026-11-23T09:00:00+00:00", "expires_at": "2026-11-24T09:00:00+00:00",
         "status": "pending", "decided_by": None, "decided_at": None, "outcome": None}]})
    id: str
    action: str
    params: dict
    proposer: str
    created_at: str
    expires_at: str
    status: Literal["pending", "confirmed", "failed", "cancelled", "expired"]
    decided_by: str | None = None
    decided_at: str | None = None
    outcome: dict | None = None


class ProposalEnvelope(ResponseModel):
    """202 from an admin action under two-person control; 200 from a cancellation."""

    proposal: ProposalView


class ConfirmedProposal(ResponseModel):
    proposal: ProposalView
    result: dict = Field(..., description="what the action's own route returns")


class CancelProposalRequest(RequestModel):
    reason: str = Field("", max_length=500, description="recorded in the audit log")


class AuditEntryView(ResponseModel):
    seq: int
    at: str
    actor: str
    action: str
    details: dict
    prev_hash: str
    entry_hash: str


class AuditPage(ResponseModel):
    entries: list[AuditEntryView]
    next_after: int | None = Field(None, description="pass as `after` for the next page; null: no more")


class CheckpointView(ResponseModel):
    entries: int = Field(..., description="entries in the log when signed")
    head: str = Field(..., description="SHA-256 (hex) of the last of them, the chain's head")
    at: str
    algorithm: str = Field(..., description="signature AlgorithmIdentifier, base64 DER")
    signature: str = Field(..., description="base64, over 'bridgeca audit checkpoint v1\\n' + "
                                            '{"at":...,"entries":...,"head":...} (sorted keys, no spaces)')
    signer_sha256: str = Field(..., description="SHA-256 of the signing bridge certificate (DER)")


class CheckpointsDocument(ResponseModel):
    signer_certificates: list[str] = Field(..., description="the bridge's certificates, PEM")
    checkpoints: list[CheckpointView]
