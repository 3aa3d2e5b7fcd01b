"""Negative caching and single flight in the service's revocation source,
against real HTTP servers on 127.0.0.1 (the helpers of
test_revocation_source): a failed fetch is remembered for ``failure_ttl``,
concurrent requests for one URL share one fetch, and the failure map stays
bounded; an OCSP responder that cannot be reached is remembered for its URL,
so other certificates on it do not ask again, and concurrent first requests
to a responder nothing is known about wait for one of them to find out.
Nothing here asserts on durations: the tests count the requests (or
connections) the server received, or the fetches made, and the failure TTL
runs on an injected clock."""
from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from bridge.revocation_source import FetchLimits, RevocationSource, http_fetch
from pki.certificate import parse_certificate
from tests.pki.test_revocation import NOW, der

from .test_revocation_source import (  # noqa: F401 (fixtures)
    FAST,
    WallClock,
    cas,
    error500,
    leaf_for,
    ocsp_route,
    send,
    server,
    status_of,
    verifier,
)

TTL = dt.timedelta(seconds=30)
REMEMBERED = re.compile(r"\(remembered failure, retry after \d\d:\d\d:\d\dZ\)")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def counted(route):
    """``route`` that also records each request it receives in ``.hits``."""
    hits: list[str] = []

    def wrapper(handler):
        hits.append(handler.path)
        route(handler)

    wrapper.hits = hits
    return wrapper


def hang_up(handler):
    """Reads the request and closes the connection without an answer."""
    handler.close_connection = True


def slowly(route, seconds=0.3):
    def wrapper(handler):
        time.sleep(seconds)
        route(handler)
    return wrapper


