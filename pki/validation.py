"""RFC 5280 section 6.1 path validation: a pure function of
(path, parameters, revocation facts).

The state lives in one object named after the RFC's variables; each step
carries its section number. The path is given leaf first, trust anchor last
(as the result object reports it); the RFC numbers certificates from the
anchor side, so certificate i (1..n) is ``path[n - i]``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from operator import attrgetter

from mypy_extensions import mypyc_attr

from . import errors as E
from .algorithms import UnsupportedSignatureAlgorithm, dsa_parameters
from .blocklist import Blocklist
from .budget import Budget
from .certificate import ANY_POLICY, Certificate
from .errors import ValidationError
from .known_chains import KnownChains
from .name_constraints import NameConstraintsState
from .policy import PolicyGraph
from .profile import ANY_EXTENDED_KEY_USAGE, PROFILES, STRICT, anchor_problem, key_usage_problem, strict_violation
from .revocation import RevocationChecker, RevocationRequest, RevocationStatus
from .signatures import SignatureVerifier


@mypyc_attr(native_class=False)  # built from a dict of fields (from_checked)
@dataclass(frozen=True)
class ValidationParameters:
    """RFC 5280 6.1.1 inputs (the path and trust anchor come separately),
    and the relying party's own requirements (pki/profile.py)."""

    at: dt.datetime
    user_initial_policy_set: frozenset[str] = frozenset({ANY_POLICY})
    initial_explicit_policy: bool = False
    initial_policy_mapping_inhibit: bool = False
    initial_any_policy_inhibit: bool = False
    # "strict": RFC 5280 section 4's MUSTs too; "rfc5280": 6.1 alone.
    profile: str = STRICT
    # The anchor certificate's validity, CA-ness, critical extensions and
    # constraints (RFC 5937); False: the anchor is a bare name and key (6.1.1 (d)).
    anchor_constraints: bool = True
    # KeyUsage attribute names the end entity must allow (all of them).
    key_usage: frozenset[str] = frozenset()
    # Extended key usage OIDs, one of which the path must allow.
    extended_key_usage: frozenset[str] = frozenset()
    # Intermediate certificates allowed between the end entity and the anchor.
    max_chain_depth: int | None = None
    # Certificates, keys and subjects no path may contain (pki/blocklist.py).
    blocklist: "Blocklist | None" = None
    # ``at`` is proven (now, or a proof of existence such as a verified
    # time-stamp's genTime): a certificate revoked after it is not revoked at
    # it. False: ``at`` is only claimed, and such a certificate fails with
    # revoked_no_poe (EN 319 102-1 REVOKED_NO_POE).
    time_proven: bool = False
    # When the question is asked: revocation information issued up to then
    # is used, even when issued after ``at`` (the freshest available, as EN
    # 319 102-1's past signature validation wants). None: ``at``.
    now: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("validation time must be timezone-aware")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        if self.at.microsecond:
            # Certificate and CRL times have one-second granularity: 10:00:00.005
            # is within a notAfter of 10:00:00.
            object.__setattr__(self, "at", self.at.replace(microsecond=0))

    @classmethod
    def from_checked(cls, fields: dict) -> "ValidationParameters":
        """Every field, already checked by the caller (Verifier's hot path: a
        timezone-aware whole-second time, a known profile). Skips the frozen
        dataclass's per-field setattr, a few microseconds a call; the instance
        is as immutable as any other."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "__dict__", fields)
        return obj


@dataclass(frozen=True)
class RevocationPolicy:
    """How revocation facts are used: ``checker`` None means none were given.
    ``required``: a certificate without a status fails the path."""

    checker: RevocationChecker | None = None
    required: bool = False
    # A status served from a cache past its nextUpdate but within the
    # source's grace period ("stale") passes, reported as such. Only the
    # service's fetching source produces such statuses.
    accept_stale: bool = False
    # Whether a certificate that names no revocation source ("not_checked")
    # fails the path (the service's ``require`` mode).
    require_all: bool = False


@dataclass(frozen=True)
class ValidatedPath:
    path: tuple[Certificate, ...]
    policies: frozenset[str]
    revocation: tuple[RevocationStatus | None, ...]  # per path index; None for the anchor


@dataclass
class _State:
    """RFC 5280 6.1.2 state variables."""

    valid_policy_tree: PolicyGraph
    permitted_excluded: NameConstraintsState
    explicit_policy: int
    inhibit_any_policy: int
    policy_mapping: int
    working_public_key: bytes
    working_public_key_algorithm: str
    working_public_key_parameters: bytes | None
    working_issuer_name: tuple
    max_path_length: int
    revocation: list = field(default_factory=list)


def role(index: int, path_len: int) -> str:
    if index == 0:
        return "the end-entity certificate"
    if index == path_len - 1:
        return "the trust anchor"
    return f"intermediate certificate {index}"


def _fail(code: str, message: str, index: int, cert: Certificate) -> ValidationError:
    return ValidationError(code, message, index, cert.subject_text)


def _time(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_SHA256 = attrgetter("sha256")


def _copy_state(state: "_State") -> "_State":
    return _State(
        valid_policy_tree=state.valid_policy_tree.copy(),
        permitted_excluded=state.permitted_excluded,
        explicit_policy=state.explicit_policy,
        inhibit_any_policy=state.inhibit_any_policy,
        policy_mapping=state.policy_mapping,
        working_public_key=state.working_public_key,
        working_public_key_algorithm=state.working_public_key_algorithm,
        working_public_key_parameters=state.working_public_key_parameters,
        working_issuer_name=state.working_issuer_name,
        max_path_length=state.max_path_length,
    )


def validate_path(
    path: tuple[Certificate, ...],
    params: ValidationParameters,
    signatures: SignatureVerifier,
    budget: Budget,
    revocation: RevocationPolicy = RevocationPolicy(),
    known_chains: KnownChains | None = None,
    revocation_key: object = None,
) -> ValidatedPath:
    """Validate ``path`` (leaf first, trust anchor last). Raises
    ValidationError naming the failing certificate; BudgetExceeded escapes.

    With ``known_chains``, the state after the CA certificates is reused
    when the same CA chain was validated before under the same inputs (and,
    when revocation facts entered it, at the same validation time);
    ``revocation_key`` must identify everything revocation answers depend
    on (mode, sources, epoch)."""
    statuses: list[RevocationStatus | None] = [None] * len(path)
    try:
        return _validate_path(path, params, signatures, budget, revocation, known_chains, revocation_key, statuses)
    except ValidationError as err:
        # Keep what revocation checking found before the failure (a revoked
        # certificate's entry says "revoked", not "not_checked").
        raise dataclasses.replace(err, statuses=tuple(statuses)) from None


def _validate_path(path, params, signatures, budget, revocation, known_chains, revocation_key, statuses) -> ValidatedPath:
    anchor = path[-1]
    n = len(path) - 1
    if params.blocklist is not None:
        _check_blocklist(anchor, n, params.blocklist)
    if params.anchor_constraints:
        # Checked on every call, cache or not: it depends on the time only.
        problem = anchor_problem(anchor, params.at, n > 0)
        if problem:
            raise _fail(E.ANCHOR_INVALID, problem, n, anchor)
    if params.max_chain_depth is not None and n - 1 > params.max_chain_depth:
        index = params.max_chain_depth + 1
        raise _fail(E.PATH_LENGTH_EXCEEDED,
                    f"the path has {n - 1} intermediate certificates; max_chain_depth allows {params.max_chain_depth}",
                    index, path[index])
    key = None
    if known_chains is not None and n >= 2:
        revocation_dependent = revocation.checker is not None or revocation.required
        key = (
            tuple(map(_SHA256, path[1:])),
            params.user_initial_policy_set,
            params.initial_explicit_policy,
            params.initial_policy_mapping_inhibit,
            params.initial_any_policy_inhibit,
            params.profile,
            params.anchor_constraints,
            id(params.blocklist) if params.blocklist is not None else None,
            revocation_key if revocation_dependent else None,
            # Statuses hold for the time they were found at, not around it.
            params.at if revocation_dependent else None,
        )
        hit = known_chains.state(key, params.at)
        if hit is not None:
            cached_state, cached_statuses, leaf_outcomes = hit
            statuses[1:] = cached_statuses
            leaf = path[0]
            # (a)-(c) read the state only: no copy needed.
            _check_certificate(leaf, path[1], n, n, 0, path, params, cached_state, signatures, budget, revocation, statuses)
            if leaf.unhandled_critical:  # 6.1.5 (f), leaf-specific: never memoized
                raise _fail(E.UNKNOWN_CRITICAL_EXTENSION, f"unrecognised critical extension {', '.join(leaf.unhandled_critical)}", 0, leaf)
            outcome_key = (leaf.policies, leaf.require_explicit_policy)
            outcome = leaf_outcomes.get(outcome_key)
            if outcome is None:
                state = _copy_state(cached_state)
                try:
                    _process_policies(leaf, n, n, 0, state, budget)
                    outcome = _wrap_up(leaf, n, params, state)
                except ValidationError as err:
                    outcome = (err.code, err.message)
                if len(leaf_outcomes) < 64:
                    leaf_outcomes[outcome_key] = outcome
            if isinstance(outcome, tuple):
                raise _fail(outcome[0], outcome[1], 0, leaf)
            if params.key_usage or params.extended_key_usage:
                _check_purposes(path, params)
            return ValidatedPath(path=path, policies=outcome, revocation=tuple(statuses))
    # 6.1.2 initialisation
    state = _State(
        valid_policy_tree=PolicyGraph(),
        permitted_excluded=NameConstraintsState.initial(),
        explicit_policy=0 if params.initial_explicit_policy else n + 1,
        inhibit_any_policy=0 if params.initial_any_policy_inhibit else n + 1,
        policy_mapping=0 if params.initial_policy_mapping_inhibit else n + 1,
        working_public_key=anchor.spki,
        working_public_key_algorithm=anchor.public_key_oid,
        working_public_key_parameters=dsa_parameters(anchor.spki),
        working_issuer_name=anchor.subject_key,
        max_path_length=n,
    )
    if params.anchor_constraints and n > 0:
        _apply_anchor_constraints(anchor, n, state, budget)
    for i in range(1, n + 1):
        index = n - i
        cert = path[index]
        issuer = path[index + 1]
        _basic_certificate_processing(cert, issuer, i, n, index, path, params, state, signatures, budget, revocation, statuses)
        if i != n:
            _prepare_for_next(cert, i, index, state, budget)
            if i == n - 1 and key is not None:
                cas = path[1:-1]
                not_before = max(c.not_before for c in cas)
                not_after = min(c.not_after for c in cas)
                # A CA revoked after the (proven) validation time: the state holds before that only.
                for later in statuses[1:]:
                    if later is not None and later.revocation_time is not None:
                        not_after = min(not_after, later.revocation_time - dt.timedelta(seconds=1))
                known_chains.remember_state(key, not_before, not_after, _copy_state(state), tuple(statuses[1:]))
    policies = _wrap_up(path[0], n, params, state)
    if params.key_usage or params.extended_key_usage:
        _check_purposes(path, params)
    return ValidatedPath(path=path, policies=policies, revocation=tuple(statuses))


def _check_blocklist(cert: Certificate, index: int, blocklist: Blocklist) -> None:
    entry = blocklist.match(cert)
    if entry is not None:
        why = f": {entry.reason}" if entry.reason else ""
        err = _fail(E.BLACKLISTED, f"on the blacklist (entry {entry.id}{why})", index, cert)
        raise dataclasses.replace(err, blacklist_entry=entry.id)


def _apply_anchor_constraints(anchor: Certificate, n: int, state: _State, budget: Budget) -> None:
    """RFC 5937 section 3: the constraints in the anchor's certificate
    initialise the state as if the anchor were certificate 0 of the path:
    its policy constraints and inhibitAnyPolicy bound the counters, its
    name constraints become the initial subtrees, its pathLenConstraint
    bounds max_path_length. (Its certificatePolicies are not intersected
    with the user-initial-policy-set: the platform names the policies it
    accepts, and the result reports them in the anchor's domain.)"""
    if anchor.require_explicit_policy is not None:
        state.explicit_policy = min(state.explicit_policy, anchor.require_explicit_policy)
    if anchor.inhibit_policy_mapping is not None:
        state.policy_mapping = min(state.policy_mapping, anchor.inhibit_policy_mapping)
    if anchor.inhibit_any_policy is not None:
        state.inhibit_any_policy = min(state.inhibit_any_policy, anchor.inhibit_any_policy)
    if anchor.name_constraints is not None:
        state.permitted_excluded = state.permitted_excluded.with_constraints(anchor.name_constraints, budget)
    if anchor.path_length is not None:
        state.max_path_length = min(state.max_path_length, anchor.path_length)


_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth", "1.3.6.1.5.5.7.3.2": "clientAuth", "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection", "1.3.6.1.5.5.7.3.8": "timeStamping", "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "1.3.6.1.5.5.7.3.36": "documentSigning",
}


