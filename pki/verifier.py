"""``pki.Verifier``: the public entry point of the verification core.

A Verifier is built once (anchors, intermediates and CRLs parsed and indexed
once) and reused for many calls from many threads. Each call gets its own
Budget; what calls learn is shared: verified signatures (SignatureVerifier),
the CA chains that validated (KnownChains, the first phase of every path
building) and the answers given (ResultCache). One path: a call parses the
leaf, takes the known chains, searches only if none validates, and
validates the leaf at most once per path.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from operator import attrgetter
from typing import Iterable, Sequence

from mypy_extensions import mypyc_attr

from . import errors as E
from .algorithms import DSA_KEY, AlgorithmRegistry, dsa_parameters, with_national_algorithms
from .blocklist import Blocklist
from .budget import DEFAULT_LIMITS, Budget, Limits
from .building import BuildLog, CertificatePool, TrustStore, build_paths
from .certificate import ANY_POLICY, Certificate, parse_certificate
from .crl import Crl, load_crls
from .errors import BudgetExceeded, InputError, ValidationError
from .indication import for_code, iso
from .known_chains import KnownChains
from .loading import load_certificate, load_many, looks_like_pkcs7
from .ocsp import DEFAULT_CLOCK_SKEW, CombinedChecker, OcspChecker, OcspResponse, load_ocsp_responses
from .parse_cache import ParseCache
from .profile import PROFILES, STRICT, parse_extended_key_usage, parse_key_usage, strict_violation
from .revocation import CrlChecker, ProvidedChecker, RevocationInfoProvider, RevocationRequest, RevocationStatus
from .signatures import SignatureVerifier
from .validation import RevocationPolicy, ValidatedPath, ValidationParameters, validate_path

REVOCATION_MODES = ("auto", "require", "off")
VALID_INDICATION = for_code(None)  # (TOTAL_PASSED, None), looked up once


@mypyc_attr(native_class=False)  # built from a dict of fields (_valid_result)
@dataclass(frozen=True)
class VerificationResult:
    valid: bool
    path: tuple[Certificate, ...]
    policies: frozenset[str] | None
    revocation: str  # "checked" | "not_checked" | "partial" | "stale"
    error: ValidationError | None = None
    statuses: tuple[RevocationStatus | None, ...] = ()
    # The time the answer holds for (the validation time asked, or proven).
    validation_time: dt.datetime | None = None

    def indication(self, **kw) -> tuple[str, str | None]:
        """(indication, sub_indication) of EN 319 102-1 (pki/indication.py)."""
        code = self.error.code if self.error is not None else None
        index = self.error.index if self.error is not None else None
        is_ca = index is not None and 0 < index < len(self.path) and self.path[index].is_ca is True
        return for_code(code, is_ca=is_ca, **kw)

    def to_dict(self) -> dict:
        # Every entry says what revocation checking found, the anchor's too
        # (never checked: it is trusted as it is).
        entries = [cert.path_entry() for cert in self.path]
        statuses = self.statuses
        for i in range(min(len(statuses), len(entries) - 1)):
            status = statuses[i]
            if not status:
                continue
            entry = entries[i]
            entry["revocation"] = status.state
            if status.source:
                entry["revocation_source"] = status.source
            if status.revocation_time is not None:
                # Revoked, or (state "good") revoked only after the validation time.
                entry["revocation_time"] = iso(status.revocation_time)
                entry["revocation_reason"] = status.reason
        indication, sub_indication = self.indication() if self.error is not None else VALID_INDICATION
        return {
            "valid": self.valid,
            "indication": indication,
            "sub_indication": sub_indication,
            "validation_time": iso(self.validation_time),
            "path": entries,
            "policies": sorted(self.policies) if self.policies is not None else [],
            "revocation": self.revocation,
            "error": self.error.to_dict() if self.error else None,
        }


_ANY = frozenset({ANY_POLICY})
_DEFAULT_REQUIREMENTS: tuple[str, bool, frozenset[str], frozenset[str], int | None] = (
    STRICT, True, frozenset(), frozenset(), None)
_NO_REVOCATION = RevocationPolicy()


def _input_digest(item) -> bytes:
    if isinstance(item, Certificate):
        return item.sha256
    return hashlib.sha256(item.encode() if isinstance(item, str) else bytes(item)).digest()


class ResultCache:
    """Answers, valid or not, by (input bytes, inputs), each usable while the
    validation time stays inside the window where it holds. Bounded LRU."""

    # Each entry keeps its path's parsed certificates (a few KiB): 8192
    # entries bound the cache near 50 MiB per Verifier.
    def __init__(self, size: int = 8192) -> None:
        self._entries: OrderedDict[tuple, tuple] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple, at: dt.datetime) -> "VerificationResult | None":
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        not_before, not_after, result = entry
        return result if not_before <= at <= not_after else None

    def put(self, key: tuple, not_before: dt.datetime, not_after: dt.datetime, result: "VerificationResult") -> None:
        # Kept from the first answer: a question asked again costs no
        # validation at all, whatever its answer.
        with self._lock:
            self._entries[key] = (not_before, not_after, result)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)


def parse_time(at: dt.datetime | str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if isinstance(at, str):
        try:
            parsed = dt.datetime.fromisoformat(at.replace("Z", "+00:00") if at.endswith("Z") else at)
        except ValueError:
            raise InputError(f"not an ISO 8601 time: {at!r}") from None
        at = parsed
    elif not isinstance(at, dt.datetime):
        raise InputError(f"not a time: {at!r}")
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    # Certificate and CRL times have one-second granularity.
    return at.replace(microsecond=0) if at.microsecond else at


def _check_oid(oid: str) -> str:
    parts = oid.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 2:
        raise InputError(f"not an OID: {oid!r}")
    return oid


@mypyc_attr(allow_interpreted_subclasses=True)  # tests count its calls in a subclass
class Verifier:
    def __init__(
        self,
        anchors: Iterable[bytes | str | Certificate],
        untrusted: Iterable[bytes | str | Certificate] = (),
        crls: Iterable[bytes | str | Crl] = (),
        *,
        registry: AlgorithmRegistry | None = None,
        limits: Limits = DEFAULT_LIMITS,
        ocsp_responses: Iterable["bytes | str | OcspResponse"] = (),
        ocsp_clock_skew: dt.timedelta = DEFAULT_CLOCK_SKEW,
        blocklist: Blocklist | None = None,
    ) -> None:
        """``blocklist``: certificates, keys and subjects no path may contain
        (code ``blacklisted``); fixed for the Verifier's life, like its anchors."""
        self._parse_cache = ParseCache()
        anchor_certs = load_many(anchors, "trust anchor", self._parse_cache)
        if not anchor_certs:
            raise InputError("at least one trust anchor is required")
        self.anchors = TrustStore(anchor_certs)
        self.pool = CertificatePool(load_many(untrusted, "untrusted certificate", self._parse_cache))
        parsed_crls: list[Crl] = []
        for i, item in enumerate(crls):
            parsed_crls.extend([item] if isinstance(item, Crl) else load_crls(item, f"CRL {i + 1}"))
        self.crls = tuple(parsed_crls)
        self.limits = limits
        self.blocklist = blocklist if blocklist is not None and len(blocklist) else None
        self.registry = registry if registry is not None else default_registry()
        self.signatures = SignatureVerifier(self.registry)
        self._crl_checker = CrlChecker(self.crls, self.signatures) if self.crls else None
        parsed_ocsp: list[OcspResponse] = []
        for i, response in enumerate(ocsp_responses):
            parsed_ocsp.extend([response] if isinstance(response, OcspResponse)
                               else load_ocsp_responses(response, f"OCSP response {i + 1}"))
        self.ocsp_responses = tuple(parsed_ocsp)
        self._ocsp_clock_skew = ocsp_clock_skew
        self._ocsp_checker = OcspChecker(self.ocsp_responses, self.signatures, clock_skew=ocsp_clock_skew) if parsed_ocsp else None
        # What this Verifier has learnt, shared by its calls (see ARCHITECTURE.md):
        # the CA chains that validated, and the answers given.
        self._known = KnownChains(self.pool, self.anchors)
        self._results = ResultCache()
        self._parsed_inputs: dict[bytes, list[Certificate]] = {}
        # The paths verify_without_search found failing, by question, for the
        # verify that follows it in the same request (each popped once).
        self._failed_known: OrderedDict[tuple, dict] = OrderedDict()
        self._failed_lock = threading.Lock()
        # How many paths this Verifier has validated (validate_path runs, CRL
        # signers' paths included): what its caches did not spare. A
        # statistic; concurrent calls may each miss the other's increment.
        self.path_validations = 0

    def _load_intermediates(self, items: tuple, digests: tuple) -> list[Certificate]:
        """Per-call intermediates, parsed once per Verifier: platforms send the
        same issuing CA with every request."""
        out: list[Certificate] = []
        for i, (item, digest) in enumerate(zip(items, digests, strict=True)):
            known = self._parsed_inputs.get(digest)
            if known is None:
                known = load_many([item], f"intermediate {i + 1}", self._parse_cache)
                if len(self._parsed_inputs) >= 4096:
                    self._parsed_inputs.clear()
                self._parsed_inputs[digest] = known
            out.extend(known)
        return out

    @staticmethod
    def _result_key(leaf, at, policies, explicit_policy, inhibit_policy_mapping, inhibit_any_policy, revocation,
                    intermediates, revocation_provider, requirements):
        """Checked inputs, and the key of the answer in the result cache:
        everything the answer depends on but the validation time."""
        if revocation not in REVOCATION_MODES:
            raise InputError(f"revocation mode must be one of {', '.join(REVOCATION_MODES)}")
        user_policies = frozenset(_check_oid(p) for p in policies) if policies else _ANY
        # A checked datetime as it is (the hot path); parse_time otherwise.
        when = at if (at.__class__ is dt.datetime and at.tzinfo is not None and not at.microsecond) else parse_time(at)
        intermediates = tuple(intermediates)
        leaf_id = hashlib.sha256(leaf).digest() if leaf.__class__ is bytes else _input_digest(leaf)
        extra_ids = tuple(_input_digest(i) for i in intermediates) if intermediates else ()
        result_key = (leaf_id, extra_ids, user_policies, explicit_policy, inhibit_policy_mapping, inhibit_any_policy,
                      revocation, id(revocation_provider) if revocation_provider is not None else None, requirements)
        return result_key, when, user_policies, leaf_id, intermediates, extra_ids

    @staticmethod
    def _requirements(profile, anchor_constraints, key_usage, extended_key_usage, max_chain_depth) -> tuple:
        """The relying party's requirements, checked, as one hashable value:
        (profile, anchor_constraints, key usage bits, EKU OIDs, max depth)."""
        if (profile == STRICT and anchor_constraints is True and not key_usage and not extended_key_usage
                and max_chain_depth is None):
            return _DEFAULT_REQUIREMENTS  # the common case, without building sets on every call
        if profile not in PROFILES:
            raise InputError(f"profile must be one of {', '.join(PROFILES)}")
        if not isinstance(anchor_constraints, bool):
            raise InputError("anchor_constraints must be true or false")
        if isinstance(key_usage, str) or isinstance(extended_key_usage, str):
            raise InputError("key_usage and extended_key_usage are lists of names")
        if max_chain_depth is not None and (isinstance(max_chain_depth, bool) or not isinstance(max_chain_depth, int)
                                            or not 0 <= max_chain_depth <= 64):
            raise InputError("max_chain_depth must be an integer from 0 to 64")
        return (profile, anchor_constraints, parse_key_usage(key_usage), parse_extended_key_usage(extended_key_usage),
                max_chain_depth)

    def verify(
        self,
        leaf: bytes | str | Certificate,
        at: dt.datetime | str | None = None,
        policies: Sequence[str] | None = None,
        explicit_policy: bool = False,
        inhibit_policy_mapping: bool = False,
        inhibit_any_policy: bool = False,
        revocation: str = "auto",
        intermediates: Iterable[bytes | str | Certificate] = (),
        revocation_provider: RevocationInfoProvider | None = None,
        *,
        # The relying party's requirements, as given: _requirements checks them
        # (InputError), so their types are not declared narrower than that.
        profile: object = STRICT,
        anchor_constraints: object = True,
        key_usage: object = None,
        extended_key_usage: object = None,
        max_chain_depth: object = None,
        poe: bool = False,
    ) -> VerificationResult:
        """``poe``: ``at`` is proven (a proof of existence, EN 319 102-1: a
        verified time-stamp's genTime): a certificate revoked after it passes,
        the revocation named in its path entry. An ``at`` that is only
        claimed (given, or a signing-time attribute) fails such a certificate
        with ``revoked_no_poe``; no ``at`` is now, which is proven.

        ``revocation_provider``: supplies CRLs and OCSP responses per
        certificate for this call (the service's fetching, caching source in
        bridge/revocation_source.py); consulted after the OCSP responses and
        CRLs the Verifier was built with, and processed the same way.

        ``profile``: "strict" (RFC 5280 section 4's MUSTs checked too) or
        "rfc5280" (6.1 alone). ``anchor_constraints``: honour the anchor
        certificate's validity, CA-ness, critical extensions and constraints
        (RFC 5937). ``key_usage``: keyUsage names the end entity must allow
        (all); ``extended_key_usage``: OIDs or names (``emailProtection``,
        ``codeSigning``, ``timeStamping``, ``documentSigning``, ...), one of
        which the path must allow; ``max_chain_depth``: intermediates allowed
        between the end entity and the anchor. See pki/profile.py."""
        result = self._verify(leaf, at, policies, explicit_policy, inhibit_policy_mapping, inhibit_any_policy,
                              revocation, intermediates, revocation_provider, profile=profile,
                              anchor_constraints=anchor_constraints, key_usage=key_usage,
                              extended_key_usage=extended_key_usage, max_chain_depth=max_chain_depth, poe=poe,
                              search=True)
        assert result is not None  # with search=True there is always an answer
        return result

    def verify_without_search(self, leaf: bytes | str | Certificate, **options) -> "VerificationResult | None":
        """``verify``'s answer (same arguments) when it is an answer given
        before (valid or not), or when the leaf validates over a CA chain
        known to validate (the first phase of path building alone): the
        cheap, bounded case (one leaf's processing). None when ``verify``
        would search for a path or explain a failure: call it then; the
        paths found failing here are not validated again by that call."""
        return self._verify(leaf, **options, search=False)

    def _verify(self, leaf, at=None, policies=None, explicit_policy=False, inhibit_policy_mapping=False,
                inhibit_any_policy=False, revocation="auto", intermediates=(), revocation_provider=None, *,
                profile=STRICT, anchor_constraints=True, key_usage=None, extended_key_usage=None,
                max_chain_depth=None, poe=False, search: bool) -> "VerificationResult | None":
        # verify's defaults, so that verify_without_search takes its keywords.
        # The common case of _requirements without its call (every new leaf).
        if (profile == STRICT and anchor_constraints is True and not key_usage and not extended_key_usage
                and max_chain_depth is None):
            requirements = _DEFAULT_REQUIREMENTS
        else:
            requirements = self._requirements(profile, anchor_constraints, key_usage, extended_key_usage,
                                              max_chain_depth)
        result_key, when, user_policies, leaf_id, intermediates, extra_ids = self._result_key(
            leaf, at, policies, explicit_policy, inhibit_policy_mapping, inhibit_any_policy, revocation,
            intermediates, revocation_provider, requirements)
        # Now is proven; any other time only when the caller holds a proof.
        proven = at is None or bool(poe)
        result_key = result_key + (proven,)
        cached = self._results.get(result_key, when)
        if cached is not None:
            return _answering(cached, when)
        if leaf.__class__ is bytes and leaf[:1] == b"\x30" and not looks_like_pkcs7(leaf):
            try:  # one DER certificate: the hot path, load_certificate's first case without its layers
                target = parse_certificate(leaf, self._parse_cache, leaf_id)
            except InputError as exc:
                raise InputError(f"certificate: {exc}") from None
        else:
            target = load_certificate(leaf, "certificate", self._parse_cache)
        if when.tzinfo is None or when.microsecond:  # pragma: no cover - parse_time guarantees both
            raise InputError("validation time must be timezone-aware, in whole seconds")
        checks_revocation = revocation != "off" and (
            revocation == "require" or self._crl_checker is not None or self._ocsp_checker is not None
            or revocation_provider is not None)
        params = ValidationParameters.from_checked({
            "at": when,
            "user_initial_policy_set": user_policies,
            "initial_explicit_policy": bool(explicit_policy),
            "initial_policy_mapping_inhibit": bool(inhibit_policy_mapping),
            "initial_any_policy_inhibit": bool(inhibit_any_policy),
            "profile": requirements[0],
            "anchor_constraints": requirements[1],
            "key_usage": requirements[2],
            "extended_key_usage": requirements[3],
            "max_chain_depth": requirements[4],
            "blocklist": self.blocklist,
            "time_proven": proven,
            # Read only by revocation checking: the clock is not read without it.
            "now": when if at is None or not checks_revocation else dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        })
        pool = self.pool.with_extra(self._load_intermediates(intermediates, extra_ids)) if intermediates else self.pool
        if not checks_revocation:
            rev = _NO_REVOCATION
        else:
            # CRL signers' own paths are checked with the same sources.
            holder: list = []
            resolve = self._crl_signer_resolver(pool, params, lambda: holder[0])
            crl_checker = None
            if self._crl_checker is not None:
                crl_checker = self._crl_checker.with_signer_resolver(resolve)
            ocsp_checker = self._ocsp_checker.with_fallback(crl_checker) if self._ocsp_checker is not None else None
            provided = ProvidedChecker(revocation_provider, self.signatures, resolve, clock_skew=self._ocsp_clock_skew) if revocation_provider is not None else None
            parts = [c for c in (ocsp_checker, crl_checker, provided) if c is not None]
            checker = None if not parts else parts[0] if len(parts) == 1 else CombinedChecker(*parts)
            holder.append(checker)
            service = revocation_provider is not None
            rev = RevocationPolicy(
                checker=checker,
                required=checker is not None or revocation == "require",
                accept_stale=service,
                require_all=not service or revocation == "require",
            )
        revocation_label = "not_checked" if rev.checker is None and not rev.required else "checked"
        revocation_key = (revocation, id(revocation_provider) if revocation_provider is not None else None, proven)
        refused = self._target_error(target, params)
        if refused is not None:
            # Every path would fail at the target: say so without a search
            # that hostile look-alike issuers could make expensive.
            result: VerificationResult | None = VerificationResult(
                False, (target,), None, _label(revocation_label, (), 1), refused, (), when)
        else:
            question = result_key + (when,)
            if search:
                failed = None
                if self._failed_known:  # mostly empty: no lock taken for nothing
                    with self._failed_lock:
                        failed = self._failed_known.pop(question, None)
                result = self._search(target, pool, params, rev, revocation_label, revocation_key, failed)
            else:
                failed = {}
                result = self._search(target, pool, params, rev, revocation_label, revocation_key, failed, search=False)
                if result is None:
                    if failed:
                        with self._failed_lock:
                            self._failed_known[question] = failed
                            if len(self._failed_known) > 1024:
                                self._failed_known.popitem(last=False)
                    return None
        assert result is not None
        # A valid answer without a status is settled (_settled, without its call).
        if (result.error is None and not any(result.statuses)) or _settled(result.error, result.statuses):
            if result.valid and revocation_label == "not_checked":
                # Without revocation facts the answer holds while the leaf
                # and every CA are valid (the anchor too, under its
                # constraints); the target may be the anchor itself.
                holds = result.path if params.anchor_constraints else (result.path[:-1] or result.path)
                not_before = max(map(_NOT_BEFORE, holds))
                not_after = min(map(_NOT_AFTER, holds))
            else:
                # Revocation statuses, and failures, hold for the time asked.
                not_before = not_after = when
            self._results.put(result_key, not_before, not_after, result)
        return result

    def _target_error(self, target: Certificate, params: ValidationParameters) -> ValidationError | None:
        """What makes the target unacceptable on any path (a trust anchor
        given as the target is judged as an anchor, not here)."""
        if self.anchors.anchor_for(target) is not None:
            return None
        defect = target.defect or (strict_violation(target) if params.profile == STRICT else None)
        if defect:
            return ValidationError(E.MALFORMED_CERTIFICATE, defect, 0, target.subject_text)
        if self.blocklist is not None:
            entry = self.blocklist.match(target)
            if entry is not None:
                why = f": {entry.reason}" if entry.reason else ""
                return ValidationError(E.BLACKLISTED, f"on the blacklist (entry {entry.id}{why})", 0,
                                       target.subject_text, blacklist_entry=entry.id)
        return None

    def _search(self, target, pool, params, rev, revocation_label, revocation_key=None,
                failed: dict | None = None, *, search: bool = True) -> VerificationResult | None:
        """The first valid path, else the most advanced failure. ``failed``:
        paths (by digests) known to fail for this very question, with their
        error, which are not validated again; with ``search=False`` (the known
        chains alone) it receives the failures, and None is returned unless a
        path validated."""
        budget = Budget(self.limits)
        log = BuildLog()
        best: tuple[tuple[Certificate, ...], ValidationError] | None = None
        try:
            for path in build_paths(target, self.anchors, pool, self.signatures, budget, log, self._known,
                                    search=search):
                digests = tuple(c.sha256 for c in path) if failed is not None else ()
                known_error = failed.get(digests) if failed else None
                try:
                    if known_error is not None:
                        raise known_error
                    self.path_validations += 1
                    validated = validate_path(path, params, self.signatures, budget, rev,
                                              known_chains=self._known, revocation_key=revocation_key)
                except BudgetExceeded as exc:
                    if not search:
                        return None
                    if exc.path is None:
                        exc.path, exc.index = path, 0
                    raise
                except ValidationError as err:
                    if not search and failed is not None and _settled(err, err.statuses):
                        failed[digests] = err
                    if (err.index == 0 and err.code in _SEARCH_EXPLAINS and self._known.gave(path)
                            and not _deferred_key(path[1])):
                        # The search checks a child's signature before it
                        # follows an issuer and explains a failure where it
                        # meets it; a known chain's path is held to that.
                        continue
                    if best is None or (err.index is not None and best[1].index is not None and err.index < best[1].index):
                        best = (path, err)
                    continue
                self._known.remember(path)
                label = revocation_label if revocation_label != "checked" else _label(
                    revocation_label, validated.revocation, len(validated.path))
                return _valid_result(validated, label, params.at)
            if not search:
                return None
        except BudgetExceeded as exc:
            path = exc.path or (target,)
            index = exc.index if exc.index is not None else 0
            return VerificationResult(False, path, None, _label(revocation_label, (), len(path)),
                                      ValidationError(E.BUDGET_EXCEEDED, str(exc), index, path[index].subject_text),
                                      (), params.at)
        if best is not None:
            best_path, best_error = best
            return VerificationResult(False, best_path, None, _label(revocation_label, best_error.statuses, len(best_path)),
                                      best_error, best_error.statuses, params.at)
        if log.failures:
            deepest = max(log.failures, key=lambda f: f.depth)
            # Prefer a concrete defect (bad signature) over a plain dead end.
            concrete = [f for f in log.failures if f.error.code != E.NO_PATH]
            chosen = max(concrete, key=lambda f: f.depth) if concrete else deepest
            return VerificationResult(False, chosen.path, None, _label(revocation_label, (), len(chosen.path)),
                                      chosen.error, (), params.at)
        return VerificationResult(False, (target,), None, _label(revocation_label, (), 1),
                                  ValidationError(E.NO_PATH, "no path to a trust anchor", 0, target.subject_text),
                                  (), params.at)

    def _crl_signer_resolver(self, pool: CertificatePool, params: ValidationParameters, signer_checker):
        """RFC 5280 6.3.3 (f): a CRL signed with a key other than the
        certificate issuer's counts only if the signer's certificate has
        cRLSign and its own path validates (revocation included) to the same
        trust anchor as the certificate in question."""

        def resolve(crl: Crl, request: RevocationRequest):
            anchor = request.path[-1]
            anchors = TrustStore([anchor])
            signer_params = ValidationParameters(at=params.at, profile=params.profile,
                                                 anchor_constraints=params.anchor_constraints,
                                                 blocklist=params.blocklist)
            candidates = list(pool.by_subject(crl.issuer_key)) + [c for c in request.path if c.subject_key == crl.issuer_key]
            budget = request.budget
            seen = set()
            same_issuer = crl.issuer_key == request.certificate.issuer_key
            for cand in candidates:
                if cand.sha256 in seen or (same_issuer and cand.spki == request.issuer_spki):
                    continue  # the working issuer key was tried already
                seen.add(cand.sha256)
                if cand.key_usage is not None and not cand.key_usage.crl_sign:
                    continue
                if cand.identity in budget.crl_signers_in_progress:
                    # A CRL signer whose own status is on the CRL it signs
                    # (PKITS 4.14.30): its path up to this point is being
                    # validated already; accept its key for its own CRL.
                    if cand.identity == request.certificate.identity:
                        yield cand.spki, dsa_parameters(cand.spki)
                    continue
                if anchors.is_anchor(cand):
                    yield cand.spki, dsa_parameters(cand.spki)
                    continue
                # In progress only while its own path is validated: the mark is
                # taken off before its key is offered, not when this generator
                # is finalized (which a caller that stops at the first key
                # leaves to the garbage collector, and compiled code to never).
                budget.crl_signers_in_progress.add(cand.identity)
                validated = False
                try:
                    for path in build_paths(cand, anchors, pool, self.signatures, budget, BuildLog()):
                        self.path_validations += 1
                        try:
                            validate_path(path, signer_params, self.signatures, budget, RevocationPolicy(signer_checker(), True))
                        except ValidationError:
                            continue
                        validated = True
                        break
                finally:
                    budget.crl_signers_in_progress.discard(cand.identity)
                if validated:
                    yield cand.spki, dsa_parameters(cand.spki)

        return resolve