def refused_url() -> str:
    """An http URL on a 127.0.0.1 port nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/sub.crl"


def info_of(source, sub, leaf, at=NOW):
    return source.revocation_info(parse_certificate(der(leaf)), parse_certificate(der(sub.cert)), at)


# -- a failure is remembered for the TTL ----------------------------------------

@pytest.mark.parametrize("failure, reason", [(error500, "HTTP 500"), (hang_up, "connection_failed")])
def test_failure_is_fetched_once_within_the_ttl(server, cas, failure, reason):
    root, sub = cas
    route = server.routes["/sub.crl"] = counted(failure)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    source = RevocationSource(FAST, failure_ttl=TTL, clock=Clock())
    # Two Verifiers, so the second verification is not answered by the first one's result cache.
    first = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=source)
    second = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=source)
    assert len(route.hits) == 1
    assert first.error.code == second.error.code == "revocation_unknown"
    assert reason in first.error.message and not REMEMBERED.search(first.error.message)
    assert reason in second.error.message and REMEMBERED.search(second.error.message)
    # The provider's own answer reads the same way, and still makes no request.
    info = info_of(source, sub, leaf)
    assert info.crls == () and len(info.errors) == 1
    assert reason in info.errors[0] and REMEMBERED.search(info.errors[0])
    assert len(route.hits) == 1


def test_after_the_ttl_the_server_is_asked_again(server, cas):
    _, sub = cas
    clock = Clock()
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    down = server.routes["/sub.crl"] = counted(error500)
    source = RevocationSource(FAST, failure_ttl=TTL, clock=clock, wall_clock=WallClock())
    assert status_of(source, sub, leaf).state == "unknown"
    up = server.routes["/sub.crl"] = counted(lambda h: send(h, sub.crl([leaf.serial_number])))  # the server is repaired
    clock.t += 29
    still = status_of(source, sub, leaf)
    assert still.state == "unknown" and "HTTP 500" in still.detail and REMEMBERED.search(still.detail)
    assert (len(down.hits), len(up.hits)) == (1, 0)
    clock.t += 2
    assert status_of(source, sub, leaf).state == "revoked"
    assert (len(down.hits), len(up.hits)) == (1, 1)
    # From now on the CRL comes from the (positive) cache.
    assert status_of(source, sub, leaf).state == "revoked"
    assert len(up.hits) == 1


def test_refused_connection_is_remembered(cas):
    _, sub = cas
    fetches: list[str] = []

    def fetch(url, **kw):  # the real client, counted
        fetches.append(url)
        return http_fetch(url, **kw)

    clock = Clock()
    leaf = leaf_for(sub, crl_url=refused_url())
    source = RevocationSource(FAST, failure_ttl=TTL, clock=clock, fetch=fetch)
    first, second = status_of(source, sub, leaf), status_of(source, sub, leaf)
    assert first.state == second.state == "unknown"
    assert "could not connect" in first.detail and "could not connect" in second.detail
    assert REMEMBERED.search(second.detail)
    assert len(fetches) == 1
    clock.t += TTL.total_seconds()
    assert status_of(source, sub, leaf).state == "unknown"
    assert len(fetches) == 2


def test_ocsp_failure_is_remembered(server, cas):
    _, sub = cas
    route = server.routes["/ocsp"] = counted(error500)
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    source = RevocationSource(FAST, failure_ttl=TTL, clock=Clock())
    for _ in range(3):
        status = status_of(source, sub, leaf)
        assert status.state == "unknown" and "HTTP 500" in status.detail
    assert REMEMBERED.search(status.detail)
    assert len(route.hits) == 1


def test_zero_ttl_remembers_nothing(server, cas):
    _, sub = cas
    route = server.routes["/sub.crl"] = counted(error500)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    source = RevocationSource(FAST, failure_ttl=dt.timedelta(0), clock=Clock())
    status_of(source, sub, leaf)
    assert "HTTP 500" in status_of(source, sub, leaf).detail
    assert len(route.hits) == 2


def test_stale_copy_is_still_served_during_a_remembered_failure(server, cas):
    _, sub = cas
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    up = server.routes["/sub.crl"] = counted(lambda h: send(h, sub.crl([], next_update=NOW + dt.timedelta(hours=1))))
    wall = WallClock()
    source = RevocationSource(FAST, grace=dt.timedelta(hours=6), failure_ttl=TTL, clock=Clock(), wall_clock=wall)
    assert status_of(source, sub, leaf).state == "good"
    down = server.routes["/sub.crl"] = counted(error500)
    wall.t = NOW + dt.timedelta(hours=2)
    first = status_of(source, sub, leaf, wall.t)
    wall.t = NOW + dt.timedelta(hours=3)
    second = status_of(source, sub, leaf, wall.t)
    assert first.state == second.state == "stale"
    assert first.source == second.source == "CRL number 1 of CN=Fetch Sub,O=Revocation Tests"
    assert "served from cache" in second.detail and "HTTP 500" in second.detail and REMEMBERED.search(second.detail)
    assert (len(up.hits), len(down.hits)) == (1, 1)
    # Past the grace the remembered failure answers on its own.
    wall.t = NOW + dt.timedelta(hours=8)
    too_late = status_of(source, sub, leaf, wall.t)
    assert too_late.state == "unknown" and "HTTP 500" in too_late.detail
    assert len(down.hits) == 1


# -- single flight ----------------------------------------------------------------

def _ask_at_once(n, ask):
    return _all_at_once([ask] * n)


def _all_at_once(asks):
    """Runs the callables in threads released together; their results."""
    n = len(asks)
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        results[i] = asks[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_concurrent_requests_share_one_fetch(server, cas):
    _, sub = cas
    route = server.routes["/sub.crl"] = counted(slowly(lambda h: send(h, sub.crl([]))))
    url = server.url + "/sub.crl"
    source = RevocationSource(FAST, failure_ttl=TTL, clock=Clock())
    results = _ask_at_once(8, lambda: source.crl(url, NOW))
    assert len(route.hits) == 1
    assert all(r.value is not None and r.error is None for r in results)
    assert len({id(r.value) for r in results}) == 1  # one parsed CRL for all
    assert source._in_flight == {}


def test_concurrent_requests_share_one_failure(server, cas):
    _, sub = cas
    route = server.routes["/sub.crl"] = counted(slowly(error500))
    url = server.url + "/sub.crl"
    source = RevocationSource(FAST, failure_ttl=TTL, clock=Clock())
    results = _ask_at_once(8, lambda: source.crl(url, NOW))
    assert len(route.hits) == 1
    assert all(r.value is None and "HTTP 500" in r.error for r in results)
    assert source._in_flight == {}


# -- bounds -------------------------------------------------------------------------

def test_failure_map_stays_bounded(server):
    clock = Clock()
    source = RevocationSource(FAST, failure_ttl=TTL, max_failures=16, clock=clock)
    routes = [counted(error500) for _ in range(100)]
    for i, route in enumerate(routes):
        server.routes[f"/{i}.crl"] = route
        assert "HTTP 500" in source.crl(f"{server.url}/{i}.crl", NOW).error
        assert len(source._failures) <= 16
    assert len(source._failures) == 16
    # The newest failures are remembered, the oldest were dropped.
    assert REMEMBERED.search(source.crl(f"{server.url}/99.crl", NOW).error)
    assert len(routes[99].hits) == 1
    assert not REMEMBERED.search(source.crl(f"{server.url}/0.crl", NOW).error)
    assert len(routes[0].hits) == 2
    # Expired failures are dropped when the next one is recorded.
    clock.t += TTL.total_seconds()
    source.crl(f"{server.url}/1.crl", NOW)
    assert len(source._failures) == 1


# -- a dead OCSP responder is remembered for its URL -----------------------------

def _two_leaves(sub, url):
    return leaf_for(sub, ocsp_url=url), leaf_for(sub, ocsp_url=url)


@pytest.mark.parametrize("failure, reason", [(error500, "HTTP 500"), (hang_up, "connection_failed")])
def test_dead_ocsp_responder_costs_one_request_for_all_certificates(server, cas, failure, reason):
    _, sub = cas
    route = server.routes["/ocsp"] = counted(failure)
    first_leaf, second_leaf = _two_leaves(sub, server.url + "/ocsp")
    source = RevocationSource(FAST, failure_ttl=TTL, clock=Clock())
    first, second = status_of(source, sub, first_leaf), status_of(source, sub, second_leaf)
    assert first.state == second.state == "unknown"
    assert reason in first.detail and not REMEMBERED.search(first.detail)
    assert reason in second.detail and REMEMBERED.search(second.detail)
    assert len(route.hits) == 1


def test_refused_ocsp_responder_is_remembered_for_its_url(cas):
    _, sub = cas
    fetches: list[str] = []

    def fetch(url, **kw):
        fetches.append(url)
        return http_fetch(url, **kw)

    clock = Clock()
    first_leaf, second_leaf = _two_leaves(sub, refused_url().replace("/sub.crl", "/ocsp"))
    source = RevocationSource(FAST, failure_ttl=TTL, clock=clock, fetch=fetch)
    assert "could not connect" in status_of(source, sub, first_leaf).detail
    second = status_of(source, sub, second_leaf)
    assert "could not connect" in second.detail and REMEMBERED.search(second.detail)
    assert len(fetches) == 1
    clock.t += TTL.total_seconds()  # expired for the URL and the certificate alike
    status_of(source, sub, second_leaf)
    assert len(fetches) == 2


def test_per_certificate_ocsp_answers_are_not_spread(server, cas):
    """An OCSP "unauthorized" (or any answer the responder did give) is about
    the certificate asked for: another certificate still asks."""
    _, sub = cas
    unauthorized = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    body = unauthorized.public_bytes(serialization.Encoding.DER)
    route = server.routes["/ocsp"] = counted(lambda h: send(h, body, "application/ocsp-response"))
    first_leaf, second_leaf = _two_leaves(sub, server.url + "/ocsp")
    source = RevocationSource(FAST, failure_ttl=TTL, clock=Clock())
    first, second = status_of(source, sub, first_leaf), status_of(source, sub, second_leaf)
    assert "answered unauthorized" in first.detail and "answered unauthorized" in second.detail
    assert not REMEMBERED.search(second.detail)
    assert len(route.hits) == 2
    assert REMEMBERED.search(status_of(source, sub, first_leaf).detail)  # still remembered for its certificate
    assert len(route.hits) == 2


def test_ocsp_url_failure_expires_and_the_responder_is_used_again(server, cas):
    _, sub = cas
    clock = Clock()
    down = server.routes["/ocsp"] = counted(error500)
    first_leaf, second_leaf = _two_leaves(sub, server.url + "/ocsp")
    source = RevocationSource(FAST, failure_ttl=TTL, clock=clock, wall_clock=WallClock())
    assert status_of(source, sub, first_leaf).state == "unknown"
    hits: list[str] = []
    server.routes["/ocsp"] = ocsp_route(sub, hits=hits)
    clock.t += TTL.total_seconds()
    assert status_of(source, sub, second_leaf).state == "good"
    assert status_of(source, sub, first_leaf).state == "good"
    assert (len(down.hits), len(hits)) == (1, 2)
    assert source._failures == {}


# -- a burst of certificates to an OCSP responder nothing is known about -----------

class Hanging:
    """Accepts TCP connections, counts them, reads nothing and never answers;
    the connections stay open until the test ends."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/ocsp"
        self.connections: list[socket.socket] = []
        self.first = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self.connections.append(conn)
            self.first.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def hanging():
    h = Hanging()
    yield h
    h.close()


