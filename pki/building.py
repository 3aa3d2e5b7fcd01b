"""Path building (ideas of RFC 4158): find candidate paths from a target
certificate up to a trust anchor.

Several issuers per certificate are normal in a bridge: cross-certificates in
both directions, a member root present both self-signed and cross-certified,
key rollover. Candidates are tried trusted first, then those whose subject key
identifier matches the child's authority key identifier, then those where one
side is missing, then mismatches, so that name collisions waste no budget.
Loops are found by (subject, public key) rather than by certificate bytes,
because mutual cross-certificates are distinct certificates of one CA. The
child's signature is checked before a candidate is followed (and remembered,
so validation does not pay twice). Before any search, the CA chains known
to validate (``KnownChains``) are tried: a new leaf under known CAs costs no
search at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from . import errors as E
from .algorithms import DSA_KEY, UnsupportedSignatureAlgorithm, dsa_parameters
from .budget import Budget
from .certificate import Certificate
from .errors import BudgetExceeded, ValidationError
from .known_chains import KnownChains
from .names import NameKey
from .signatures import SignatureVerifier


class CertificatePool:
    """Certificates indexed by subject; immutable once built."""

    def __init__(self, certificates: Iterable[Certificate] = (), parent: "CertificatePool | None" = None) -> None:
        self._parent = parent
        self._by_subject: dict[NameKey, list[Certificate]] = {}
        seen = set()
        for cert in certificates:
            if cert.sha256 in seen or (parent is not None and parent.contains(cert)):
                continue
            seen.add(cert.sha256)
            self._by_subject.setdefault(cert.subject_key, []).append(cert)
        self._digests = frozenset(seen)

    def contains(self, cert: Certificate) -> bool:
        return cert.sha256 in self._digests or (self._parent is not None and self._parent.contains(cert))

    def with_extra(self, certificates: Iterable[Certificate]) -> "CertificatePool":
        """A pool with per-call certificates layered over this one."""
        certificates = list(certificates)
        return CertificatePool(certificates, parent=self) if certificates else self

    def by_subject(self, subject: NameKey) -> list[Certificate]:
        found = self._by_subject.get(subject, [])
        if self._parent is not None:
            return self._parent.by_subject(subject) + found
        return found

    def __len__(self) -> int:
        own = sum(len(v) for v in self._by_subject.values())
        return own + (len(self._parent) if self._parent is not None else 0)


class TrustStore:
    """Trust anchors, as (name, key) pairs carried by certificates."""

    def __init__(self, anchors: Iterable[Certificate]) -> None:
        self.pool = CertificatePool(anchors)
        self._identities = {a.identity for subject in self.pool._by_subject.values() for a in subject}
        self._keys = {a.spki for subject in self.pool._by_subject.values() for a in subject}

    def is_anchor(self, cert: Certificate) -> bool:
        return cert.spki in self._keys and cert.identity in self._identities

    def has_subject(self, subject: NameKey) -> bool:
        return bool(self.pool.by_subject(subject))

    def anchor_for(self, cert: Certificate) -> Certificate | None:
        if cert.spki not in self._keys:
            return None
        for a in self.pool.by_subject(cert.subject_key):
            if a.spki == cert.spki:
                return a
        return None

    def __len__(self) -> int:
        return len(self.pool)


@dataclass
class BuildFailure:
    """A dead end met while building, kept to explain a 'no path' result."""

    depth: int
    error: ValidationError
    path: tuple[Certificate, ...]  # the partial path attempted, target first


@dataclass
class BuildLog:
    failures: list[BuildFailure] = field(default_factory=list)

    def note(self, path: tuple[Certificate, ...], error: ValidationError) -> None:
        self.failures.append(BuildFailure(len(path), error, path))


def _rank(child: Certificate, candidate: Certificate, anchors: TrustStore) -> tuple[int, int]:
    """Trusted first, then AKI==SKI, then one side missing, then mismatch;
    within each, candidates issued under an anchor's name first."""
    if anchors.is_anchor(candidate):
        return (0, 0)
    near_anchor = 0 if anchors.has_subject(candidate.issuer_key) else 1
    aki, ski = child.authority_key_id, candidate.subject_key_id
    if aki is not None and ski is not None:
        return (1 if aki == ski else 3, near_anchor)
    return (2, near_anchor)


