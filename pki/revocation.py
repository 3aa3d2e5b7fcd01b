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
from .crl import Crl, reason_name
from .errors import InputError
from .names import NameKey, name_key

if TYPE_CHECKING:
    from .budget import Budget
    from .certificate import Certificate
    from .signatures import SignatureVerifier


@dataclass(frozen=True)
class RevocationStatus:
    state: str  # "good" | "revoked" | "unknown" | "stale" | "not_checked" (no source applies)
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
    # The strict profile also refuses CRLs that break RFC 5280 section 5's MUSTs.
    strict: bool = True
    # When the question is asked (None: ``at``). Long-term validation (EN
    # 319 102-1 past signature validation, in substance): a status at a past
    # ``at`` comes from the freshest information issued up to ``now``; a
    # revocation it lists after ``at`` is reported with its time, and the
    # validator decides what it means (pki/validation.py: proven or claimed time).
    now: dt.datetime | None = None

    @property
    def issued_by(self) -> dt.datetime:
        """The latest issue time of revocation information usable here."""
        return self.at if self.now is None or self.now < self.at else self.now

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


@dataclass(frozen=True)
class RevocationInfo:
    """What a revocation source found for one certificate: parsed CRLs and
    OCSP responses (with the nonce each request carried), the grace period
    within which out-of-date ones may still be used (and reported stale), and
    why anything could not be had."""

    crls: tuple[Crl, ...] = ()
    ocsp: tuple = ()  # (OcspResponse, nonce or None) pairs
    grace: dt.timedelta = dt.timedelta(0)
    errors: tuple[str, ...] = ()
    sources_named: bool = True  # False: the certificate names no CRL DP or OCSP URL
    # A status the provider decided from its own records (the bridge knows
    # which reverse certificates it publishes); used as given.
    decided: "RevocationStatus | None" = None


class RevocationInfoProvider(Protocol):
    """Supplies CRLs and OCSP responses for a certificate (the service's
    fetching, caching source). It may do I/O; nothing in pki/ does."""

    def revocation_info(self, certificate: "Certificate", issuer: "Certificate", at: dt.datetime) -> RevocationInfo: ...


class ProvidedChecker:
    """Checks each certificate against what a RevocationInfoProvider
    supplies for it, with the same pure CRL and OCSP processing."""

    def __init__(self, provider: RevocationInfoProvider, signatures: "SignatureVerifier",
                 resolve_signer: CrlSignerResolver | None = None, *, clock_skew: dt.timedelta | None = None) -> None:
        self._provider = provider
        self._signatures = signatures
        self._resolve_signer = resolve_signer
        self._clock_skew = clock_skew

    def check(self, request: RevocationRequest) -> RevocationStatus:
        from .ocsp import DEFAULT_CLOCK_SKEW, CombinedChecker, OcspChecker

        info = self._provider.revocation_info(request.certificate, request.issuer, request.at)
        if info.decided is not None:
            return info.decided
        crl = CrlChecker(info.crls, self._signatures, self._resolve_signer, grace=info.grace) if info.crls else None
        ocsp = None
        if info.ocsp:
            ocsp = OcspChecker(info.ocsp, self._signatures, clock_skew=self._clock_skew or DEFAULT_CLOCK_SKEW,
                               grace=info.grace, fallback=crl)
        if ocsp is None and crl is None:
            if not info.sources_named and not info.errors:
                return RevocationStatus("not_checked", detail="the certificate names no CRL distribution point or OCSP responder")
            why = "; ".join(info.errors) if info.errors else "no CRL or OCSP response could be obtained"
            return RevocationStatus("unknown", detail=why)
        status = CombinedChecker(ocsp, crl).check(request)
        if status.state in ("unknown", "stale") and info.errors:
            detail = "; ".join(filter(None, [status.detail, *info.errors]))
            return RevocationStatus(status.state, status.source, status.reason, status.revocation_time, detail)
        return status