def _purpose_names(oids) -> str:
    return ", ".join(sorted(_EKU_NAMES.get(o, o) for o in oids))


def _check_purposes(path: tuple[Certificate, ...], params: ValidationParameters) -> None:
    """What the relying party asked the path for. keyUsage: the end entity
    must allow every requested bit (RFC 5280 4.2.1.3: without the extension
    the key is unrestricted). extendedKeyUsage, as Go's crypto/x509 and
    OpenSSL do: every certificate that carries the extension (CAs and, with
    anchor constraints, the anchor included) must allow a requested purpose,
    the same one all along the path; anyExtendedKeyUsage allows any (4.2.1.12)."""
    n = len(path) - 1
    if n == 0 and not params.anchor_constraints:
        return  # a bare anchor has no usage to check
    leaf = path[0]
    problem = key_usage_problem(leaf, params.key_usage)
    if problem:
        raise _fail(E.PURPOSE, problem, 0, leaf)
    wanted = params.extended_key_usage
    if not wanted:
        return
    for index in range(n + 1 if params.anchor_constraints else n):
        eku = path[index].extended_key_usage
        if eku is None or ANY_EXTENDED_KEY_USAGE in eku:
            continue
        remaining = wanted.intersection(eku)
        if not remaining:
            raise _fail(E.PURPOSE, f"extendedKeyUsage ({_purpose_names(eku)}) allows none of the purposes required "
                                   f"({_purpose_names(wanted)})", index, path[index])
        wanted = remaining


