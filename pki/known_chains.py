"""``KnownChains``: the CA chains (issuing CA first, trust anchor last) that
validated before, and the RFC 5280 6.1 state after each of them.

Relying platforms verify many leaves under the same few CAs. Once a path
validated, its CA part is remembered here, so that for a new leaf of the
same issuing CA path building starts with that chain (no search; the
first phase of ``build_paths``), and validation starts from the state left
after the chain's last CA (one certificate's processing; ``validate_path``).

A state is reused only for exactly the inputs it was computed from (the CA
certificates, the policy inputs, the profile, the blocklist, the
revocation configuration) and, when revocation facts entered it, only for
the very validation time it was computed at: a status depends on that time
(a CA revoked between two times, a CRL issued between them), so any window
around it would let a warm cache answer a question differently from a cold
one. Bounded; thread-safe.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Iterator

from .certificate import Certificate

if TYPE_CHECKING:
    from .building import CertificatePool, TrustStore


_SHA256 = attrgetter("sha256")


@dataclass(frozen=True)
class KnownChain:
    """One CA chain that validated (issuing CA first, anchor last), with what
    is asked of it for every new leaf worked out once."""

    certificates: tuple[Certificate, ...]
    digests: tuple[bytes, ...]  # the state key's part for these certificates
    keys: frozenset[bytes]  # their SubjectPublicKeyInfos
    in_base: bool  # every CA in the Verifier's own pool, the last one an anchor
    not_before: dt.datetime  # where every CA of the chain is valid
    not_after: dt.datetime


class KnownChains:
    """What a Verifier learnt from the paths that validated: the chains by
    their issuing CA's subject, and the 6.1 state after each chain per set
    of validation inputs."""

    # A few chains per issuing CA (cross-certificates, key rollover), a
    # bounded number of CAs (the base pool's are few; per-call intermediates
    # could be many).
    MAX_PER_ISSUER = 4
    MAX_ISSUERS = 10_000

    def __init__(self, base_pool: "CertificatePool", anchors: "TrustStore", states: int = 4096) -> None:
        self._base_pool = base_pool
        self._anchors = anchors
        self._by_issuer: dict[tuple, tuple[KnownChain, ...]] = {}
        self._states: OrderedDict[tuple, tuple] = OrderedDict()
        self._max_states = states
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(chains) for chains in self._by_issuer.values())

    def remember(self, path: tuple[Certificate, ...]) -> None:
        """A path (leaf first) validated: remember its CA chain."""
        if len(path) < 3:
            return
        chain = path[1:]
        issuer = chain[0].subject_key
        with self._lock:
            known = self._by_issuer.get(issuer, ())
            for k in known:
                # Certificates compare by identity: a path over a known chain
                # holds its very objects; a chain found again by the search,
                # equal digests.
                if k.certificates == chain or k.digests == tuple(map(_SHA256, chain)):
                    return
            if len(self._by_issuer) >= self.MAX_ISSUERS and issuer not in self._by_issuer:
                self._by_issuer.clear()
                known = ()
            entry = KnownChain(
                certificates=chain,
                digests=tuple(map(_SHA256, chain)),
                keys=frozenset(c.spki for c in chain),
                in_base=all(self._base_pool.contains(c) for c in chain[:-1]) and self._anchors.is_anchor(chain[-1]),
                not_before=max(c.not_before for c in chain[:-1]),
                not_after=min(c.not_after for c in chain[:-1]),
            )
            self._by_issuer[issuer] = (known + (entry,))[-self.MAX_PER_ISSUER:]

    def paths(self, target: Certificate, pool: "CertificatePool") -> Iterator[tuple[tuple[Certificate, ...], KnownChain]]:
        """Candidate paths for ``target`` over chains known to validate: its
        issuer's name matches, its authority key identifier does not
        contradict, it does not reappear in the chain (the search's loop
        rules decide that case), and every CA is in this call's pool."""
        chains = self._by_issuer.get(target.issuer_key)
        if not chains:
            return
        aki = target.authority_key_id
        for known in chains:
            chain = known.certificates
            ski = chain[0].subject_key_id
            if aki is not None and ski is not None and aki != ski:
                continue
            if target.spki in known.keys:
                continue
            if not known.in_base and (not all(pool.contains(c) for c in chain[:-1])
                                      or not self._anchors.is_anchor(chain[-1])):
                continue  # learnt with intermediates this call did not bring
            yield (target,) + chain, known

    def gave(self, path: tuple[Certificate, ...]) -> bool:
        """Whether ``path`` is a target over a known chain (as ``paths`` gives
        it: the chain's own certificate objects)."""
        if len(path) < 3:
            return False
        chain = path[1:]
        # Certificates compare by identity: a cheap test of the objects.
        return any(k.certificates == chain for k in self._by_issuer.get(path[1].subject_key, ()))

    def state(self, key: tuple, at: dt.datetime):
        """(state, CA statuses, leaf outcomes) after the chain, or None."""
        with self._lock:
            entry = self._states.get(key)
            if entry is None:
                return None
            self._states.move_to_end(key)
        not_before, not_after, state, statuses, leaf_outcomes = entry
        if not (not_before <= at <= not_after):
            return None
        return state, statuses, leaf_outcomes

    def remember_state(self, key: tuple, not_before: dt.datetime, not_after: dt.datetime, state, statuses: tuple) -> None:
        # leaf outcomes: the policy outcome for an end-entity certificate, by
        # (its policies, its requireExplicitPolicy): a pure function of this
        # state, so leaves with the same policies share it.
        with self._lock:
            self._states[key] = (not_before, not_after, state, statuses, {})
            if len(self._states) > self._max_states:
                self._states.popitem(last=False)

    def states(self) -> int:
        return len(self._states)