def build_paths(
    target: Certificate,
    anchors: TrustStore,
    pool: CertificatePool,
    signatures: SignatureVerifier,
    budget: Budget,
    log: BuildLog,
    known: KnownChains | None = None,
    *,
    search: bool = True,
) -> Iterator[tuple[Certificate, ...]]:
    """Yield candidate paths (target first, trust anchor last), shortest and
    best-ranked first.

    First phase: the target over the CA chains ``known`` to have validated
    before, so a new leaf under known CAs costs no search (``search=False``:
    this phase alone, the bounded case). Then the search, which skips the
    paths the first phase gave:

    Iterative deepening: depth-first with a depth limit raised from 1 to
    ``budget.limits.max_depth``, so a short path is found before a mesh of
    cross-certificates is explored in depth, whatever the order of the
    input. Signatures checked in an earlier round are cache hits; every
    candidate considered is charged to the budget, so a warm cache cannot
    make the search endless. Each yielded path is charged too.
    """
    anchor = anchors.anchor_for(target)
    if anchor is not None:
        budget.charge_candidate_path()
        yield (anchor,) if anchor is target else (target,)
        return
    tried: set[tuple[bytes, ...]] = set()
    if known is not None:
        for known_path, chain in known.paths(target, pool):
            budget.charge_candidate_path()
            tried.add((target.sha256,) + chain.digests)
            yield known_path
    if not search:
        return
    max_depth = budget.limits.max_depth
    path: list[Certificate] = [target]
    on_path: set = set()  # identities of the CA certificates on the path
    ranked: dict[bytes, list[Certificate]] = {}  # per child, computed once per call
    cut = False  # whether the last round stopped at its depth limit somewhere (set by extend)

    def candidates_for(child: Certificate) -> list[Certificate]:
        found = ranked.get(child.sha256)
        if found is None:
            unique: dict[tuple, Certificate] = {}
            for cand in anchors.pool.by_subject(child.issuer_key):
                unique.setdefault(("anchor",) + cand.identity, cand)
            for cand in pool.by_subject(child.issuer_key):
                if anchors.is_anchor(cand):
                    continue  # the anchor itself stands for its name and key
                unique.setdefault((cand.sha256,), cand)
            found = sorted(unique.values(), key=lambda c: _rank(child, c, anchors))
            ranked[child.sha256] = found
        return found

    def extend(limit: int) -> Iterator[tuple[Certificate, ...]]:
        nonlocal cut
        child = path[-1]
        depth = len(path)
        first_visit = depth == limit  # deeper rounds see this node again
        candidates = candidates_for(child)
        if not candidates:
            if first_visit:
                log.note(tuple(path), ValidationError(
                    E.NO_PATH,
                    f"no issuer found: {child.issuer_text} is neither a trust anchor nor among the intermediates",
                    depth - 1, child.subject_text))
            return
        for cand in candidates:
            is_anchor = anchors.is_anchor(cand)
            if not is_anchor and (cand.identity in on_path or _same_identity(cand, target)):
                continue
            if not is_anchor and depth >= limit:
                cut = True
                if depth >= max_depth and first_visit:
                    log.note(tuple(path), ValidationError(
                        E.BUDGET_EXCEEDED,
                        f"no path to a trust anchor within the maximum depth of {max_depth} certificates",
                        depth - 1, child.subject_text))
                continue
            if is_anchor and not first_visit:
                continue  # yielded in the round whose limit was this depth
            budget.charge_edge()
            # Log a bad signature once: in the first round that checks it.
            first_check = first_visit if is_anchor else depth == limit - 1
            if not _signature_plausible(child, cand, signatures, budget, log if first_check else None, tuple(path) + (cand,)):
                continue
            if is_anchor:
                budget.charge_candidate_path()
                yield tuple(path) + (cand,)
                continue
            path.append(cand)
            on_path.add(cand.identity)
            try:
                yield from extend(limit)
            finally:
                path.pop()
                on_path.discard(cand.identity)

    def fresh(paths: Iterator[tuple[Certificate, ...]]) -> Iterator[tuple[Certificate, ...]]:
        for p in paths:
            if not tried or tuple(c.sha256 for c in p) not in tried:
                yield p

    for limit in range(1, max_depth + 1):
        cut = False
        try:
            yield from fresh(extend(limit))
        except BudgetExceeded as exc:
            # Say where the search was when it ran out.
            if exc.path is None:
                exc.path = tuple(path)
                exc.index = len(path) - 1
            raise
        if not cut:
            return  # nothing was left unexplored: deeper rounds find nothing new


def _same_identity(a: Certificate, b: Certificate) -> bool:
    # Key first: comparing keys is cheap, and the target's subject is then
    # only worked out when it could matter.
    return a.spki == b.spki and a.subject_key == b.subject_key


def _signature_plausible(child, cand, signatures, budget, log: BuildLog | None, attempted) -> bool:
    """Check the child's signature under the candidate's key, when the key is
    complete (a DSA key that inherits parameters is checked in validation)."""
    if cand.public_key_oid == DSA_KEY and dsa_parameters(cand.spki) is None:
        return True
    try:
        ok = signatures.verify(cand.spki, None, child, budget)
    except UnsupportedSignatureAlgorithm as exc:
        if log is not None:
            log.note(attempted, ValidationError(E.UNSUPPORTED_ALGORITHM, str(exc), len(attempted) - 2, child.subject_text))
        return False
    except E.InputError as exc:
        if log is not None:
            log.note(attempted, ValidationError(E.SIGNATURE_INVALID, f"issuer key unusable: {exc}", len(attempted) - 2, child.subject_text))
        return False
    if not ok and log is not None:
        log.note(attempted, ValidationError(
            E.SIGNATURE_INVALID, f"signature does not verify with the key of {cand.subject_text}", len(attempted) - 2, child.subject_text))
    return ok