def _basic_certificate_processing(cert, issuer, i, n, index, path, params, state, signatures, budget, revocation, statuses):
    """6.1.3"""
    _check_certificate(cert, issuer, i, n, index, path, params, state, signatures, budget, revocation, statuses)
    _process_policies(cert, i, n, index, state, budget)


def _check_certificate(cert, issuer, i, n, index, path, params, state, signatures, budget, revocation, statuses):
    """6.1.3"""
    if cert.defect:
        raise _fail(E.MALFORMED_CERTIFICATE, cert.defect, index, cert)
    if params.profile == STRICT:
        violation = strict_violation(cert)
        if violation:
            raise _fail(E.MALFORMED_CERTIFICATE, violation, index, cert)
    # (a)(1) signature, under the working public key and parameters
    try:
        ok = signatures.verify(state.working_public_key, state.working_public_key_parameters, cert, budget)
    except UnsupportedSignatureAlgorithm as exc:
        raise _fail(E.UNSUPPORTED_ALGORITHM, str(exc), index, cert) from None
    except E.InputError as exc:
        raise _fail(E.SIGNATURE_INVALID, f"issuer key unusable: {exc}", index, cert) from None
    if not ok:
        raise _fail(E.SIGNATURE_INVALID, f"signature does not verify with the key of {issuer.subject_text}", index, cert)
    # (a)(2) validity
    if params.at < cert.not_before:
        raise _fail(E.NOT_YET_VALID, f"not valid before {_time(cert.not_before)}; validation time is {_time(params.at)}", index, cert)
    if params.at > cert.not_after:
        raise _fail(E.EXPIRED, f"expired at {_time(cert.not_after)}; validation time is {_time(params.at)}", index, cert)
    # (a)(3) revocation
    if revocation.checker is not None:
        status = revocation.checker.check(
            RevocationRequest(
                path=path,
                index=index,
                issuer_spki=state.working_public_key,
                issuer_parameters=state.working_public_key_parameters,
                at=params.at,
                budget=budget,
                strict=params.profile == STRICT,
                now=params.now,
            )
        )
        statuses[index] = status
        if status.state == "revoked" and status.revocation_time is not None and status.revocation_time > params.at:
            # Revoked after the validation time: not revoked at it. That
            # settles it only when the time is proven; a claimed time (the
            # signer's signing-time, a time the caller names) could be
            # back-dated past the revocation.
            when = _time(status.revocation_time)
            why = f" ({status.reason})" if status.reason else ""
            if not params.time_proven:
                raise _fail(E.REVOKED_NO_POE, f"revoked on {when}{why}, after the validation time {_time(params.at)}, "
                                              f"which nothing proves (no time-stamp)", index, cert)
            status = RevocationStatus("good", status.source, status.reason, status.revocation_time,
                                      f"revoked on {when}{why}, after the proven validation time")
            statuses[index] = status
        if status.state == "revoked":
            when = f" on {_time(status.revocation_time)}" if status.revocation_time else ""
            why = f" ({status.reason})" if status.reason else ""
            src = f", according to {status.source}" if status.source else ""
            if status.reason == "certificateHold":
                # RFC 5280 5.3.1: on hold, a suspension that may be lifted.
                since = f" since {_time(status.revocation_time)}" if status.revocation_time else ""
                raise _fail(E.SUSPENDED, f"suspended (certificateHold){since}{src}", index, cert)
            raise _fail(E.REVOKED, f"revoked{when}{why}{src}", index, cert)
        acceptable = (
            status.state == "good"
            or (status.state == "stale" and revocation.accept_stale)
            or (status.state == "not_checked" and not revocation.require_all)
        )
        if not acceptable and revocation.required:
            raise _fail(E.REVOCATION_UNKNOWN, f"revocation status unknown: {status.detail or status.state}", index, cert)
    elif revocation.required:
        statuses[index] = RevocationStatus("unknown", detail="no CRL or OCSP response was supplied")
        raise _fail(E.REVOCATION_UNKNOWN, "revocation status unknown: no CRL or OCSP response was supplied", index, cert)
    # The blocklist after the revocation status: a certificate revoked for
    # keyCompromise (whose key the bridge then blacklists) says "revoked".
    if params.blocklist is not None:
        _check_blocklist(cert, index, params.blocklist)
    # (a)(4) name chaining
    if cert.issuer_key != state.working_issuer_name:
        raise _fail(E.NAME_CHAINING, f"issuer name {cert.issuer_text} does not match the subject of {issuer.subject_text}", index, cert)
    # (b), (c) name constraints; a self-issued intermediate is exempt
    if not state.permitted_excluded.is_unconstrained and not (i < n and cert.is_self_issued):
        if cert.subject_defect:
            raise _fail(E.MALFORMED_CERTIFICATE, cert.subject_defect, index, cert)
        problem = state.permitted_excluded.check(cert.subject, list(cert.subject_alt_names) if cert.subject_alt_names is not None else None, budget)
        if problem:
            raise _fail(E.NAME_CONSTRAINTS, problem, index, cert)



