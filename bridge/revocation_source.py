"""The service's revocation source: fetches CRLs (from CRL distribution
point URLs) and OCSP responses (from the AIA OCSP URL), caches them by their
nextUpdate, and hands the parsed objects to pki's pure checkers through
``pki.revocation.RevocationInfoProvider``. All network I/O of revocation
checking lives here; pki/ never does any.

Hostile or broken servers cost bounded time and memory, and certificates
cannot turn the service into a probe of its own network:
- a URL whose host resolves to a loopback, link-local, private (RFC 1918,
  ULA), unspecified, multicast or otherwise non-global address is refused
  (``refused_address``) unless ``FetchLimits.allow_private_addresses``
  (setting ``revocation_allow_private_addresses``); the name is resolved
  once, every address it resolves to is checked, and the connection goes to
  a checked address (never resolved again), so DNS rebinding cannot swap it;
- errors name the URL and a category (``refused_address``, ``timeout``,
  ``connection_failed``, ``http_status``, ``too_large``, ``malformed``,
  ``ocsp_status``) with a detail of our own wording, never the text of an
  internal exception or of the server's answer;
- HTTP only (no TLS: CRLs and OCSP responses are signed objects; RFC 5280
  4.2.1.13 and RFC 6960 A.1 use http), connect timeout and a total deadline
  enforced by a watchdog that closes the socket, so a server that never
  answers or drips bytes is cut off;
- bodies are streamed and abandoned at a size cap (a declared
  Content-Length above the cap is refused before reading);
- at most ``max_redirects`` redirects, to http URLs only.

Freshness is decided by the real time (``wall_clock``), never by the
validation time a request asks about: a cached object is used until its
nextUpdate (objects without one: ``default_ttl`` after they were fetched),
but at least ``min_fresh`` after it was fetched, then fetched again (so a CA
that publishes late, serving an object already past its nextUpdate, costs
one fetch per ``min_fresh``, not one per verification). The objects
themselves are handed to pki unchanged, and pki judges them against the
request's validation time (``RevocationInfo``'s ``grace``: an object past
its nextUpdate by less than ``grace`` at that time is used, reported
``stale``). So a request for a far-future or a past time
neither keeps an object cached for everyone nor spares it a due refresh.
When a refresh fails, the cached copy is still handed out until its
nextUpdate plus ``grace`` by the real time (``served from cache``), and
dropped after that. The cache is an LRU bounded by entries (``max_cached``)
and by the estimated resident size of the objects it holds
(``max_cached_bytes``): a parsed CRL holds its DER, its TBS and an index
entry per revoked certificate, about 18 times its DER for a large CRL, so
its size is counted as DER + TBS + ``CRL_ENTRY_BYTES`` per entry (measured,
see benchmarks/memory_crl.py). An object larger than that whole budget is
used for the request that fetched it (and those sharing its fetch) but not
cached.

A failed fetch is remembered for ``failure_ttl`` (negative caching): until
then a request for the same object does not touch the network and answers
with the same failure, marked as remembered, so one dead CRL or OCSP server
costs its timeout once per ``failure_ttl`` rather than on every
verification. A failure to reach a server at all (``ConnectionFailure``:
refused, timeout, HTTP 5xx, a body that could not be read) is remembered for
its URL too, so an OCSP responder that is down costs one timeout, not one
per certificate asked about; an answer about one certificate (an OCSP
"unauthorized", a malformed response) is remembered for that certificate
only. Concurrent requests for an object that is not cached share one fetch
("single flight"). An OCSP responder that nothing is known about (never
asked, or its remembered failure expired) gets one request at a time until
it answers: concurrent requests about other certificates wait for the first
one's outcome (the responder is probed), then answer from its connection
failure without connecting, or, once it has answered anything, fetch their
own certificates' responses side by side. So a dead responder costs one
timeout even for a burst of different certificates. (One that answered
before and dies later is found out by the requests under way at that moment,
each on its own; from the first failure on its URL failure answers.) All
maps are bounded.

Under ``no_fetch()`` (a context variable: the current thread or asyncio task
only) the source never opens a connection and never waits for another
request's fetch: it answers from its caches exactly what it would answer
without the context manager, and raises ``FetchNeeded`` where that answer
would need a fetch. The service answers on its event loop under
``no_fetch()`` and goes to a worker thread on ``FetchNeeded``.

Usage::

    source = RevocationSource()
    verifier.verify(leaf, revocation_provider=source)
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import http.client
import ipaddress
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from pki.certificate import Certificate
from pki.crl import Crl, parse_crl
from pki.errors import InputError
from pki.ocsp import OcspResponse, parse_ocsp_response
from pki.revocation import RevocationInfo


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 3.0  # seconds to establish the TCP connection
    total_timeout: float = 10.0  # seconds for the whole exchange, redirects included
    max_crl_bytes: int = 32 * 1024 * 1024
    max_ocsp_bytes: int = 256 * 1024
    max_redirects: int = 3
    # Fetch from hosts that resolve to loopback, link-local, private,
    # unspecified or multicast addresses (tests and closed networks only).
    allow_private_addresses: bool = False


# The resident bytes a parsed CRL's index costs per revoked certificate (dict
# slot, key tuple, serial int, CrlEntry, datetime), beyond its DER and TBS:
# measured with benchmarks/memory_crl.py at 332 (1,000,000 entries: +358 MiB
# resident for 22 MB of DER) to 350 (100,000 entries) on CPython 3.11; 400
# leaves room for allocator slack, so the budget errs on the safe side.
CRL_ENTRY_BYTES = 400


class FetchError(Exception):
    """A fetch that did not produce a usable object. ``str()`` is what
    callers see: the URL, the category, and a detail of our own wording."""

    def __init__(self, url: str, category: str, detail: str) -> None:
        super().__init__(f"{url}: {category}: {detail}")
        self.url = url
        self.category = category
        self.detail = detail


class ConnectionFailure(FetchError):
    """The server could not be reached or gave no usable answer: connection
    refused or timed out, no complete answer in time, HTTP 5xx, a body that
    could not be read. It says nothing about the object asked for, so it is
    remembered for the URL (every OCSP request to that responder), not only
    for the one certificate."""


class FetchNeeded(Exception):
    """Raised under ``no_fetch()`` where the answer would need a fetch (or
    waiting for another request's fetch): nothing fresh is cached and no
    failure is remembered. Ask again without ``no_fetch()``."""


# The token of the thread that entered no_fetch() (one object per thread), or
# None. A token rather than True: asyncio.to_thread (like any call run in a
# copied context) carries context variables into a worker thread, which is
# exactly where the service wants the fetch done; the token only matches in
# the thread that set it.
_NO_FETCH: contextvars.ContextVar[object | None] = contextvars.ContextVar("bridge_revocation_no_fetch", default=None)
_thread = threading.local()


def _thread_token() -> object:
    token = getattr(_thread, "token", None)
    if token is None:
        token = _thread.token = object()
    return token


@contextlib.contextmanager
def no_fetch() -> Iterator[None]:
    """Within the block, ``RevocationSource`` answers from its caches only
    and raises ``FetchNeeded`` instead of fetching or waiting for a fetch.
    Applies to the current thread, or the current asyncio task (and tasks it
    creates inside the block); not to other threads, even those handed a
    copy of this context (``asyncio.to_thread``). Reset on leaving the block,
    by an exception too."""
    reset = _NO_FETCH.set(_thread_token())
    try:
        yield
    finally:
        _NO_FETCH.reset(reset)


def fetching_disabled() -> bool:
    """True inside ``no_fetch()`` in this thread or task."""
    token = _NO_FETCH.get()
    return token is not None and token is getattr(_thread, "token", None)


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a fetch must not connect to ``ip`` (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, test in (("a loopback", ip.is_loopback), ("an unspecified", ip.is_unspecified),
                       ("a link-local", ip.is_link_local), ("a multicast", ip.is_multicast),
                       ("a private", ip.is_private)):
        if test:
            return kind
    if not ip.is_global:
        return "a non-global"  # shared (100.64/10), reserved, documentation ranges
    return None


def resolve_checked(url: str, host: str, port: int, limits: FetchLimits) -> list[tuple]:
    """The addresses to connect to for ``host``: resolved once, each one
    checked. A name with any refused address is refused as a whole (a
    resolver that mixes in a private address is not worked around)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise ConnectionFailure(url, "connection_failed", "the host name does not resolve") from None
    addresses = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = sockaddr[0]
        if not isinstance(address, str):  # AF_INET/AF_INET6 addresses are text (the int is AF_INET6 without IPv6 support)
            continue
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        kind = _refusal(ip)
        if kind is not None and not limits.allow_private_addresses:
            raise FetchError(url, "refused_address", f"the host resolves to {kind} address; "
                                                     "such addresses are fetched only when revocation_allow_private_addresses is set")
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise ConnectionFailure(url, "connection_failed", "the host name does not resolve")
    return addresses


class _PinnedConnection(http.client.HTTPConnection):
    """HTTPConnection to addresses resolved and checked beforehand: connect()
    never resolves the name again (the Host header still carries it)."""

    def __init__(self, host: str, port: int, addresses: list[tuple], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        last: OSError | None = None
        for family, sockaddr in self._addresses:
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                if isinstance(exc, (socket.timeout, TimeoutError)):
                    raise
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            return
        raise last if last is not None else OSError("no address to connect to")


def http_fetch(url: str, *, body: bytes | None = None, content_type: str | None = None,
               max_bytes: int, limits: FetchLimits) -> bytes:
    """GET (or POST ``body``) ``url`` over plain HTTP within ``limits``."""
    deadline = time.monotonic() + limits.total_timeout
    for _ in range(limits.max_redirects + 1):
        parts = urlsplit(url)
        try:
            port = parts.port or 80
        except ValueError:
            raise FetchError(url, "refused_address", "the URL's port is not a number in range") from None
        if parts.scheme != "http" or not parts.hostname:
            raise FetchError(url, "refused_address", "only http:// URLs are fetched")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectionFailure(url, "timeout", f"no answer within {limits.total_timeout:g} s")
        # Every hop of a redirect is checked too: a public server must not
        # be able to send the fetch on to a private address.
        addresses = resolve_checked(url, parts.hostname, port, limits)
        conn = _PinnedConnection(parts.hostname, port, addresses, timeout=min(limits.connect_timeout, remaining))
        watchdog = threading.Timer(remaining, _abort, (conn,))
        watchdog.daemon = True
        try:
            try:
                conn.connect()
            except (socket.timeout, TimeoutError):
                raise ConnectionFailure(url, "timeout", f"could not connect within {limits.connect_timeout:g} s") from None
            except OSError:
                raise ConnectionFailure(url, "connection_failed", "could not connect") from None
            watchdog.start()
            conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            headers = {"Host": parts.netloc, "User-Agent": "bridgeca-revocation/1", "Connection": "close"}
            if content_type:
                headers["Content-Type"] = content_type
            try:
                conn.request("POST" if body is not None else "GET", target, body=body, headers=headers)
                resp = conn.getresponse()
                if resp.status in (301, 302, 303, 307, 308):
                    location = resp.getheader("Location")
                    if not location:
                        raise FetchError(url, "http_status", f"HTTP {resp.status} redirect without Location")
                    url = urljoin(url, location)
                    if resp.status == 303:
                        body, content_type = None, None
                    continue
                if resp.status >= 500:
                    raise ConnectionFailure(url, "http_status", f"HTTP {resp.status}")
                if resp.status != 200:
                    raise FetchError(url, "http_status", f"HTTP {resp.status}")
                declared = resp.getheader("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(url, "too_large", f"response of {declared} bytes exceeds the limit of {max_bytes}")
                chunks, size = [], 0
                while True:
                    chunk = resp.read(min(65536, max_bytes + 1 - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(url, "too_large", f"response exceeds the limit of {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise ConnectionFailure(url, "timeout", f"no complete answer within {limits.total_timeout:g} s")
                if declared and declared.isdigit() and size < int(declared):
                    # http.client hands back a short body without complaint
                    raise ConnectionFailure(url, "connection_failed", "the connection ended before the whole body arrived")
                return b"".join(chunks)
            except FetchError:
                raise
            except (socket.timeout, TimeoutError):
                raise ConnectionFailure(url, "timeout", f"no complete answer within {limits.total_timeout:g} s") from None
            except (OSError, http.client.HTTPException, ValueError):
                # reset, closed early, garbled HTTP, truncated body
                if time.monotonic() >= deadline:
                    raise ConnectionFailure(url, "timeout", f"no complete answer within {limits.total_timeout:g} s") from None
                raise ConnectionFailure(url, "connection_failed", "the connection ended without a complete HTTP answer") from None
        finally:
            watchdog.cancel()
            conn.close()
    raise FetchError(url, "http_status", f"more than {limits.max_redirects} redirects")


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@dataclass
class _Cached:
    value: object  # Crl, or (OcspResponse, nonce)
    size: int  # estimated resident bytes of the object (resident_size), counted against max_cached_bytes
    fresh_until: dt.datetime  # real time: fetch again from then on (nextUpdate, but at least min_fresh after the fetch)
    usable_until: dt.datetime  # real time, nextUpdate + grace (at least fresh_until): never handed out from then on


@dataclass(frozen=True)
class Fetched:
    value: object | None
    stale: bool = False  # served from the cache after a failed refresh
    error: str | None = None


@dataclass(frozen=True)
class _Failure:
    message: str  # the original FetchError's message
    until: float  # on the source's clock (monotonic): fetch again from then on
    retry_after: dt.datetime  # the same moment in UTC, for the message only

    def remembered(self) -> str:
        return f"{self.message} (remembered failure, retry after {self.retry_after:%H:%M:%S}Z)"


class _Flight:
    """One fetch in progress; concurrent requests for its key wait for it."""

    __slots__ = ("done", "value", "error", "connection_failed")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object | None = None  # set on success
        self.error: str | None = None  # set on a FetchError; both None: the fetch raised something else
        self.connection_failed = False  # the FetchError was a ConnectionFailure: says nothing about the object


Fetch = Callable[..., bytes]

_MAX_ANSWERING = 4096  # OCSP URLs remembered as answering (a few per CA in practice)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class RevocationSource:
    """Fetching, caching RevocationInfoProvider for the service. Thread-safe;
    one instance is shared by all requests."""

    def __init__(
        self,
        limits: FetchLimits = FetchLimits(),
        *,
        grace: dt.timedelta = dt.timedelta(hours=12),
        default_ttl: dt.timedelta = dt.timedelta(hours=1),
        # Every fetched object counts as fresh for at least this long after
        # the fetch, whatever its nextUpdate says. A CA that publishes late
        # (its server still serves an object past its nextUpdate) must not
        # turn into one fetch per verification; a minute is short enough that
        # a republished CRL or OCSP response is picked up soon. Only the
        # refetch decision: pki still judges the object against the
        # validation time (stale, out of date) exactly as without it.
        min_fresh: dt.timedelta = dt.timedelta(seconds=60),
        use_ocsp_nonce: bool = True,
        fetch: Fetch = http_fetch,
        # How long a failed fetch is remembered. 30 s: long against the fetch
        # timeouts (3 s connect, 10 s total), so a dead server costs one
        # timeout per URL every 30 s instead of one per verification; short
        # against CRL/OCSP lifetimes (hours) and outage repairs, so a server
        # that comes back is used again within half a minute. 0 disables it.
        failure_ttl: dt.timedelta = dt.timedelta(seconds=30),
        max_failures: int = 4096,  # remembered failures kept; the oldest go first
        max_in_flight: int = 1024,  # keys with a shared fetch in progress; beyond it, fetches are not shared
        # Fetched objects kept (CRLs by URL, OCSP responses by certificate and
        # URL); the least recently used go first. 0 keeps none.
        max_cached: int = 4096,
        # ... and their total estimated resident size (resident_size: a
        # parsed CRL is about 18 times its DER, its index counted per entry).
        # The least recently used go first until the total is within it; an
        # object larger than the whole budget is not cached at all.
        max_cached_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,  # measures failure_ttl (not the validation time)
        # The real time (aware, UTC): decides when a cached object is due for a
        # refresh and how long it is handed out after a failed one. Never the
        # validation time a request asks about.
        wall_clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.limits = limits
        self.grace = grace
        self.default_ttl = default_ttl  # for objects without nextUpdate
        self.min_fresh = min_fresh
        self.use_ocsp_nonce = use_ocsp_nonce
        self.failure_ttl = failure_ttl
        self.max_failures = max_failures
        self.max_in_flight = max_in_flight
        self.max_cached = max_cached
        self.max_cached_bytes = max_cached_bytes
        self._fetch = fetch
        self._clock = clock
        self._wall_clock = wall_clock
        # Least recently used first.
        self._cache: OrderedDict[tuple, _Cached] = OrderedDict()
        self._cached_bytes = 0  # sum of the entries' sizes
        # Insertion order is expiry order (one TTL, a monotonic clock), so
        # expired entries and the overflow are both at the front.
        self._failures: OrderedDict[tuple, _Failure] = OrderedDict()
        self._in_flight: dict[tuple, _Flight] = {}
        # OCSP URLs (url keys) that answered (anything but a ConnectionFailure)
        # since their last connection failure, least recently answered first,
        # at most _MAX_ANSWERING; and, for a URL not among them, the fetch that
        # is probing it (one of _in_flight), which other certificates' first
        # requests to that URL wait for.
        self._answering: OrderedDict[tuple, None] = OrderedDict()
        self._probes: dict[tuple, _Flight] = {}
        self._lock = threading.Lock()
        # Called with ("crl" | "ocsp", connection failed) after each failed
        # fetch (not a remembered one), outside the lock: the service's metrics.
        self.on_fetch_failure: Callable[[str, bool], None] | None = None

    # -- RevocationInfoProvider ---------------------------------------------

    def revocation_info(self, certificate: Certificate, issuer: Certificate, at: dt.datetime) -> RevocationInfo:
        """The CRLs and OCSP responses for ``certificate``. Which objects
        (and errors) come back does not depend on ``at``: pki judges them
        against it. Under ``no_fetch()`` raises ``FetchNeeded`` when any of
        them would need a fetch."""
        crls: list[Crl] = []
        ocsp: list = []
        errors: list[str] = []
        for url in certificate.ocsp_urls:
            got = self.ocsp(url, certificate, issuer)
            if got.value is not None:
                ocsp.append(got.value)
                if got.stale and got.error:
                    errors.append(f"served from cache: {got.error}")
                break
            errors.append(got.error or f"{url}: no response")
        for url in _crl_urls(certificate):
            got = self.crl(url)
            if isinstance(got.value, Crl):  # crl() answers a Crl or None
                crls.append(got.value)
                if got.stale and got.error:
                    errors.append(f"served from cache: {got.error}")
            else:
                errors.append(got.error or f"{url}: no CRL")
        named = bool(certificate.ocsp_urls) or bool(_crl_urls(certificate))
        return RevocationInfo(crls=tuple(crls), ocsp=tuple(ocsp), grace=self.grace, errors=tuple(errors), sources_named=named)

    # -- CRLs -----------------------------------------------------------------

    def crl(self, url: str, at: dt.datetime | None = None) -> Fetched:
        """The CRL at ``url``, cached or fetched. ``at`` (a validation time)
        is accepted and ignored: freshness is decided by the real time."""
        return self._cached_or_fetch(("crl", url), lambda: self._load_crl(url))

    def _load_crl(self, url: str) -> tuple[Crl, dt.datetime | None]:
        data = self._fetch(url, max_bytes=self.limits.max_crl_bytes, limits=self.limits)
        try:
            crl = _parse_crl_any(data)
        except InputError:
            raise FetchError(url, "malformed", "malformed CRL (not a CRL that can be parsed)") from None
        return crl, crl.next_update

    # -- OCSP -----------------------------------------------------------------

    def ocsp(self, url: str, certificate: Certificate, issuer: Certificate, at: dt.datetime | None = None) -> Fetched:
        """The OCSP response about ``certificate`` from ``url``, cached or
        fetched; ``at`` is ignored as in ``crl``."""
        key = ("ocsp", url, certificate.issuer_key, certificate.serial, issuer.spki)
        return self._cached_or_fetch(key, lambda: self._load_ocsp(url, certificate, issuer), url_key=("ocsp-url", url))

    def _load_ocsp(self, url: str, certificate: Certificate, issuer: Certificate):
        nonce = os.urandom(16) if self.use_ocsp_nonce else None
        try:
            request = build_ocsp_request(certificate, issuer, nonce)
        except ValueError:
            raise FetchError(url, "malformed", "cannot build an OCSP request for this certificate") from None
        data = self._fetch(url, body=request, content_type="application/ocsp-request",
                           max_bytes=self.limits.max_ocsp_bytes, limits=self.limits)
        try:
            resp = parse_ocsp_response(data)
        except InputError:
            raise FetchError(url, "malformed", "malformed OCSP response (not one that can be parsed)") from None
        if resp.status != "successful":
            raise FetchError(url, "ocsp_status", f"OCSP responder answered {resp.status}")
        next_updates = [s.next_update for s in resp.responses if s.serial == certificate.serial and s.next_update]
        return (resp, nonce), (min(next_updates) if next_updates else None)

    # -- cache ----------------------------------------------------------------

    def _cached_or_fetch(self, key: tuple, load, url_key: tuple | None = None) -> Fetched:
        """A fresh cached object; else a remembered failure (for ``key``, or
        a connection failure for ``url_key``); else the outcome of one fetch,
        shared with concurrent requests for the same key. A failure (fetched,
        shared or remembered) still serves a cached object within its grace,
        as stale.

        Under ``no_fetch()`` the first two answers are given the same way,
        and ``FetchNeeded`` is raised where a fetch (or waiting for one)
        would follow; in particular a cached copy past its nextUpdate is
        served, stale, only alongside a remembered failure, since without one
        the online path would try a fetch first and its answer is not known."""
        offline = fetching_disabled()
        # A fetch ends within the limits' total timeout (the watchdog), plus
        # parsing; this bound on waiting for another request's fetch guards
        # against an injected fetch that hangs.
        wait = self.limits.total_timeout + self.limits.connect_timeout + 5.0
        while True:
            flight, leader, probe = None, False, None
            with self._lock:
                wall = self._wall_clock()
                cached = self._lookup(key, wall)
                if cached is not None and wall < cached.fresh_until:
                    return Fetched(cached.value)
                failure = self._live_failure(key)
                if failure is None and url_key is not None:
                    failure = self._live_failure(url_key)
                if failure is None and not offline:
                    flight = self._in_flight.get(key)
                    # The OCSP responder's URL key when no answer from it is known yet.
                    unknown_url = url_key if url_key is not None and url_key not in self._answering else None
                    if flight is None and unknown_url is not None:
                        probe = self._probes.get(unknown_url)
                    if flight is None and probe is None and len(self._in_flight) < self.max_in_flight:
                        flight = self._in_flight[key] = _Flight()
                        leader = True
                        if unknown_url is not None:
                            self._probes[unknown_url] = flight
            if failure is not None:
                return self._failed(cached, wall, failure.remembered())
            if offline:
                raise FetchNeeded(f"{key[1]}: a fetch is needed (nothing fresh cached, no failure remembered)")
            if probe is not None:
                # Another certificate's request is the first to this OCSP
                # responder: wait for its outcome (it never waits for us).
                if not probe.done.wait(wait):
                    return self._failed(cached, self._wall_clock(),
                                        f"{key[1]}: timeout: a concurrent request to this responder did not finish within {wait:g} s")
                if probe.connection_failed:
                    # Not reachable: answer from its failure, remembered for
                    # the URL (or, with nothing remembered, as it was).
                    if url_key is None or probe.error is None:  # probes exist for a url_key; a failed one has its error
                        raise RuntimeError("an OCSP probe failed without its URL key or error")
                    with self._lock:
                        wall = self._wall_clock()
                        cached = self._lookup(key, wall)
                        failure = self._live_failure(url_key)
                    return self._failed(cached, wall, failure.remembered() if failure is not None else probe.error)
                continue  # it answered (or the probe raised): ask about our certificate
            if flight is None or leader:
                return self._fetch_and_store(key, url_key, load, cached, flight)
            # Another request is fetching this key: wait for its outcome.
            if not flight.done.wait(wait):
                return self._failed(cached, self._wall_clock(), f"{key[1]}: timeout: a concurrent fetch did not finish within {wait:g} s")
            if flight.value is not None:
                return Fetched(flight.value)
            if flight.error is not None:
                with self._lock:
                    wall = self._wall_clock()
                    cached = self._lookup(key, wall)
                return self._failed(cached, wall, flight.error)
            # The fetch raised something other than FetchError (which went to
            # its own caller): try again, most likely fetching ourselves.

    def _fetch_and_store(self, key: tuple, url_key: tuple | None, load, cached: _Cached | None,
                         flight: _Flight | None) -> Fetched:
        try:
            try:
                value, next_update = load()
            except FetchError as exc:
                error = str(exc)
                connection_failed = isinstance(exc, ConnectionFailure)
                with self._lock:
                    self._remember_failure(key, error)
                    if url_key is not None:
                        if connection_failed:
                            self._remember_failure(url_key, error)
                            self._answering.pop(url_key, None)
                        else:
                            self._mark_answering(url_key)  # an answer about this certificate
                if flight is not None:
                    flight.error = error
                    flight.connection_failed = connection_failed
                if self.on_fetch_failure is not None:
                    self.on_fetch_failure(key[0], connection_failed)
                return self._failed(cached, self._wall_clock(), error)
            with self._lock:
                wall = self._wall_clock()
                due = next_update if next_update is not None else wall + self.default_ttl
                fresh_until = max(due, wall + self.min_fresh)
                # Handed out after a failed refresh until its nextUpdate plus
                # grace, and in any case while it counts as fresh.
                self._store(key, _Cached(value, resident_size(value), fresh_until, max(due + self.grace, fresh_until)))
                self._failures.pop(key, None)
                if url_key is not None:
                    self._failures.pop(url_key, None)  # the server answers again
                    self._mark_answering(url_key)
            if flight is not None:
                flight.value = value
            return Fetched(value)
        finally:
            if flight is not None:
                with self._lock:
                    if self._in_flight.get(key) is flight:
                        del self._in_flight[key]
                    if url_key is not None and self._probes.get(url_key) is flight:
                        del self._probes[url_key]
                flight.done.set()

    @staticmethod
    def _failed(cached: _Cached | None, wall: dt.datetime, error: str) -> Fetched:
        if cached is not None and wall < cached.usable_until:
            return Fetched(cached.value, stale=True, error=error)
        return Fetched(None, error=error)

    def _lookup(self, key: tuple, wall: dt.datetime) -> _Cached | None:
        """The cached entry for ``key`` unless it is past use (then dropped),
        marked as recently used. Under the lock."""
        cached = self._cache.get(key)
        if cached is None:
            return None
        if wall >= cached.usable_until:
            self._drop(key)
            return None
        self._cache.move_to_end(key)
        return cached

    def _store(self, key: tuple, entry: _Cached) -> None:
        """Under the lock. Replaces the entry for ``key`` (an older copy is
        dropped even when the new one is not kept), then drops the least
        recently used beyond ``max_cached`` entries or ``max_cached_bytes``.
        An entry larger than the whole byte budget is not kept, and costs
        no other entry its place."""
        self._drop(key)
        if self.max_cached <= 0 or entry.size > self.max_cached_bytes:
            return
        cache = self._cache
        cache[key] = entry
        self._cached_bytes += entry.size
        while len(cache) > self.max_cached or self._cached_bytes > self.max_cached_bytes:
            _, dropped = cache.popitem(last=False)
            self._cached_bytes -= dropped.size

    def _drop(self, key: tuple) -> None:
        """Under the lock."""
        entry = self._cache.pop(key, None)
        if entry is not None:
            self._cached_bytes -= entry.size

    def _mark_answering(self, url_key: tuple) -> None:
        """Under the lock: ``url_key`` answered; keeps at most ``_MAX_ANSWERING``
        (one forgotten is probed again: one request at a time until it answers)."""
        answering = self._answering
        answering[url_key] = None
        answering.move_to_end(url_key)
        while len(answering) > _MAX_ANSWERING:
            answering.popitem(last=False)

    def _live_failure(self, key: tuple) -> _Failure | None:
        """The remembered failure for ``key`` if it has not expired. Under the lock."""
        failure = self._failures.get(key)
        if failure is not None and self._clock() >= failure.until:
            del self._failures[key]
            return None
        return failure

    def _remember_failure(self, key: tuple, message: str) -> None:
        """Under the lock. Drops expired entries and the oldest beyond ``max_failures``."""
        ttl = self.failure_ttl.total_seconds()
        if ttl <= 0 or self.max_failures <= 0:
            return
        now = self._clock()
        failures = self._failures
        failures.pop(key, None)
        failures[key] = _Failure(message, now + ttl, self._wall_clock() + self.failure_ttl)
        while failures:
            oldest = next(iter(failures.values()))
            if len(failures) <= self.max_failures and oldest.until > now:
                break
            failures.popitem(last=False)


def resident_size(value: Crl | tuple[OcspResponse, bytes | None]) -> int:
    """The estimated resident bytes of a cached object: a Crl (its DER, its
    TBS and its index), or (OcspResponse, nonce) (its DER: a response
    holds a few certificates at most, its parsed form is of the same order)."""
    if isinstance(value, Crl):
        return len(value.der) + len(value.tbs) + CRL_ENTRY_BYTES * len(value.entries)
    obj = value[0] if isinstance(value, tuple) else value
    return len(obj.der)


def _crl_urls(cert: Certificate) -> list[str]:
    urls = []
    for dp in cert.crl_distribution_points:
        for g in dp.full_name or ():
            if isinstance(g, x509.UniformResourceIdentifier) and g.value.startswith("http://"):
                urls.append(g.value)
                break  # one URL per distribution point
    return urls


def _parse_crl_any(data: bytes) -> Crl:
    if data.lstrip().startswith(b"-----BEGIN"):
        from pki.crl import load_crls

        crls = load_crls(data)
        if len(crls) != 1:
            raise InputError("expected one CRL")
        return crls[0]
    return parse_crl(data)


def build_ocsp_request(certificate: Certificate, issuer: Certificate, nonce: bytes | None) -> bytes:
    """DER OCSPRequest for one certificate (SHA-1 CertID, RFC 5019)."""
    b = x509_ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_der_x509_certificate(certificate.der), x509.load_der_x509_certificate(issuer.der), hashes.SHA1()
    )
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)
