"""The service's fetching, caching revocation source against real HTTP
servers on 127.0.0.1: CRLs and OCSP responses made with cryptography's
builders, a server that never answers, one that streams an endless body,
redirects, malformed bodies, and the cache: its grace period, its bound, and
its clock (the real time, injected here, never the validation time). Time is
bounded by the client's own timeouts; nothing here asserts on durations."""
from __future__ import annotations

import datetime as dt
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bridge.revocation_source import FetchError, FetchLimits, RevocationSource, http_fetch
from pki import Verifier
from pki.algorithms import AlgorithmRegistry
from pki.budget import Budget
from pki.certificate import parse_certificate
from pki.revocation import ProvidedChecker, RevocationRequest
from pki.signatures import SignatureVerifier
from tests.pki.test_revocation import NOW, Ca, der

# The test servers listen on 127.0.0.1: loopback fetches are allowed explicitly
# (refused by default; see test_revocation_source_safety).
FAST = FetchLimits(connect_timeout=1.0, total_timeout=1.5, max_crl_bytes=200_000, max_ocsp_bytes=20_000, max_redirects=2,
                   allow_private_addresses=True)


class WallClock:
    """The real time as a RevocationSource sees it (``wall_clock``), moved by
    hand; it starts at the tests' NOW, which the CRLs and OCSP responses made
    here are current at."""

    def __init__(self, t: dt.datetime = NOW) -> None:
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t