class CrlChecker:
    """Status from CRLs per RFC 5280 6.3.3: complete and delta CRLs, scope by
    issuingDistributionPoint, distribution points and cRLIssuer (indirect
    CRLs), and reason coverage across several CRLs.

    Pure over the CRLs it was given; CRLs are indexed by issuer when the
    checker is built, and each CRL's entries when it was loaded, so a status
    check costs a few dictionary lookups however long the CRLs are. A CRL
    signed with a key other than the working issuer key (or by another CA, for
    an indirect CRL) needs ``resolve_signer`` to find and validate the
    signer's certificate.
    """

    def __init__(
        self,
        crls: Iterable[Crl],
        signatures: "SignatureVerifier",
        resolve_signer: CrlSignerResolver | None = None,
        *,
        grace: dt.timedelta = dt.timedelta(0),
    ) -> None:
        """``grace``: a CRL past its nextUpdate by less than this is still
        used (the service's cache when a CRL server is down); the status it
        gives is then ``stale`` (revoked stays revoked)."""
        self.grace = grace
        self._by_issuer: dict[NameKey, list[Crl]] = {}
        self._deltas: dict[NameKey, list[Crl]] = {}
        # Freshest first: a newer CRL lists revocations an older one cannot,
        # and the first that decides wins.
        for crl in sorted(crls, key=lambda c: c.this_update, reverse=True):
            (self._deltas if crl.is_delta else self._by_issuer).setdefault(crl.issuer_key, []).append(crl)
        self._signatures = signatures
        self._resolve_signer = resolve_signer

    def with_signer_resolver(self, resolve_signer: CrlSignerResolver) -> "CrlChecker":
        """The same CRLs (index shared, not rebuilt) with a per-call resolver."""
        view = object.__new__(CrlChecker)
        view._by_issuer = self._by_issuer
        view._deltas = self._deltas
        view._signatures = self._signatures
        view._resolve_signer = resolve_signer
        view.grace = self.grace
        return view

    def __bool__(self) -> bool:
        return bool(self._by_issuer) or bool(self._deltas)

    def check(self, request: RevocationRequest) -> RevocationStatus:
        cert = request.certificate
        reasons_mask: frozenset[str] = frozenset()
        deciders: list[str] = []
        problems: list[str] = []
        only_stale = True
        used_stale = False
        tried: set[tuple[int, int]] = set()
        for dp_index, dp in enumerate(_distribution_points(cert)):
            issuers = dp.crl_issuers if dp.crl_issuers is not None else (cert.issuer_key,)
            for issuer_key in issuers:
                for crl in self._by_issuer.get(issuer_key, ()):
                    if reasons_mask >= ALL_REASONS:
                        break
                    if (dp_index, id(crl)) in tried:
                        continue
                    tried.add((dp_index, id(crl)))
                    outcome = self._use(crl, dp, request, reasons_mask)
                    if isinstance(outcome, _Skip):
                        if outcome.problem not in problems:
                            problems.append(outcome.problem)
                        only_stale = only_stale and outcome.stale
                        continue
                    entry, interim, label, past_next_update = outcome
                    reasons_mask |= interim
                    used_stale = used_stale or past_next_update
                    if entry is not None:
                        # 6.3.3 (i)-(k): found, and not removeFromCRL
                        return RevocationStatus("revoked", source=label, reason=entry.reason, revocation_time=entry.revocation_date)
                    deciders.append(label)
            if reasons_mask >= ALL_REASONS:
                break
        if reasons_mask >= ALL_REASONS:
            if used_stale:
                return RevocationStatus("stale", source="; ".join(deciders), detail="decided by a CRL past its nextUpdate, within the grace period")
            return RevocationStatus("good", source="; ".join(deciders))
        if not problems and not deciders:
            return RevocationStatus("unknown", detail=f"no CRL covering certificates of {cert.issuer_text} was supplied")
        if deciders:
            missing = ", ".join(sorted(ALL_REASONS - reasons_mask))
            problems.insert(0, f"the usable CRLs ({'; '.join(deciders)}) do not cover the reasons {missing}")
            only_stale = False
        state = "stale" if only_stale and problems else "unknown"
        return RevocationStatus(state, detail="; ".join(problems))

    def _use(self, crl: Crl, dp: "_DistributionPoint", request: RevocationRequest, reasons_mask: frozenset[str]):
        """6.3.3 (a)-(l) for one complete CRL and one distribution point:
        (entry or None, interim reasons, label, used past nextUpdate), or
        _Skip with the reason."""
        cert = request.certificate
        problem = _load_problem(crl, request.strict)
        if problem:
            return _Skip(f"{crl.label}: {problem}")
        if crl.this_update > request.issued_by:
            return _Skip(f"{crl.label}: issued after the time of the question")
        # (b)(1) issuer
        if dp.crl_issuers is not None:
            if not crl.is_indirect:
                return _Skip(f"{crl.label}: the certificate names its issuer as cRLIssuer, but the CRL is not indirect")
        elif crl.issuer_key != cert.issuer_key:
            return _Skip(f"{crl.label}: issued by another CA")
        # (b)(2) scope
        idp = crl.issuing_distribution_point
        if idp is not None:
            idp_names = _idp_names(idp, crl)
            if idp_names is not None:
                wanted = dp.names if dp.names is not None else frozenset(("dn", k) for k in dp.crl_issuers or ())
                if not idp_names & wanted:
                    return _Skip(f"{crl.label}: its distribution point is not one the certificate names")
            if idp.only_contains_user_certs and cert.is_ca:
                return _Skip(f"{crl.label}: covers end-entity certificates only")
            if idp.only_contains_ca_certs and not cert.is_ca:
                return _Skip(f"{crl.label}: covers CA certificates only")
            if idp.only_contains_attribute_certs:
                return _Skip(f"{crl.label}: covers attribute certificates only")
        # (d), (e) reasons
        interim = ALL_REASONS
        if idp is not None and idp.only_some_reasons is not None:
            interim = frozenset(reason_name(r) for r in idp.only_some_reasons)
        if dp.reasons is not None:
            interim = interim & dp.reasons
        if not interim - reasons_mask:
            return _Skip(f"{crl.label}: covers no reason not already covered")
        # (c) delta CRL of the same scope
        delta = self._delta_for(crl, request.issued_by, request.strict)
        if isinstance(delta, _Skip):
            return delta
        # (a) freshness: a current delta brings a stale complete CRL up to date
        stale = crl.next_update is not None and crl.next_update < request.at
        past_next_update = False
        if delta is not None and delta.next_update is not None and delta.next_update < request.at:
            if delta.next_update + self.grace < request.at:
                return _Skip(f"{delta.label}: out of date (nextUpdate {delta.next_update:%Y-%m-%d %H:%M:%SZ})", stale=True)
            past_next_update = True
        if stale and (delta is None or delta.next_update is None):
            assert crl.next_update is not None  # stale means it has one
            if crl.next_update + self.grace < request.at:
                return _Skip(f"{crl.label}: out of date (nextUpdate {crl.next_update:%Y-%m-%d %H:%M:%SZ})", stale=True)
            past_next_update = True
        # (f), (g) signer and signature; (h) the delta under the same key
        try:
            key, why = self._verified_key(crl, request)
            if key is None:
                return _Skip(f"{crl.label}: {why}")
            if delta is not None and not self._signatures.verify(key[0], key[1], delta, request.budget):
                return _Skip(f"{delta.label}: signature does not verify with the key that signed {crl.label}")
        except (UnsupportedSignatureAlgorithm, InputError) as exc:
            return _Skip(f"{crl.label}: signature cannot be checked: {exc}")
        label = crl.label if delta is None else f"{crl.label} with {delta.label}"
        # (i) delta first, (j) then the complete CRL, (k) removeFromCRL
        entry = None
        if delta is not None:
            entry = delta.lookup(cert.issuer_key, cert.serial)
        if entry is None:
            entry = crl.lookup(cert.issuer_key, cert.serial)
        if entry is not None and entry.reason == "removeFromCRL":
            entry = None
        return entry, interim, label, past_next_update

    def _delta_for(self, crl: Crl, at: dt.datetime, strict: bool = False):
        """The newest delta CRL that updates ``crl`` (6.3.3 (c); 5.2.4):
        same issuer, same issuingDistributionPoint and authority key
        identifier, base CRL number at most the complete CRL's number."""
        if crl.number is None:
            return None
        best: Crl | None = None
        for delta in self._deltas.get(crl.issuer_key, ()):
            if _load_problem(delta, strict) or delta.this_update > at:
                continue
            if delta.issuing_distribution_point != crl.issuing_distribution_point:
                continue
            if delta.authority_key_id != crl.authority_key_id:
                continue
            if delta.delta_base is None or delta.delta_base > crl.number or (
                    delta.number is not None and delta.number <= crl.number):
                continue
            if best is None or (delta.number or 0) > (best.number or 0):
                best = delta
        return best

    def _verified_key(self, crl: Crl, request: RevocationRequest):
        """6.3.3 (f)/(g): the key that signed the CRL, from the certificate's
        issuer (with cRLSign) or from a CRL signer validated to the same trust
        anchor: ((spki, params), None) or (None, why)."""
        cert, issuer = request.certificate, request.issuer
        issuer_may_sign = issuer.key_usage is None or issuer.key_usage.crl_sign
        if crl.issuer_key == cert.issuer_key and issuer_may_sign:
            if self._signatures.verify(request.issuer_spki, request.issuer_parameters, crl, request.budget):
                return (request.issuer_spki, request.issuer_parameters), None
        if self._resolve_signer is not None:
            for spki, params in self._resolve_signer(crl, request):
                if self._signatures.verify(spki, params, crl, request.budget):
                    return (spki, params), None
        if crl.issuer_key == cert.issuer_key and not issuer_may_sign:
            return None, "the issuer's keyUsage does not allow CRL signing, and no other CRL signer was found"
        if crl.issuer_key != cert.issuer_key:
            return None, "no validated CRL signer certificate whose key verifies it"
        return None, "signature does not verify"


