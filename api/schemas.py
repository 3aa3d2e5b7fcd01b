"""Request and response bodies of the HTTP API (the public contract's JSON)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RevocationMode = Literal["auto", "require", "off"]


class ChainOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intermediates: list[str] = Field(default_factory=list, description="PEM certificates that may help build the path", max_length=256)
    trust_anchor: str = Field("bridge", description='"bridge" (default) or the id of an enrolled issuer whose root is the anchor')
    policies: list[str] = Field(default_factory=list, description="acceptable policy OIDs (user-initial-policy-set)", max_length=64)
    require_explicit_policy: bool | None = Field(None, description="default: true when policies are given and are not just anyPolicy")
    inhibit_policy_mapping: bool = False
    inhibit_any_policy: bool = False
    at: str | None = Field(None, description='validation time, ISO 8601; default now ("signing-time" for signatures)')
    revocation: RevocationMode = "auto"


class VerifyChainRequest(ChainOptions):
    certificate: str = Field(..., description="the end-entity certificate, PEM")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"certificate": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----",
                 "trust_anchor": "bridge", "policies": ["1.3.6.1.4.1.99999.1.1"]}
            ]
        },
    )


class VerifySignatureRequest(ChainOptions):
    cms: str | None = Field(None, description="base64 DER CMS SignedData")
    content: str | None = Field(None, description="base64 content, when the CMS is detached")
    certificate: str | None = Field(None, description="signer certificate (PEM), for a raw signature")
    signature: str | None = Field(None, description="base64 raw signature")
    data: str | None = Field(None, description="base64 signed data, for a raw signature")
    algorithm: str | None = Field(None, description="signature algorithm name or OID, for a raw signature")


class PathEntry(BaseModel):
    subject: str
    issuer: str
    serial: str
    sha256: str
    revocation: str | None = None
    revocation_source: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    certificate: int | None = None


class VerificationResultModel(BaseModel):
    valid: bool
    path: list[PathEntry]
    policies: list[str]
    revocation: str
    error: ErrorInfo | None = None


class SignatureResultModel(BaseModel):
    valid: bool
    signer: dict | None = None
    signing_time: str | None = None
    chain: VerificationResultModel | None = None
    error: ErrorInfo | None = None


class Subtree(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["directoryName", "dNSName", "rfc822Name", "uniformResourceIdentifier", "iPAddress"]
    value: str


class PolicyMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bridge_policy: str
    member_policy: str


class EnrollRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Hong Kong Demo e-Cert CA", "jurisdiction": "HK",
                 "root_certificate": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----",
                 "policy_mappings": [{"bridge_policy": "1.3.6.1.4.1.99999.1.1", "member_policy": "1.3.6.1.4.1.99999.40.1"}]}
            ]
        },
    )
    name: str = Field(..., min_length=1, max_length=200)
    jurisdiction: str = Field(..., min_length=2, max_length=16)
    root_certificate: str
    policy_mappings: list[PolicyMapping] = Field(default_factory=list, max_length=64)
    permitted_subtrees: list[Subtree] | None = None
    excluded_subtrees: list[Subtree] | None = None
    path_length: int | None = Field(None, ge=0, le=16)


class ReverseCertificateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certificate: str


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = "unspecified"
