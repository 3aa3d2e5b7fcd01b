"""Verification for relying platforms: the domain behind /v1/verify/*.

Builds (and reuses) a ``pki.Verifier`` per trust anchor from the bridge's
published state: its cross-certificates, the reverse certificates members
issued to it, and its own CRL. Revocation follows INTERFACE.md's service
rules: cross- and reverse certificates against the bridge's own records;
other certificates through the CRL distribution points / OCSP URLs they
name (fetched and cached by ``RevocationSource``); a certificate naming no
source is not checked unless the caller asks for ``require``.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pki import Verifier
from pki.certificate import ANY_POLICY, Certificate
from pki.cms import verify_cms, verify_raw_signature
from pki.crl import Crl, parse_crl
from pki.indication import reindicate
from pki.loading import load_certificate
from pki.revocation import RevocationInfo, RevocationStatus

from .errors import BridgeError
from .revocation_source import FetchLimits, FetchNeeded, RevocationSource, no_fetch
from .service import BridgeCA

if TYPE_CHECKING:  # imported where used: most verifications need no trust list
    from .trust_lists import ListView

# Every trust change increments the store's revocation epoch; a process reads
# it at most this often, so a revocation made through any process is seen by
# every other within this interval (plus one request).
EPOCH_POLL_SECONDS = 0.25
# A Verifier is rebuilt at least this often all the same, so the bridge CRL
# it holds is renewed long before its nextUpdate.
VERIFIER_MAX_AGE_SECONDS = 300.0
# trust_anchor "list:<id>": the CA services of a registered external trusted list (bridge/trust_lists.py).
LIST_ANCHOR_PREFIX = "list:"


class BridgeRevocationProvider:
    """RevocationInfoProvider: the bridge's own records first, then the
    fetching source for everything else."""

    def __init__(self, bridge_spkis: frozenset[bytes], bridge_crls: tuple[Crl, ...], published_reverse: frozenset[bytes], source: RevocationSource | None,
                 on_hold: dict[bytes, RevocationStatus] | None = None):
        self._bridge_spkis = bridge_spkis
        self._bridge_crls = bridge_crls
        self._published_reverse = published_reverse
        self._source = source
        # SHA-256 -> status, for the cross- and reverse certificates of suspended members.
        self._on_hold = on_hold or {}

    def revocation_info(self, certificate: Certificate, issuer: Certificate, at: dt.datetime) -> RevocationInfo:
        held = self._on_hold.get(certificate.sha256)
        if held is not None:
            return RevocationInfo(decided=held)
        if certificate.sha256 in self._published_reverse:
            return RevocationInfo(decided=RevocationStatus("good", source="bridge records: reverse certificate of an active member"))
        if issuer.spki in self._bridge_spkis:
            return RevocationInfo(crls=self._bridge_crls)
        if self._source is not None:
            return self._source.revocation_info(certificate, issuer, at)
        named = bool(certificate.crl_distribution_points or certificate.ocsp_urls)
        return RevocationInfo(sources_named=named, errors=("revocation fetching is disabled",) if named else ())


def _on_hold(ca: BridgeCA, crosses) -> dict:
    """{"status": SHA-256 -> revoked/certificateHold, "reverse": the DER of suspended members' reverse certificates}."""
    import hashlib

    now = dt.datetime.now(dt.timezone.utc)
    status: dict[bytes, RevocationStatus] = {}
    for c in crosses:
        if c.status == "held":
            status[hashlib.sha256(c.der).digest()] = RevocationStatus(
                "revoked", source="bridge records: cross-certificate of a suspended member", reason="certificateHold",
                revocation_time=c.revoked_at)
    reverse = []
    for r in ca.store.reverse_certificates(enrollment_statuses=("suspended",)):
        if r.not_after > now:
            reverse.append(r.der)
            status[hashlib.sha256(r.der).digest()] = RevocationStatus(
                "revoked", source="bridge records: reverse certificate of a suspended member", reason="certificateHold")
    return {"status": status, "reverse": reverse}


@dataclass(frozen=True)
class _Context:
    verifier: Verifier
    provider: BridgeRevocationProvider
    built_at: float
    epoch: int
    # For a ``list:<id>`` trust anchor: the list version the anchors came from (bridge/trust_lists.py).
    list_view: ListView | None = None

    def recognising_list(self) -> ListView:
        """The list a ``list:<id>`` anchor's answers are judged against (callers check ``list_view`` first)."""
        if self.list_view is None:
            raise RuntimeError("this trust anchor is not a trusted list")
        return self.list_view


def revocation_source_for(settings) -> RevocationSource:
    """The fetching source the settings describe."""
    return RevocationSource(
        FetchLimits(connect_timeout=settings.revocation_connect_timeout, total_timeout=settings.revocation_total_timeout,
                    allow_private_addresses=settings.revocation_allow_private_addresses),
        failure_ttl=dt.timedelta(seconds=settings.revocation_failure_ttl_seconds),
        max_cached_bytes=settings.revocation_cache_bytes,
        max_cached=settings.revocation_cache_entries,
        min_fresh=dt.timedelta(seconds=settings.revocation_min_fresh_seconds),
    )


class VerificationService:
    def __init__(self, ca: BridgeCA, source: RevocationSource | None = None) -> None:
        self._ca = ca
        self._source = source if source is not None else revocation_source_for(ca.settings)
        self._lock = threading.Lock()
        self._contexts: dict[str, _Context] = {}
        self._build_locks = tuple(threading.Lock() for _ in range(16))
        self._epoch = -1
        self._epoch_read_at = float("-inf")

    def current_epoch(self) -> int:
        now = time.monotonic()
        if now - self._epoch_read_at >= EPOCH_POLL_SECONDS:
            epoch = self._ca.store.epoch()
            with self._lock:
                self._epoch, self._epoch_read_at = epoch, now
        return self._epoch

    def known_epoch(self) -> int | None:
        """The epoch when it was read recently enough to be used as is; None
        when a poll is due (the caller then polls where it may block)."""
        if time.monotonic() - self._epoch_read_at >= EPOCH_POLL_SECONDS:
            return None
        return self._epoch

    def invalidate(self) -> None:
        """Forget built Verifiers and re-read the epoch (after a change made
        through this process)."""
        with self._lock:
            self._contexts.clear()
            self._epoch_read_at = float("-inf")

    def _anchor(self, trust_anchor: str) -> bytes:
        if trust_anchor == "bridge":
            return self._ca.certificate_der()
        view = self._ca.issuer(trust_anchor)  # BridgeError not_found
        if view["status"] != "active":
            raise BridgeError("issuer_not_active", f"issuer {trust_anchor} is {view['status']}; only an active member's root can be the trust anchor", "invalid")
        return view["root_certificate"].encode()

    def _context(self, trust_anchor: str) -> _Context:
        pinned = getattr(_pinned, "context", None)  # set by PinnedVerification around one call
        if pinned is not None and pinned[0] == trust_anchor:
            return pinned[1]
        epoch = self.current_epoch()
        now = time.monotonic()
        with self._lock:
            ctx = self._contexts.get(trust_anchor)
        if ctx is not None and ctx.epoch == epoch and now - ctx.built_at < VERIFIER_MAX_AGE_SECONDS:
            return ctx
        # One build per trust anchor at a time: after an epoch change every
        # request in flight finds its context stale, and each building its
        # own (database reads, parsing, a Verifier with empty caches) would
        # multiply the work by the number of worker threads. Striped locks
        # keep the lock table bounded whatever ids are asked about.
        with self._build_locks[hash(trust_anchor) % len(self._build_locks)]:
            with self._lock:
                ctx = self._contexts.get(trust_anchor)
            if ctx is not None and ctx.epoch == epoch and time.monotonic() - ctx.built_at < VERIFIER_MAX_AGE_SECONDS:
                return ctx  # built by another thread meanwhile
            return self._build_context(trust_anchor, epoch, now)

    def _build_context(self, trust_anchor: str, epoch: int, now: float) -> _Context:
        if trust_anchor.startswith(LIST_ANCHOR_PREFIX):
            return self._build_list_context(trust_anchor, epoch, now)
        anchor = self._anchor(trust_anchor)
        from cryptography.hazmat.primitives.serialization import Encoding

        # Revoked cross-certificates stay in the pool, so that a path through
        # one is reported as revoked (with the CRL that says so), not as
        # "no path".
        crosses = [c for c in self._ca.store.cross_certificates(statuses=("issued", "held", "revoked")) if c.der]
        issued_by = [c.der for c in crosses if c.der is not None]  # every one: crosses holds rows with a DER
        issued_to = [c.public_bytes(Encoding.DER) for c in self._ca.issued_to_bridge()]
        # A suspended member's certificates stay in the pool, on hold by the
        # bridge's records, so a path through them fails as suspended, not as "no path".
        on_hold = _on_hold(self._ca, crosses)
        issued_to += [der for der in on_hold.pop("reverse")]
        # A dual-key bridge signs its CRL with each key; certificates issued by
        # either key then have a CRL from their own issuer key. The latest CRL
        # is the full revocation history of the cross-certificates (every one
        # revoked stays listed, with its time: store._issue_crl), and the core
        # uses a CRL issued after a past validation time (pki/revocation.py),
        # so a past question about a cross-certificate is judged by when it was
        # revoked, not refused.
        crl_ders = self._ca.current_crls()
        links = [c.public_bytes(Encoding.DER) for c in self._ca.link_certificates()]
        # The blacklist in force: every path through a listed key, certificate or subject fails (blacklisted).
        verifier = Verifier(anchors=[anchor], untrusted=issued_by + issued_to + links, crls=crl_ders,
                            blocklist=self._ca.blocklist())
        import hashlib

        bridge_keys = frozenset(load_certificate(c.public_bytes(Encoding.DER)).spki for c in self._ca.bridge_certificates())
        held = on_hold["status"]
        provider = BridgeRevocationProvider(
            bridge_keys, tuple(parse_crl(d) for d in crl_ders),
            frozenset(hashlib.sha256(d).digest() for d in issued_to) - held.keys(), self._source, held,
        )
        ctx = _Context(verifier, provider, now, epoch)
        with self._lock:
            self._contexts[trust_anchor] = ctx
        return ctx

    @staticmethod
    def _explicit(policies: list[str], require_explicit_policy: bool | None) -> bool:
        if require_explicit_policy is not None:
            return require_explicit_policy
        return bool(policies) and set(policies) != {ANY_POLICY}

    def _options(self, ctx: _Context, *, intermediates=(), policies=(), require_explicit_policy=None,
                 inhibit_policy_mapping=False, inhibit_any_policy=False, revocation="auto", profile="strict",
                 anchor_constraints=True, key_usage=None, extended_key_usage=None, max_chain_depth=None) -> dict:
        """Verifier.verify's keywords for a request's options. The relying
        party's requirements (profile, anchor constraints, purposes, depth)
        go to the core as they are; it checks them (InputError) and keys its
        result cache by them."""
        return dict(
            intermediates=list(intermediates or ()),
            policies=list(policies or ()) or None,
            explicit_policy=self._explicit(list(policies or ()), require_explicit_policy),
            inhibit_policy_mapping=inhibit_policy_mapping,
            inhibit_any_policy=inhibit_any_policy,
            revocation=revocation,
            revocation_provider=ctx.provider if revocation != "off" else None,
            profile=profile,
            anchor_constraints=anchor_constraints,
            key_usage=list(key_usage or ()),
            extended_key_usage=list(extended_key_usage or ()),
            max_chain_depth=max_chain_depth,
        )

    def verify_chain(self, certificate: str, *, trust_anchor: str = "bridge", at=None, **options) -> dict:
        ctx = self._context(trust_anchor)
        if ctx.list_view is not None:
            return self._recognised_chain(ctx, certificate, at, options)
        result = ctx.verifier.verify(certificate, at=at, **self._options(ctx, **options))
        return result.to_dict()

    # ------------------------------------------------------------------ external trusted lists as anchors

    def _build_list_context(self, trust_anchor: str, epoch: int, now: float) -> _Context:
        """A Verifier whose anchors are the CA services' certificates of the
        list's newest accepted version (roots and issuing CAs alike: a list
        names the CAs it recognises, whatever their depth). Built per list
        version and epoch: a new version bumps the epoch."""
        from .store import NotFound
        from .trust_lists import TrustListError

        list_id = trust_anchor[len(LIST_ANCHOR_PREFIX):]
        try:
            view = self._ca.trust_lists.current(list_id)
        except NotFound:
            raise BridgeError("not_found", f"no trust list {list_id}", "not_found") from None
        except TrustListError as exc:
            raise BridgeError(exc.code, exc.message, "invalid") from None
        anchors = view.anchors()
        if not anchors:
            raise BridgeError("not_recognised", f"trust list {list_id} names no CA service with a certificate", "invalid")
        verifier = Verifier(anchors=anchors, untrusted=[], crls=[], blocklist=self._ca.blocklist())
        provider = BridgeRevocationProvider(frozenset(), (), frozenset(), self._source)
        ctx = _Context(verifier, provider, now, epoch, view)
        with self._lock:
            self._contexts[trust_anchor] = ctx
        return ctx

    def _list_options(self, ctx: _Context, options: dict) -> tuple[dict, list[str]]:
        """The core runs under any policy: the requested policies are the
        bridge's, and are matched after the list's prefixes are mapped onto them."""
        requested = list(options.get("policies") or ())
        core = self._options(ctx, **{**options, "policies": (), "require_explicit_policy": False})
        return core, requested

    def _recognised_chain(self, ctx: _Context, certificate, at, options: dict) -> dict:
        from pki.verifier import parse_time

        from .trust_lists import recognise

        core, requested = self._list_options(ctx, options)
        when = parse_time(at)
        # The time as the caller gave it: an ``at`` is a claim, none is now (proven).
        result = ctx.verifier.verify(certificate, at=when if at is not None else None, **core)
        return reindicate(recognise(ctx.recognising_list(), result, when, requested))

    def _recognised_signature(self, ctx: _Context, result, at, requested: list[str]) -> dict:
        """A signature result whose chain is judged against the list at the
        chain's validation time (the signing time when asked for)."""
        from pki.verifier import parse_time

        from .trust_lists import recognise

        answer = result.to_dict()
        if result.chain is None:
            return answer
        # The time the chain was judged at (a time-stamp's genTime, the signing time, the time asked for, now).
        when = result.chain.validation_time or (result.signing_time if at == "signing-time" and result.signing_time is not None
                                                else parse_time(None if at == "signing-time" else at))
        chain = reindicate(recognise(ctx.recognising_list(), result.chain, when, requested))
        answer["chain"] = chain
        if answer["valid"] and not chain["valid"]:
            answer["valid"] = False
            answer["error"] = chain["error"]
            answer["indication"], answer["sub_indication"] = chain["indication"], chain["sub_indication"]
        return answer

    def _current_context(self, trust_anchor: str) -> _Context | None:
        """The built context for ``trust_anchor`` if it is current, without
        reading the database; None when a poll or a rebuild is due."""
        if self.known_epoch() is None:
            return None
        with self._lock:
            ctx = self._contexts.get(trust_anchor)
        if ctx is None or ctx.epoch != self._epoch or time.monotonic() - ctx.built_at >= VERIFIER_MAX_AGE_SECONDS:
            return None
        return ctx

    def quick_chain(self, certificate: str, *, trust_anchor: str = "bridge", at=None, **options) -> dict | None:
        """``verify_chain``'s answer when it needs no I/O and no search: the
        answer cached, or a leaf under a CA chain that validated before, with
        revocation answered from what is cached (``no_fetch``). Bounded work
        (one leaf's checks), so the service may run it on its event loop.
        None: call ``verify_chain`` (in a thread)."""
        if trust_anchor.startswith(LIST_ANCHOR_PREFIX):
            return None  # recognition by a list may fetch the list; verify_chain does it in a thread
        ctx = self._current_context(trust_anchor)
        if ctx is None:
            return None
        try:
            with no_fetch():
                result = ctx.verifier.verify_without_search(certificate, at=at, **self._options(ctx, **options))
        except FetchNeeded:
            return None
        return result.to_dict() if result is not None else None

    def verify_cms(self, cms: bytes, *, content: bytes | None = None, trust_anchor: str = "bridge", at=None, **options) -> dict:
        ctx = self._context(trust_anchor)
        if ctx.list_view is not None:
            core, requested = self._list_options(ctx, options)
            return self._recognised_signature(ctx, verify_cms(cms, ctx.verifier, content=content, at=at, **core), at, requested)
        return verify_cms(cms, ctx.verifier, content=content, at=at, **self._options(ctx, **options)).to_dict()

    def verify_raw(self, certificate: str, signature: bytes, data: bytes, *, algorithm: str | None = None,
                   trust_anchor: str = "bridge", at=None, **options) -> dict:
        ctx = self._context(trust_anchor)
        if ctx.list_view is not None:
            core, requested = self._list_options(ctx, options)
            result = verify_raw_signature(certificate, signature, data, ctx.verifier, algorithm=algorithm, at=at, **core)
            return self._recognised_signature(ctx, result, at, requested)
        return verify_raw_signature(certificate, signature, data, ctx.verifier, algorithm=algorithm, at=at,
                                    **self._options(ctx, **options)).to_dict()

    def pinned(self) -> "PinnedVerification":
        """Verifications that share one context per trust anchor (one batch request)."""
        return PinnedVerification(self)


# The context a PinnedVerification has chosen for the call running in this thread.
_pinned = threading.local()


class PinnedVerification:
    """The verifications of one batch: each trust anchor's context (its
    Verifier, at the epoch current when the anchor is first named) is looked
    up once and used for every item that names it, so the items of one
    request are answered under one state of trust, and an anchor that cannot
    be used (unknown, not active) costs one database read, not one per item.
    Each call is the service's own method (every kind of anchor, the
    metrics of a subclass), with only the context lookup pinned; it still
    gets its own Budget inside pki: items share caches, never limits.
    Not thread-safe: one batch runs in one thread."""

    def __init__(self, service: VerificationService) -> None:
        self._service = service
        self._contexts: dict[str, _Context | BridgeError] = {}

    def _call(self, method, trust_anchor: str, *args, **kwargs) -> dict:
        ctx = self._contexts.get(trust_anchor)
        if ctx is None:
            try:
                ctx = self._service._context(trust_anchor)
            except BridgeError as exc:
                ctx = exc
            self._contexts[trust_anchor] = ctx
        if isinstance(ctx, BridgeError):
            raise BridgeError(ctx.code, ctx.message, ctx.kind)  # a fresh one: each item's error stands alone
        _pinned.context = (trust_anchor, ctx)
        try:
            return method(*args, trust_anchor=trust_anchor, **kwargs)
        finally:
            _pinned.context = None

    def verify_chain(self, certificate: str, *, trust_anchor: str = "bridge", **options) -> dict:
        return self._call(self._service.verify_chain, trust_anchor, certificate, **options)

    def verify_cms(self, cms: bytes, *, trust_anchor: str = "bridge", **options) -> dict:
        return self._call(self._service.verify_cms, trust_anchor, cms, **options)

    def verify_raw(self, certificate: str, signature: bytes, data: bytes, *, trust_anchor: str = "bridge", **options) -> dict:
        return self._call(self._service.verify_raw, trust_anchor, certificate, signature, data, **options)