@dataclass(frozen=True)
class _Skip:
    problem: str
    stale: bool = False


ALL_REASONS = frozenset(
    {
        "keyCompromise",
        "cACompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "certificateHold",
        "privilegeWithdrawn",
        "aACompromise",
    }
)


def _load_problem(crl: Crl, strict: bool = False) -> str | None:
    """Defects found when the CRL was loaded, which make it unusable."""
    if crl.defect:
        return crl.defect
    if crl.unhandled_critical:
        return f"unrecognised critical extension {', '.join(crl.unhandled_critical)}"
    if strict:
        # RFC 5280 5.2.3: conforming CRL issuers MUST include cRLNumber, non-critical.
        if crl.number is None:
            return "the CRL has no cRLNumber extension (strict profile)"
        if crl.number_critical:
            return "the CRL's cRLNumber extension is marked critical (strict profile)"
    return None


@dataclass(frozen=True)
class _DistributionPoint:
    names: frozenset | None  # the distributionPoint field, as comparable keys; None when absent
    crl_issuers: tuple[NameKey, ...] | None  # cRLIssuer directory names; None when absent
    reasons: frozenset[str] | None


def _general_name_key(g: x509.GeneralName) -> tuple:
    if isinstance(g, x509.DirectoryName):
        return ("dn", name_key(g.value))
    value = g.value
    if isinstance(value, str):
        value = value.casefold() if isinstance(g, (x509.DNSName, x509.RFC822Name)) else value
    return (type(g).__name__, value)


