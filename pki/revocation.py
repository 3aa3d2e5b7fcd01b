"""Revocation facts for the validator.

The validator asks a ``RevocationChecker`` for the status of each non-anchor
certificate (RFC 5280 6.1.3 (a)(3)). "Not determined" is an outcome of its
own, distinct from "revoked". The checkers here are pure over the CRLs (and,
later, OCSP responses) they were given; fetching lives elsewhere.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

from cryptography import x509

from .algorithms import UnsupportedSignatureAlgorithm
from .crl import Crl
from .errors import InputError
from .names import NameKey, name_key

if TYPE_CHECKING:
    from .budget import Budget
    from .certificate import Certificate
    from .signatures import SignatureVerifier


@dataclass(frozen=True)
class RevocationStatus:
    state: str  # "good" | "revoked" | "unknown" | "stale"
    source: str | None = None  # which CRL or OCSP response decided
    reason: str | None = None
    revocation_time: dt.datetime | None = None
    detail: str | None = None  # why it could not be determined


@dataclass(frozen=True)
class RevocationRequest:
    path: tuple["Certificate", ...]
    index: int  # the certificate in question; its issuer is path[index + 1]
    issuer_spki: bytes  # the working public key (RFC 5280 6.1.2 (g))
    issuer_parameters: bytes | None
    at: dt.datetime
    budget: "Budget"

    @property
    def certificate(self) -> "Certificate":
        return self.path[self.index]

    @property
    def issuer(self) -> "Certificate":
        return self.path[self.index + 1]


class RevocationChecker(Protocol):
    def check(self, request: RevocationRequest) -> RevocationStatus: ...


# Finds and validates a certificate for a CRL signer whose key differs from
# the certificate issuer's: (crl, request) -> candidate (spki, params) keys of
# CRL-signing certificates that validate to the same trust anchor.
CrlSignerResolver = Callable[[Crl, RevocationRequest], Iterable[tuple[bytes, "bytes | None"]]]


class CrlChecker:
    """Status from complete CRLs per RFC 5280 6.3, for CRLs issued by the
    certificate's issuer (with its key or, through ``resolve_signer``, with
    another key of the same CA)."""

    def __init__(self, crls: Iterable[Crl], signatures: "SignatureVerifier", resolve_signer: CrlSignerResolver | None = None) -> None:
        self._by_issuer: dict[NameKey, list[Crl]] = {}
        for crl in crls:
            self._by_issuer.setdefault(crl.issuer_key, []).append(crl)
        self._signatures = signatures
        self._resolve_signer = resolve_signer

    def with_signer_resolver(self, resolve_signer: CrlSignerResolver) -> "CrlChecker":
        """The same CRLs (index shared, not rebuilt) with a per-call resolver."""
        view = object.__new__(CrlChecker)
        view._by_issuer = self._by_issuer
        view._signatures = self._signatures
        view._resolve_signer = resolve_signer
        return view

    def __bool__(self) -> bool:
        return bool(self._by_issuer)

    def check(self, request: RevocationRequest) -> RevocationStatus:
        cert = request.certificate
        candidates = [c for c in self._by_issuer.get(cert.issuer_key, ()) if not c.is_delta]
        if not candidates:
            return RevocationStatus("unknown", detail=f"no CRL from {cert.issuer_text} was supplied")
        problems: list[str] = []
        stale: Crl | None = None
        for crl in candidates:
            problem = self._unusable(crl, request)
            if problem:
                problems.append(f"{crl.label}: {problem}")
                continue
            if crl.next_update is not None and crl.next_update < request.at:
                stale = crl
                problems.append(f"{crl.label}: out of date (nextUpdate {crl.next_update:%Y-%m-%d %H:%M:%SZ})")
                continue
            entry = crl.lookup(cert.issuer_key, cert.serial)
            if entry is not None and entry.reason != "removeFromCRL":
                return RevocationStatus("revoked", source=crl.label, reason=entry.reason, revocation_time=entry.revocation_date)
            return RevocationStatus("good", source=crl.label)
        state = "stale" if stale is not None and len(problems) == 1 else "unknown"
        return RevocationStatus(state, detail="; ".join(problems))

    def _unusable(self, crl: Crl, request: RevocationRequest) -> str | None:
        """Why this CRL cannot decide the certificate's status, or None."""
        cert, issuer = request.certificate, request.issuer
        if crl.defect:
            return crl.defect
        if crl.unhandled_critical:
            return f"unrecognised critical extension {', '.join(crl.unhandled_critical)}"
        if crl.this_update > request.at:
            return "issued after the validation time"
        idp = crl.issuing_distribution_point
        if idp is not None:
            if idp.only_contains_user_certs and cert.is_ca:
                return "covers end-entity certificates only"
            if idp.only_contains_ca_certs and not cert.is_ca:
                return "covers CA certificates only"
            if idp.only_contains_attribute_certs:
                return "covers attribute certificates only"
            if idp.only_some_reasons is not None or idp.indirect_crl:
                return "partial-scope CRLs are not supported here"
            if idp.full_name or idp.relative_name:
                if not _distribution_point_matches(idp, cert, crl):
                    return "its distribution point is not one the certificate names"
        # 6.3.3 (f)/(g): signed by the issuer's key, with cRLSign
        try:
            if issuer.key_usage is None or issuer.key_usage.crl_sign:
                if self._signatures.verify(request.issuer_spki, request.issuer_parameters, crl, request.budget):
                    return None
            if self._resolve_signer is not None:
                for spki, params in self._resolve_signer(crl, request):
                    if self._signatures.verify(spki, params, crl, request.budget):
                        return None
        except (UnsupportedSignatureAlgorithm, InputError) as exc:
            return f"signature cannot be checked: {exc}"
        if issuer.key_usage is not None and not issuer.key_usage.crl_sign:
            return "the issuer's keyUsage does not allow CRL signing, and no other CRL signer was found"
        return "signature does not verify"


def _dp_names(dp_full_name, dp_relative, crl_issuer: x509.Name) -> list:
    names = []
    if dp_full_name:
        for g in dp_full_name:
            if isinstance(g, x509.DirectoryName):
                names.append(("dn", name_key(g.value)))
            else:
                names.append((type(g).__name__, g.value))
    if dp_relative is not None:
        full = x509.Name(list(crl_issuer.rdns) + [dp_relative])
        names.append(("dn", name_key(full)))
    return names


def _distribution_point_matches(idp: x509.IssuingDistributionPoint, cert: "Certificate", crl: Crl) -> bool:
    """RFC 5280 6.3.3 (b)(2)(i): one name of the IDP's distributionPoint must
    appear in one of the certificate's distribution points (or, when the
    point names a cRLIssuer, there)."""
    idp_names = _dp_names(idp.full_name, idp.relative_name, crl.issuer)
    for dp in cert.crl_distribution_points:
        names = _dp_names(dp.full_name, dp.relative_name, crl.issuer)
        if dp.crl_issuer and not dp.full_name and dp.relative_name is None:
            names = [("dn", name_key(g.value)) for g in dp.crl_issuer if isinstance(g, x509.DirectoryName)]
        if any(n in idp_names for n in names):
            return True
    return False