def _process_policies(cert, i, n, index, state, budget):
    """6.1.3 (d)-(f)"""
    # (d), (e) certificate policies
    tree = state.valid_policy_tree
    any_applies = state.inhibit_any_policy > 0 or (i < n and cert.is_self_issued)
    tree.process_certificate(cert.policies, any_applies, budget)
    # (f)
    if state.explicit_policy == 0 and tree.is_null:
        raise _fail(E.POLICY_REQUIRED, "no acceptable certificate policy: the path requires an explicit policy and none is valid here", index, cert)


def _prepare_for_next(cert: Certificate, i: int, index: int, state: _State, budget: Budget) -> None:
    """6.1.4"""
    mappings = cert.policy_mappings
    if mappings:
        # (a)
        for issuer_policy, subject_policy in mappings:
            if ANY_POLICY in (issuer_policy, subject_policy):
                raise _fail(E.POLICY_REQUIRED, "policyMappings maps anyPolicy, which is not allowed", index, cert)
        # (b)
        state.valid_policy_tree.apply_mappings(mappings, state.policy_mapping > 0, budget)
    # (c), (d), (e), (f)
    state.working_issuer_name = cert.subject_key
    state.working_public_key = cert.spki
    own = dsa_parameters(cert.spki)
    if own is not None:
        state.working_public_key_parameters = own
    elif cert.public_key_oid != state.working_public_key_algorithm:
        state.working_public_key_parameters = None
    state.working_public_key_algorithm = cert.public_key_oid
    # (g)
    if cert.name_constraints is not None:
        state.permitted_excluded = state.permitted_excluded.with_constraints(cert.name_constraints, budget)
    # (h)
    if not cert.is_self_issued:
        if state.explicit_policy:
            state.explicit_policy -= 1
        if state.policy_mapping:
            state.policy_mapping -= 1
        if state.inhibit_any_policy:
            state.inhibit_any_policy -= 1
    # (i)
    if cert.require_explicit_policy is not None:
        state.explicit_policy = min(state.explicit_policy, cert.require_explicit_policy)
    if cert.inhibit_policy_mapping is not None:
        state.policy_mapping = min(state.policy_mapping, cert.inhibit_policy_mapping)
    # (j)
    if cert.inhibit_any_policy is not None:
        state.inhibit_any_policy = min(state.inhibit_any_policy, cert.inhibit_any_policy)
    # (k) only CA certificates may issue. We treat v1/v2 intermediates as
    # non-CAs too (RFC 5280 leaves them to local policy).
    if cert.is_ca is not True:
        why = "basicConstraints is absent" if cert.is_ca is None else "basicConstraints says it is not a CA"
        raise _fail(E.NOT_A_CA, f"not a CA certificate ({why}) but it issued the next certificate", index, cert)
    # (l)
    if not cert.is_self_issued:
        if state.max_path_length <= 0:
            raise _fail(E.PATH_LENGTH_EXCEEDED, "path length constraint exceeded: too many CA certificates below a pathLenConstraint", index, cert)
        state.max_path_length -= 1
    # (m)
    if cert.path_length is not None:
        state.max_path_length = min(state.max_path_length, cert.path_length)
    # (n)
    if cert.key_usage is not None and not cert.key_usage.key_cert_sign:
        raise _fail(E.KEY_USAGE, "keyUsage does not allow certificate signing (keyCertSign)", index, cert)
    # (o)
    if cert.unhandled_critical:
        raise _fail(E.UNKNOWN_CRITICAL_EXTENSION, f"unrecognised critical extension {', '.join(cert.unhandled_critical)}", index, cert)