def _leaves(sub, url, n):
    return [leaf_for(sub, ocsp_url=url) for _ in range(n)]


@pytest.mark.parametrize("ttl", [TTL, dt.timedelta(0)], ids=["remembered", "ttl-0"])
def test_burst_to_a_dead_responder_makes_one_connection(hanging, cas, ttl):
    """N certificates asked about at once on a responder that accepts and
    never answers: the first request finds out (one timeout), the others
    wait for it and answer from its failure without connecting; with
    failure_ttl 0 (nothing remembered) from the same failure as it was."""
    _, sub = cas
    n = 8
    leaves = _leaves(sub, hanging.url, n)
    source = RevocationSource(FAST, failure_ttl=ttl, clock=Clock())
    results = _all_at_once([lambda leaf=leaf: status_of(source, sub, leaf) for leaf in leaves])
    assert hanging.first.wait(30)
    assert len(hanging.connections) == 1
    assert all(r.state == "unknown" and "no complete answer within 1.5 s" in r.detail for r in results)
    remembered = [bool(REMEMBERED.search(r.detail)) for r in results]
    assert remembered.count(False) == (1 if ttl else n)
    assert source._in_flight == {} and source._probes == {}
    # Afterwards the remembered URL failure answers on its own (with a TTL).
    if ttl:
        assert REMEMBERED.search(status_of(source, sub, leaf_for(sub, ocsp_url=hanging.url)).detail)
        assert len(hanging.connections) == 1


