"""Signature checks with a cache of what is already known to verify.

Relying platforms verify the same intermediates and cross-certificates over
and over; a signature that verified once under a key verifies forever, so
verified (key, object) pairs are remembered in a bounded LRU shared by all
calls of one Verifier. Only real checks are charged to the call's budget.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from mypy_extensions import mypyc_attr

from .algorithms import AlgorithmRegistry
from .budget import Budget


class Signed(Protocol):
    # Read-only: certificates, CRLs and OCSP responses are frozen.
    @property
    def tbs(self) -> bytes: ...
    @property
    def signature_algorithm(self) -> bytes: ...
    @property
    def signature(self) -> bytes: ...
    @property
    def sha256(self) -> bytes: ...


@mypyc_attr(allow_interpreted_subclasses=True)  # tests count its calls in a subclass
class SignatureVerifier:
    def __init__(self, registry: AlgorithmRegistry, cache_size: int = 65536) -> None:
        self.registry = registry
        self._known: OrderedDict[tuple, bool] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, spki: bytes, params: bytes | None, signed: Signed, budget: Budget) -> bool:
        """True iff ``signed`` carries a valid signature by the key ``spki``.
        Raises UnsupportedSignatureAlgorithm (from the registry)."""
        key = (spki, params, signed.sha256)
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                self._known.move_to_end(key)
                return known
        budget.charge_signature()
        ok = self.registry.verify(spki, signed.signature_algorithm, signed.signature, signed.tbs, params)
        with self._lock:
            self._known[key] = ok
            if len(self._known) > self._cache_size:
                self._known.popitem(last=False)
        return ok