def _valid_result(validated: ValidatedPath, label: str, when: dt.datetime) -> VerificationResult:
    """The answer of a path that validated, without the frozen dataclass's
    per-field setattr (every new leaf makes one); as immutable as any other."""
    result = object.__new__(VerificationResult)
    object.__setattr__(result, "__dict__", {
        "valid": True, "path": validated.path, "policies": validated.policies, "revocation": label,
        "error": None, "statuses": validated.revocation, "validation_time": when})
    return result


_NOT_BEFORE = attrgetter("not_before")
_NOT_AFTER = attrgetter("not_after")

# Failures of the target's own signature under the issuer's key: the search
# never yields such a path (building.py's plausibility check).
_SEARCH_EXPLAINS = frozenset({E.SIGNATURE_INVALID, E.UNSUPPORTED_ALGORITHM})


def _deferred_key(issuer: Certificate) -> bool:
    """A DSA key that inherits its parameters: its signatures are checked in
    validation only (building.py)."""
    return issuer.public_key_oid == DSA_KEY and dsa_parameters(issuer.spki) is None


def _settled(error: ValidationError | None, statuses: tuple) -> bool:
    """Whether an answer is the question's alone, to be given again as it
    is. Not when it depends on a fetch that failed (a status left unknown:
    the source may answer next time, or answer otherwise when it may fetch)
    or on how far a budget went."""
    if error is not None and error.code in (E.REVOCATION_UNKNOWN, E.BUDGET_EXCEEDED):
        return False
    for status in statuses:
        if status is not None and status.state == "unknown":
            return False
    return True


def _answering(result: VerificationResult, when: dt.datetime) -> VerificationResult:
    """The result stamped with the validation time it answers for (a cached
    one may have been found for another time in its window)."""
    if result.validation_time == when:
        return result
    return VerificationResult(result.valid, result.path, result.policies, result.revocation, result.error,
                              result.statuses, when)


def _label(revocation_label: str, statuses: tuple, path_length: int) -> str:
    """The result's ``revocation`` (INTERFACE.md): ``checked`` only when every
    non-anchor certificate of the path got a status, valid or not."""
    if revocation_label != "checked":
        return revocation_label
    states = [statuses[i].state if i < len(statuses) and statuses[i] else None for i in range(path_length - 1)]
    if not states:
        return "not_checked"  # the anchor alone: nothing to check
    if any(s is None or s in ("unknown", "not_checked") for s in states):
        return "partial" if any(s in ("good", "revoked", "stale") for s in states) else "not_checked"
    if any(s == "stale" for s in states):
        return "stale"
    return "checked"


def default_registry() -> AlgorithmRegistry:
    return with_national_algorithms(AlgorithmRegistry())