class Server:
    """A stdlib HTTP server on a free port; routes map a path to a function
    (handler) -> None, replaceable while it runs."""

    def __init__(self) -> None:
        self.routes: dict = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def _dispatch(self):
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _dispatch

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(handler, body: bytes, content_type="application/octet-stream", status=200):
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def endless(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/pkix-crl")
    handler.end_headers()
    block = b"\x00" * 65536
    while True:
        handler.wfile.write(block)


def error500(handler):
    send(handler, b"down", "text/plain", 500)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def silent():
    """Accepts TCP connections (in the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture(scope="module")
def cas():
    root = Ca("Fetch Root")
    sub = Ca("Fetch Sub", root)
    return root, sub


def leaf_for(sub: Ca, *, crl_url=None, ocsp_url=None):
    dps = [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)] if crl_url else None
    aia = [x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))] if ocsp_url else None
    return sub.issue(dps=dps, aia=aia)


def verifier(root, sub):
    # The sub-CA's status comes from the root CRL given offline.
    return Verifier([der(root.cert)], [der(sub.cert)], [root.crl()])


def status_of(source, sub, leaf, at=NOW):
    path = (parse_certificate(der(leaf)), parse_certificate(der(sub.cert)))
    request = RevocationRequest(path, 0, path[1].spki, None, at, Budget())
    return ProvidedChecker(source, SignatureVerifier(AlgorithmRegistry())).check(request)


def ocsp_route(sub: Ca, status=ocsp.OCSPCertStatus.GOOD, *, echo_nonce=True, next_update=dt.timedelta(hours=6), hits=None):
    """An OCSP responder signing with the sub-CA's key; ``next_update`` None
    leaves it out. ``hits``: a list each request is appended to."""
    def route(handler):
        if hits is not None:
            hits.append(handler.path)
        length = int(handler.headers.get("Content-Length", 0))
        req = ocsp.load_der_ocsp_request(handler.rfile.read(length))
        b = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=req.issuer_name_hash, issuer_key_hash=req.issuer_key_hash, serial_number=req.serial_number,
            algorithm=req.hash_algorithm, cert_status=status, this_update=NOW - dt.timedelta(minutes=30),
            next_update=NOW + next_update if next_update is not None else None, revocation_time=NOW - dt.timedelta(days=1) if status == ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, sub.cert)
        if echo_nonce:
            for ext in req.extensions:
                if isinstance(ext.value, x509.OCSPNonce):
                    b = b.add_extension(ext.value, critical=False)
        send(handler, b.sign(sub.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER), "application/ocsp-response")
    return route


# -- CRLs ---------------------------------------------------------------------

def test_crl_fetched_from_the_distribution_point(server, cas):
    root, sub = cas
    server.routes["/sub.crl"] = lambda h: send(h, sub.crl([]), "application/pkix-crl")
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.valid, r.to_dict()
    assert r.to_dict()["path"][0]["revocation_source"] == "CRL number 1 of CN=Fetch Sub,O=Revocation Tests"


def test_revoked_by_fetched_crl(server, cas):
    root, sub = cas
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    server.routes["/sub.crl"] = lambda h: send(h, sub.crl([leaf.serial_number]))
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.error.code == "revoked"


def test_server_that_never_answers(silent, cas):
    root, sub = cas
    leaf = leaf_for(sub, crl_url=silent + "/sub.crl")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.error.code == "revocation_unknown"
    assert "no complete answer within 1.5 s" in r.error.message


def test_endless_body_stops_at_the_cap(server, cas):
    root, sub = cas
    server.routes["/big.crl"] = endless
    leaf = leaf_for(sub, crl_url=server.url + "/big.crl")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.error.code == "revocation_unknown"
    assert "exceeds the limit of 200000 bytes" in r.error.message


def test_declared_length_over_the_cap_is_refused(server):
    server.routes["/huge"] = lambda h: send(h, b"x" * 300_000)
    with pytest.raises(FetchError, match="300000 bytes exceeds the limit of 200000"):
        http_fetch(server.url + "/huge", max_bytes=200_000, limits=FAST)


def test_redirects_are_followed_and_limited(server, cas):
    _, sub = cas
    body = sub.crl([])
    server.routes["/crl"] = lambda h: send(h, body)

    def redirect(to):
        def route(h):
            h.send_response(302)
            h.send_header("Location", to)
            h.send_header("Content-Length", "0")
            h.end_headers()
        return route

    server.routes["/moved"] = redirect("/crl")
    assert http_fetch(server.url + "/moved", max_bytes=10**6, limits=FAST) == body
    server.routes["/loop"] = redirect("/loop")
    with pytest.raises(FetchError, match="more than 2 redirects"):
        http_fetch(server.url + "/loop", max_bytes=10**6, limits=FAST)
    server.routes["/elsewhere"] = redirect("https://example.invalid/crl")
    with pytest.raises(FetchError, match="only http:// URLs"):
        http_fetch(server.url + "/elsewhere", max_bytes=10**6, limits=FAST)


def test_malformed_crl_is_unknown_with_reason(server, cas):
    root, sub = cas
    server.routes["/bad.crl"] = lambda h: send(h, b"\x30\x82\x01\x00 definitely not a CRL")
    leaf = leaf_for(sub, crl_url=server.url + "/bad.crl")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.error.code == "revocation_unknown"
    assert "malformed CRL" in r.error.message


def test_http_error_is_unknown_with_reason(server, cas):
    root, sub = cas
    server.routes["/sub.crl"] = error500
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.error.code == "revocation_unknown"
    assert "HTTP 500" in r.error.message


def test_cache_serves_until_next_update_then_stale_within_grace(server, cas):
    _, sub = cas
    hits = []

    def route(h):
        hits.append(1)
        send(h, sub.crl([], next_update=NOW + dt.timedelta(hours=1)))

    server.routes["/sub.crl"] = route
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    wall = WallClock()
    source = RevocationSource(FAST, grace=dt.timedelta(hours=6), wall_clock=wall)
    assert status_of(source, sub, leaf).state == "good"
    wall.t = NOW + dt.timedelta(minutes=30)
    assert status_of(source, sub, leaf, wall.t).state == "good"
    assert len(hits) == 1  # the second check was served from the cache
    server.routes["/sub.crl"] = error500  # the CRL server goes down
    wall.t = NOW + dt.timedelta(hours=2)
    later = status_of(source, sub, leaf, wall.t)
    assert later.state == "stale"
    assert later.source == "CRL number 1 of CN=Fetch Sub,O=Revocation Tests"
    assert "served from cache" in later.detail and "HTTP 500" in later.detail
    wall.t = NOW + dt.timedelta(hours=8)
    too_late = status_of(source, sub, leaf, wall.t)
    assert too_late.state == "unknown"
    assert "HTTP 500" in too_late.detail


def test_stale_cache_still_reports_a_revocation(server, cas):
    _, sub = cas
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    server.routes["/sub.crl"] = lambda h: send(h, sub.crl([leaf.serial_number], next_update=NOW + dt.timedelta(hours=1)))
    wall = WallClock()
    source = RevocationSource(FAST, grace=dt.timedelta(hours=6), wall_clock=wall)
    assert status_of(source, sub, leaf).state == "revoked"
    server.routes["/sub.crl"] = error500
    wall.t = NOW + dt.timedelta(hours=2)
    assert status_of(source, sub, leaf, wall.t).state == "revoked"


def test_certificate_without_sources(cas):
    _, sub = cas
    status = status_of(RevocationSource(FAST), sub, sub.issue())
    assert status.state == "not_checked"
    assert "names no CRL distribution point or OCSP responder" in status.detail


def test_service_modes_for_a_certificate_without_sources(cas):
    """INTERFACE.md: in the service's auto mode a certificate that names no
    source is not checked (and the path is still valid); require fails it."""
    root, sub = cas
    leaf = sub.issue()
    auto = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    body = auto.to_dict()
    assert auto.valid, body
    assert body["path"][0]["revocation"] == "not_checked"
    assert body["revocation"] in ("partial", "not_checked")
    strict = verifier(root, sub).verify(der(leaf), at=NOW, revocation="require", revocation_provider=RevocationSource(FAST))
    assert not strict.valid
    assert strict.error.code == "revocation_unknown"


# -- OCSP ---------------------------------------------------------------------

def test_ocsp_good_with_nonce(server, cas):
    root, sub = cas
    server.routes["/ocsp"] = ocsp_route(sub)
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.valid, r.to_dict()
    assert r.to_dict()["path"][0]["revocation_source"].startswith("OCSP response from key")


def test_ocsp_revoked(server, cas):
    root, sub = cas
    server.routes["/ocsp"] = ocsp_route(sub, ocsp.OCSPCertStatus.REVOKED)
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert r.error.code == "revoked"


def test_ocsp_without_echoed_nonce_is_refused(server, cas):
    _, sub = cas
    server.routes["/ocsp"] = ocsp_route(sub, echo_nonce=False)
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    status = status_of(RevocationSource(FAST), sub, leaf)
    assert status.state == "unknown"
    assert "nonce is not echoed" in status.detail
    assert status_of(RevocationSource(FAST, use_ocsp_nonce=False), sub, leaf).state == "good"


def test_malformed_ocsp_falls_back_to_the_crl(server, cas):
    _, sub = cas
    server.routes["/ocsp"] = lambda h: send(h, b"\x30\x05garbage", "application/ocsp-response")
    server.routes["/sub.crl"] = lambda h: send(h, sub.crl([]))
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp", crl_url=server.url + "/sub.crl")
    status = status_of(RevocationSource(FAST), sub, leaf)
    assert status.state == "good"
    assert status.source.startswith("CRL number 1")
    server.routes["/sub.crl"] = error500
    status = status_of(RevocationSource(FAST), sub, leaf)
    assert status.state == "unknown"
    assert "malformed OCSP response" in status.detail


def test_ocsp_server_that_never_answers(silent, cas):
    _, sub = cas
    leaf = leaf_for(sub, ocsp_url=silent + "/ocsp")
    status = status_of(RevocationSource(FAST), sub, leaf)
    assert status.state == "unknown"
    assert "no complete answer" in status.detail


def test_ocsp_endless_body(server, cas):
    _, sub = cas
    server.routes["/ocsp"] = endless
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    status = status_of(RevocationSource(FAST), sub, leaf)
    assert status.state == "unknown"
    assert "exceeds the limit of 20000 bytes" in status.detail


# -- the cache: bounded, and timed by the real clock ---------------------------

def test_cache_is_a_bounded_lru(server, cas):
    """Many distinct CRL URLs: the cache keeps at most ``max_cached`` of them,
    dropping the least recently used, so an entry asked for all along stays."""
    _, sub = cas
    body = sub.crl([])
    hits: dict[str, int] = {}

    def route(h):
        hits[h.path] = hits.get(h.path, 0) + 1
        send(h, body)

    for i in range(100):
        server.routes[f"/{i}.crl"] = route
    server.routes["/hot.crl"] = route
    source = RevocationSource(FAST, max_cached=16, wall_clock=WallClock())
    hot = server.url + "/hot.crl"
    assert source.crl(hot).value is not None
    for i in range(100):
        assert source.crl(f"{server.url}/{i}.crl").value is not None
        assert source.crl(hot).value is not None  # used again after every other URL
        assert len(source._cache) <= 16
    assert len(source._cache) == 16
    assert hits["/hot.crl"] == 1  # never dropped (a FIFO would have dropped it at the 16th URL)
    assert source.crl(f"{server.url}/99.crl").error is None and hits["/99.crl"] == 1  # recent: still cached
    assert source.crl(f"{server.url}/0.crl").error is None and hits["/0.crl"] == 2  # dropped long ago: fetched again


def test_zero_max_cached_keeps_nothing(server, cas):
    _, sub = cas
    hits = []
    server.routes["/sub.crl"] = lambda h: (hits.append(1), send(h, sub.crl([])))
    source = RevocationSource(FAST, max_cached=0, wall_clock=WallClock())
    assert source.crl(server.url + "/sub.crl").value is not None
    assert source.crl(server.url + "/sub.crl").value is not None
    assert len(hits) == 2 and len(source._cache) == 0


def test_far_future_validation_time_does_not_keep_an_object_fresh(server, cas):
    """An OCSP response without nextUpdate is fresh for ``default_ttl`` after
    it was fetched, by the real time: a request asking about a moment ten
    years ahead neither stretches that for the requests after it nor makes
    a fresh object be fetched again."""
    _, sub = cas
    hits: list[str] = []
    server.routes["/ocsp"] = ocsp_route(sub, next_update=None, hits=hits)
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    wall = WallClock()
    source = RevocationSource(FAST, default_ttl=dt.timedelta(hours=1), wall_clock=wall)
    far = NOW + dt.timedelta(days=3653)
    assert status_of(source, sub, leaf, far).state == "stale"  # pki: too old at that time (no nextUpdate, max age)
    assert len(hits) == 1
    wall.t = NOW + dt.timedelta(minutes=30)
    assert status_of(source, sub, leaf, wall.t).state == "good"
    assert status_of(source, sub, leaf, far).state == "stale"
    assert len(hits) == 1  # fresh by the real time, whatever the validation time
    wall.t = NOW + dt.timedelta(hours=1, minutes=1)
    assert status_of(source, sub, leaf, wall.t).state == "good"
    assert len(hits) == 2  # due by the real time: not kept fresh by the request for ten years ahead


def test_far_future_validation_time_is_judged_by_pki_not_refetched(server, cas):
    """A CRL current by the real time is handed out as it is for a
    validation time past its nextUpdate; pki finds it out of date there."""
    _, sub = cas
    hits = []
    server.routes["/sub.crl"] = lambda h: (hits.append(1), send(h, sub.crl([], next_update=NOW + dt.timedelta(hours=1))))
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    source = RevocationSource(FAST, grace=dt.timedelta(hours=6), wall_clock=WallClock())
    assert status_of(source, sub, leaf).state == "good"
    far = status_of(source, sub, leaf, NOW + dt.timedelta(days=3653))
    assert far.state == "stale" and "out of date" in far.detail  # past nextUpdate + grace at that time
    assert status_of(source, sub, leaf, NOW + dt.timedelta(hours=2)).state == "stale"  # within grace at that time
    assert len(hits) == 1


def test_object_past_next_update_by_the_real_time_is_refetched_for_a_past_validation_time(server, cas):
    _, sub = cas
    hits = []
    server.routes["/sub.crl"] = lambda h: (hits.append(1), send(h, sub.crl([], next_update=NOW + dt.timedelta(hours=1))))
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    wall = WallClock()
    source = RevocationSource(FAST, grace=dt.timedelta(hours=6), wall_clock=wall)
    earlier = NOW - dt.timedelta(minutes=30)  # after the CRL's thisUpdate, before the real time throughout
    assert status_of(source, sub, leaf, earlier).state == "good"
    assert len(hits) == 1
    wall.t = NOW + dt.timedelta(hours=2)  # past nextUpdate by the real time
    assert status_of(source, sub, leaf, earlier).state == "good"
    assert len(hits) == 2
    # When that refresh fails, the copy is handed out (pki judges it against
    # the validation time) until nextUpdate + grace by the real time ...
    server.routes["/sub.crl"] = error500
    wall.t = NOW + dt.timedelta(hours=3)
    during = status_of(source, sub, leaf, earlier)
    assert during.state == "good" and during.source.startswith("CRL number 1")
    # ... and not after it, whatever the validation time.
    wall.t = NOW + dt.timedelta(hours=8)
    after = status_of(RevocationSource(FAST, grace=dt.timedelta(hours=6), wall_clock=wall), sub, leaf, earlier)
    assert after.state == "unknown"
    got = source.crl(server.url + "/sub.crl")
    assert got.value is None and "HTTP 500" in got.error
    assert len(source._cache) == 0  # dropped once past use
