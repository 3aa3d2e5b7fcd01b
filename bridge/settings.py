"""The bridge's one settings object.

Values come from, in order of precedence: environment variables
(``BRIDGECA_*``), then ``config.json`` in the home directory (written by
``bridgeca init``), then the defaults below. The key passphrase and PKCS#11
PIN are read from the environment only and never written to the home.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_FILE = "config.json"
DATABASE_FILE = "bridge.db"
KEY_FILE = "bridge-key.p8"
CERT_FILE = "bridge-cert.pem"
# The second key of a dual-key bridge (see second_key_type), its self-signed
# certificate, and the two link certificates between the bridge's keys.
SECOND_KEY_FILE = "bridge-second-key.p8"
SECOND_CERT_FILE = "bridge-second-cert.pem"
LINKS_FILE = "bridge-links.pem"

KeyType = Literal["ec-p256", "ec-p384", "rsa-3072", "sm2"]
SignerKind = Literal["software", "pkcs11"]


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRIDGECA_", extra="ignore")

    home: Path
    # None means the SQLite file inside the home (see database_url_resolved).
    database_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"

    key_type: KeyType = "ec-p256"
    # A dual-key bridge: one SM2 key and one ECDSA/RSA key under the same
    # name (see bridge/service.py, "Dual-key bridges"). The second key is
    # always a software key (no PKCS#11 token here does SM2).
    second_key_type: KeyType | None = None
    subject: str = "CN=Guangdong Provincial Bridge CA,O=Guangdong Cross-Certification Platform,C=CN"
    signer: SignerKind = "software"
    pkcs11_module: str | None = None
    pkcs11_token_label: str | None = None
    pkcs11_key_label: str = "bridgeca"
    # Secrets: from the environment only (never serialised to config.json).
    key_passphrase: SecretStr | None = Field(default=None, exclude=True)
    pkcs11_pin: SecretStr | None = Field(default=None, exclude=True)

    # Service logs: one JSON object per line ("json") or plain lines ("text"),
    # on stderr; access_log writes one line per request (with its request id).
    log_format: Literal["json", "text"] = "json"
    access_log: bool = True

    # HTTP request bodies over this many bytes are refused (413) before being read whole.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    # POST /v1/verify/batch: more items than this are refused (413
    # too_many_items) before any is read. A batch runs in one thread, item
    # after item, so this bounds how long one request holds that thread.
    batch_max_items: int = Field(default=100, ge=1, le=10_000)

    # Fetching CRLs and OCSP responses for /v1/verify/* (bridge/revocation_source.py).
    revocation_connect_timeout: float = Field(default=3.0, gt=0)
    revocation_total_timeout: float = Field(default=10.0, gt=0)
    revocation_failure_ttl_seconds: float = Field(default=30.0, ge=0)  # a failed fetch is not retried sooner
    revocation_cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0)  # estimated resident bytes of fetched objects kept
    revocation_cache_entries: int = Field(default=4096, ge=0)  # fetched objects kept
    revocation_min_fresh_seconds: float = Field(default=60.0, ge=0)  # a fetched object is not fetched again sooner
    # CRL/OCSP URLs whose host is loopback, link-local, private (RFC 1918,
    # ULA), unspecified or multicast are refused unless this is true: a
    # certificate under verification must not make the service probe the
    # network it sits in.
    revocation_allow_private_addresses: bool = False

    # External trusted lists (bridge/trust_lists.py). Fetched with the
    # revocation fetcher's timeouts and address checks (private addresses
    # only with revocation_allow_private_addresses). A list is fetched again
    # at its NextUpdate or after trust_list_refresh_seconds, whichever comes
    # first; after NextUpdate plus trust_list_stale_grace_seconds without a
    # newer version, verifications anchored on it are refused
    # (trust_list_stale). A failed fetch is not retried sooner than
    # trust_list_failure_ttl_seconds. trust_list_schema_dir: a directory with
    # ts_119612v020401_xsd.xsd and its catalog.xml; without it lists get
    # structural checks only (and say so).
    trust_list_schema_dir: Path | None = None
    trust_list_refresh_seconds: float = Field(default=3600.0, gt=0)
    trust_list_stale_grace_seconds: float = Field(default=86400.0, ge=0)
    trust_list_failure_ttl_seconds: float = Field(default=60.0, ge=0)

    # Failed authentication (a bearer token that is unknown, revoked or
    # expired) per client address: after auth_failure_limit failures within
    # auth_failure_window_seconds, authenticated requests from that address
    # are answered 429 until the window ends. 0 turns it off. At most
    # auth_failure_max_addresses addresses are remembered (the least recently
    # failing are forgotten first), per worker process.
    auth_failure_limit: int = Field(default=50, ge=0)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    auth_failure_max_addresses: int = Field(default=10_000, ge=1)
    # Verification requests (/v1/verify/*) per token per second, with bursts
    # of up to one second's worth; 0 (the default) is no limit. Per worker process.
    verify_rate_per_token: float = Field(default=0.0, ge=0)

    # Jurisdictions an enrollment may name (BRIDGECA_JURISDICTIONS: a JSON
    # list or comma-separated codes, e.g. GD,SZ,HK,MO,ZH).
    jurisdictions: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["GD", "SZ", "HK", "MO"])
    # Member lifecycle maintenance (bridge/lifecycle.py): pending enrollments
    # older than this many days expire; cross-certificates within
    # expiry_warning_days of notAfter are warned about; the service runs it
    # every maintenance_interval_seconds (0: only `bridgeca maintenance run`).
    pending_enrollment_max_days: float = Field(default=30.0, gt=0)
    expiry_warning_days: float = Field(default=30.0, ge=0)
    maintenance_interval_seconds: float = Field(default=300.0, ge=0)

    # Two-person control (bridge/governance.py): 1, an admin action is done at
    # once; 2, one admin proposes it and a different admin confirms it within
    # proposal_ttl_hours (BRIDGECA_APPROVALS_REQUIRED).
    approvals_required: int = Field(default=1, ge=1, le=2)
    proposal_ttl_hours: float = Field(default=24.0, gt=0, le=24 * 366)
    # Signed checkpoints of the audit chain's head (bridge/checkpoints.py): at
    # least every audit_checkpoint_entries entries, and every
    # audit_checkpoint_minutes while entries were appended since the last one.
    audit_checkpoint_entries: int = Field(default=100, ge=1)
    audit_checkpoint_minutes: float = Field(default=10.0, gt=0)

    # Evidence service (issue 12). tsa_policy: the one TSA policy OID of
    # POST /v1/tsa (default: an OID under 2.25, ITU-T X.667's arc for UUIDs,
    # so that it is unique without registration; an operator with its own
    # arc sets its own). Evidence named by signed receipts (bridge/evidence.py)
    # is kept evidence_retention_days after it was last named, and the
    # oldest goes first beyond evidence_max_bytes; signed content is kept
    # whole up to evidence_content_max_bytes, beyond that by its hash only.
    tsa_policy: str = Field(default="2.25.171950325146358441395218562815316291421", pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$")
    evidence_retention_days: float = Field(default=1830.0, gt=0)
    evidence_max_bytes: int = Field(default=1 << 30, ge=1 << 20)
    evidence_content_max_bytes: int = Field(default=64 * 1024, ge=0)

    bridge_validity_days: int = 3650
    cross_certificate_validity_days: int = 1095
    crl_next_update_hours: float = 24.0
    ocsp_next_update_hours: float = 1.0
    # A member root must stay valid at least this long after enrollment.
    min_member_root_validity_days: int = 30
    # pathLenConstraint of cross-certificates when an enrollment names none:
    # 1 lets a member root have issuing CAs below it but no deeper hierarchy.
    default_path_length: int | None = 1
    # policyConstraints / inhibitAnyPolicy written into cross-certificates.
    require_explicit_policy: int | None = None
    inhibit_policy_mapping: int | None = None
    inhibit_any_policy: int | None = 0

    # The published trust list (bridge/trust_list.py, GET /v1/trust-list.xml
    # and .json): NextUpdate is this many hours after ListIssueDateTime (the
    # list is re-issued at half of it); the scheme operator's names (English:
    # the bridge subject's O when unset), territory and information URI
    # (default: the base URL's /docs).
    trust_list_next_update_hours: float = Field(default=168.0, gt=0, le=24 * 366)
    trust_list_operator_name_zh: str = Field(default="广东省电子认证桥接与交叉认证平台", min_length=1, max_length=200)
    trust_list_operator_name_en: str | None = Field(default=None, min_length=1, max_length=200)
    trust_list_territory: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    trust_list_information_uri: str | None = None

    @field_validator("jurisdictions", mode="before")
    @classmethod
    def _split_jurisdictions(cls, value):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.split(",")]
        return value

    @field_validator("jurisdictions")
    @classmethod
    def _check_jurisdictions(cls, value: list[str]) -> list[str]:
        codes = []
        for item in value:
            code = item.strip().upper()
            if not code or len(code) > 16 or not code.replace("-", "").isalnum():
                raise ValueError(f"jurisdiction {item!r} is not a code of 1 to 16 letters, digits or dashes")
            if code not in codes:
                codes.append(code)
        if not codes:
            raise ValueError("at least one jurisdiction is required")
        return codes

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_keys(self) -> "BridgeSettings":
        if self.signer == "pkcs11" and self.key_type == "sm2":
            raise ValueError("an SM2 bridge key cannot live on a PKCS#11 token (no SM2 mechanism); use signer software")
        if self.second_key_type is not None and (self.second_key_type == "sm2") == (self.key_type == "sm2"):
            raise ValueError("a dual-key bridge holds one SM2 key and one ECDSA or RSA key: "
                             f"key_type {self.key_type} and second_key_type {self.second_key_type} do not make such a pair")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the home's config.json (passed as init
        # values by load()), so an operator can override a stored setting.
        return (env_settings, init_settings)

    @classmethod
    def load(cls, home: Path | str, **overrides) -> "BridgeSettings":
        home = Path(home).resolve()
        values: dict = {}
        config_path = home / CONFIG_FILE
        if config_path.exists():
            values.update(json.loads(config_path.read_text()))
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = home
        return cls(**values)

    def save(self) -> None:
        """Write the non-secret settings to the home's config.json (0600).

        The database URL is kept when one was given, so that a later command
        run without BRIDGECA_DATABASE_URL reaches the same database instead of
        a new SQLite file (the variable still overrides it). It may carry a
        database password, hence the file's mode.
        """
        import os

        data = self.model_dump(mode="json", exclude={"home", "key_passphrase", "pkcs11_pin", "database_url"})
        if self.database_url is not None:
            data["database_url"] = self.database_url
        fd = os.open(self.home / CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")

    @property
    def database_url_resolved(self) -> str:
        return self.database_url or f"sqlite:///{self.home / DATABASE_FILE}"

    @property
    def key_path(self) -> Path:
        return self.home / KEY_FILE

    @property
    def cert_path(self) -> Path:
        return self.home / CERT_FILE

    @property
    def second_key_path(self) -> Path:
        return self.home / SECOND_KEY_FILE

    @property
    def second_cert_path(self) -> Path:
        return self.home / SECOND_CERT_FILE

    @property
    def links_path(self) -> Path:
        return self.home / LINKS_FILE

    @property
    def crl_url(self) -> str:
        return f"{self.base_url}/v1/crl"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/v1/ocsp"

    @property
    def ca_issuers_url(self) -> str:
        # RFC 5280 4.2.2.1: caIssuers names certificates issued *to* the issuer
        # (DER or certs-only CMS), here the reverse certificates that lead from
        # each member root up to the bridge. /v1/ca/certificate serves PEM by
        # default, which AIA clients do not expect.
        return f"{self.base_url}/v1/ca/issued-to-bridge.p7c"