def _relative(base: x509.Name, rdn: x509.RelativeDistinguishedName) -> tuple:
    return ("dn", name_key(x509.Name(list(base.rdns) + [rdn])))


def _distribution_points(cert: "Certificate") -> list[_DistributionPoint]:
    """The certificate's CRL distribution points, then (6.3.3, last
    paragraph) one standing for CRLs issued by the certificate issuer that no
    distribution point names: no reasons, no cRLIssuer, and the certificate
    issuer's name as its distribution point name."""
    out = []
    for dp in cert.crl_distribution_points:
        issuers_dn = [g.value for g in dp.crl_issuer or () if isinstance(g, x509.DirectoryName)]
        crl_issuers = tuple(name_key(n) for n in issuers_dn) if dp.crl_issuer else None
        names = None
        if dp.full_name:
            names = frozenset(_general_name_key(g) for g in dp.full_name)
        elif dp.relative_name is not None:
            # 4.2.1.13: relative to the cRLIssuer when present, else the issuer
            bases = issuers_dn or [cert.issuer]
            names = frozenset(_relative(b, dp.relative_name) for b in bases)
        reasons = frozenset(reason_name(r) for r in dp.reasons) if dp.reasons is not None else None
        out.append(_DistributionPoint(names, crl_issuers, reasons))
    out.append(_DistributionPoint(frozenset({("dn", cert.issuer_key)}), None, None))
    return out


def _idp_names(idp: x509.IssuingDistributionPoint, crl: Crl) -> frozenset | None:
    if idp.full_name:
        return frozenset(_general_name_key(g) for g in idp.full_name)
    if idp.relative_name is not None:
        return frozenset({_relative(crl.issuer, idp.relative_name)})
    return None