def test_burst_to_a_healthy_responder_asks_for_every_certificate(server, cas):
    """N certificates at once on a responder that answers: one request
    first, then the others side by side (they meet in the responder), each
    for its own certificate's response."""
    _, sub = cas
    n = 8
    hits: list[str] = []
    answer = ocsp_route(sub, hits=hits)
    together = threading.Barrier(n - 1, timeout=10)
    serialized: list[bool] = []

    def route(h):
        if len(hits) > 0:  # not the first request: wait for the other n - 2
            try:
                together.wait()
            except threading.BrokenBarrierError:
                serialized.append(True)
        answer(h)

    server.routes["/ocsp"] = route
    leaves = _leaves(sub, server.url + "/ocsp", n)
    limits = FetchLimits(connect_timeout=5.0, total_timeout=20.0, max_crl_bytes=200_000, max_ocsp_bytes=20_000,
                         allow_private_addresses=True)
    source = RevocationSource(limits, failure_ttl=TTL, clock=Clock(), wall_clock=WallClock())
    results = _all_at_once([lambda leaf=leaf: status_of(source, sub, leaf) for leaf in leaves])
    assert [r.state for r in results] == ["good"] * n
    assert len(hits) == n and not serialized
    assert len(source._cache) == n and source._in_flight == {} and source._probes == {}


def test_burst_after_a_per_certificate_answer_still_asks(server, cas):
    """The first request's answer is about its certificate (an OCSP
    "unauthorized"): the responder is up, so every other certificate asks."""
    _, sub = cas
    n = 4
    unauthorized = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    body = unauthorized.public_bytes(serialization.Encoding.DER)
    route = server.routes["/ocsp"] = counted(slowly(lambda h: send(h, body, "application/ocsp-response"), 0.1))
    leaves = _leaves(sub, server.url + "/ocsp", n)
    source = RevocationSource(FAST, failure_ttl=TTL, clock=Clock())
    results = _all_at_once([lambda leaf=leaf: status_of(source, sub, leaf) for leaf in leaves])
    assert all("answered unauthorized" in r.detail and not REMEMBERED.search(r.detail) for r in results)
    assert len(route.hits) == n


def test_waiting_for_another_certificates_request_is_bounded(cas):
    """A first request that never finishes (an injected fetch that hangs
    past every limit) holds the others back only for the bound, and never
    deadlocks; once it ends the responder is asked again normally."""
    _, sub = cas
    release = threading.Event()
    entered = threading.Event()
    calls: list[str] = []

    def fetch(url, **kw):
        calls.append(url)
        if len(calls) == 1:
            entered.set()
            release.wait(60)
        raise ConnectionRefusedError  # not a FetchError: nothing is remembered

    url = "http://127.0.0.1:9/ocsp"
    first_leaf, second_leaf = _leaves(sub, url, 2)
    limits = FetchLimits(connect_timeout=0.1, total_timeout=0.2, allow_private_addresses=True)
    source = RevocationSource(limits, failure_ttl=TTL, clock=Clock(), fetch=fetch)
    first: list = []
    holder = threading.Thread(target=lambda: first.append(_catch(lambda: status_of(source, sub, first_leaf))))
    holder.start()
    try:
        assert entered.wait(30)
        waited = status_of(source, sub, second_leaf)
        assert waited.state == "unknown" and "a concurrent request to this responder did not finish within 5.3 s" in waited.detail
        assert len(calls) == 1
    finally:
        release.set()
        holder.join(30)
    assert isinstance(first[0], ConnectionRefusedError)
    assert source._in_flight == {} and source._probes == {}
    with pytest.raises(ConnectionRefusedError):
        status_of(source, sub, second_leaf)  # the probe is gone: this one asks itself
    assert len(calls) == 2


def _catch(call):
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 (returned for the test to look at)
        return exc