def _wrap_up(cert: Certificate, n: int, params: ValidationParameters, state: _State) -> frozenset[str]:
    """6.1.5 for the end-entity certificate (index 0)."""
    if n == 0:
        # The target is itself a trust anchor: nothing to validate.
        return state.valid_policy_tree.user_constrained_policy_set(params.user_initial_policy_set)
    # (a), (b)
    if state.explicit_policy:
        state.explicit_policy -= 1
    if cert.require_explicit_policy == 0:
        state.explicit_policy = 0
    # (f) unknown critical extensions
    if cert.unhandled_critical:
        raise _fail(E.UNKNOWN_CRITICAL_EXTENSION, f"unrecognised critical extension {', '.join(cert.unhandled_critical)}", 0, cert)
    # (g) with RFC 9618's user_constrained_policy_set
    policies = state.valid_policy_tree.user_constrained_policy_set(params.user_initial_policy_set)
    if state.explicit_policy > 0 or policies:
        return policies
    if params.user_initial_policy_set != frozenset({ANY_POLICY}) and not state.valid_policy_tree.is_null:
        why = f"none of the acceptable policies ({', '.join(sorted(params.user_initial_policy_set))}) is valid for this path"
    else:
        why = "no certificate policy is valid for this path, and an explicit policy is required"
    raise _fail(E.POLICY_REQUIRED, why, 0, cert)
