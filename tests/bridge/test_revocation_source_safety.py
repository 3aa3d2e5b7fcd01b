"""Fetch safety of the revocation source (bridge/revocation_source.py): a
CRL or OCSP URL whose host is loopback, link-local, private, unspecified or
multicast is refused by default, with the URL and the category in the
result; allowed with ``allow_private_addresses``; redirects are checked at
every hop; the name is resolved once and the checked address connected to;
errors carry categories, not exception text; and the cache counts a parsed
CRL's index against its byte budget. Real CRLs on a real server on
127.0.0.1 (the helpers of test_revocation_source)."""
from __future__ import annotations

import ipaddress
import socket

import pytest

from bridge.revocation_source import (
    CRL_ENTRY_BYTES,
    FetchError,
    FetchLimits,
    RevocationSource,
    http_fetch,
    resident_size,
)
from pki.crl import parse_crl
from tests.pki.test_revocation import NOW, der

from .test_revocation_source import (  # noqa: F401 (fixtures)
    FAST,
    WallClock,
    cas,
    leaf_for,
    send,
    server,
    status_of,
    verifier,
)

DEFAULT = FetchLimits(connect_timeout=1.0, total_timeout=1.5, max_crl_bytes=200_000, max_ocsp_bytes=20_000, max_redirects=2)
assert DEFAULT.allow_private_addresses is False  # the default under test


def test_a_loopback_crl_url_is_refused_by_default_with_the_category(server, cas):
    root, sub = cas
    hits = []
    server.routes["/sub.crl"] = lambda h: (hits.append(1), send(h, sub.crl([])))
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    r = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(DEFAULT))
    assert not r.valid and r.error.code == "revocation_unknown"
    assert f"{server.url}/sub.crl: refused_address: the host resolves to a loopback address" in r.error.message
    assert hits == []  # never connected
    # the same CRL, allowed
    allowed = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=RevocationSource(FAST))
    assert allowed.valid and allowed.to_dict()["path"][0]["revocation"] == "good"
    assert hits == [1]


def test_a_loopback_ocsp_url_is_refused_by_default(server, cas):
    _, sub = cas
    leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    status = status_of(RevocationSource(DEFAULT), sub, leaf)
    assert status.state == "unknown"
    assert f"{server.url}/ocsp: refused_address" in status.detail


@pytest.mark.parametrize("host,kind", [
    ("127.0.0.1", "loopback"), ("127.1.2.3", "loopback"), ("[::1]", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("[fd00::1]", "private"),
    ("169.254.169.254", "link-local"), ("[fe80::1]", "link-local"),
    ("0.0.0.0", "unspecified"), ("[::]", "unspecified"),
    ("224.0.0.1", "multicast"), ("[ff02::1]", "multicast"),
    ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped
    ("100.64.0.1", "non-global"),  # shared address space (carrier-grade NAT)
])
def test_refused_addresses_by_kind(host, kind):
    url = f"http://{host}:9/x.crl"
    with pytest.raises(FetchError) as caught:
        http_fetch(url, max_bytes=1000, limits=DEFAULT)
    assert caught.value.category == "refused_address"
    assert str(caught.value).startswith(f"{url}: refused_address: the host resolves to a {kind} address") or \
        str(caught.value).startswith(f"{url}: refused_address: the host resolves to an {kind} address")


def test_a_name_that_resolves_to_loopback_is_refused(server):
    url = server.url.replace("127.0.0.1", "localhost") + "/x.crl"
    with pytest.raises(FetchError) as caught:
        http_fetch(url, max_bytes=1000, limits=DEFAULT)
    assert caught.value.category == "refused_address"


def test_a_redirect_to_a_private_address_is_refused_at_that_hop(server, cas, monkeypatch):
    """A public server cannot send the fetch on inward: the public hop is
    simulated by letting 127.0.0.1 count as public, the redirect target
    (127.0.0.2) is not."""
    import bridge.revocation_source as rs

    _, sub = cas
    server.routes["/moved"] = lambda h: (h.send_response(302), h.send_header("Location", f"http://127.0.0.2:{server.httpd.server_address[1]}/sub.crl"),
                                         h.send_header("Content-Length", "0"), h.end_headers())
    real = rs._refusal
    monkeypatch.setattr(rs, "_refusal", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    with pytest.raises(FetchError) as caught:
        http_fetch(server.url + "/moved", max_bytes=200_000, limits=DEFAULT)
    assert caught.value.category == "refused_address"
    assert caught.value.url == f"http://127.0.0.2:{server.httpd.server_address[1]}/sub.crl"


def test_the_checked_address_is_the_one_connected_to(server, cas, monkeypatch):
    """DNS rebinding: the name is resolved once; a resolver that would
    answer differently the second time is never asked again."""
    _, sub = cas
    server.routes["/sub.crl"] = lambda h: send(h, sub.crl([]))
    answers = []
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            answers.append(host)
            # first the (allowed, in this test) loopback server; any later
            # lookup would get an address nothing listens on
            target = "127.0.0.1" if len(answers) == 1 else "127.0.0.9"
            return real(target, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    body = http_fetch(f"http://rebind.test:{server.httpd.server_address[1]}/sub.crl", max_bytes=200_000, limits=FAST)
    assert parse_crl(body).issuer == parse_crl(sub.crl([])).issuer
    assert answers == ["rebind.test"]  # resolved once; http.client did not resolve again


def test_errors_carry_a_category_and_no_exception_text(server, cas):
    _, sub = cas

    def hang_up(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        h.wfile.flush()
        h.close_connection = True

    server.routes["/cut"] = hang_up
    server.routes["/missing"] = lambda h: (h.send_response(404), h.send_header("Content-Length", "0"), h.end_headers())
    server.routes["/big"] = lambda h: send(h, b"x" * 300_000)
    server.routes["/junk"] = lambda h: send(h, b"not a crl")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once closed
    source = RevocationSource(FAST, wall_clock=WallClock())
    cases = {
        f"{server.url}/cut": "connection_failed",
        f"{server.url}/missing": "http_status",
        f"{server.url}/big": "too_large",
        f"{server.url}/junk": "malformed",
        f"http://127.0.0.1:{closed_port}/x.crl": "connection_failed",
        "http://does-not-resolve.invalid/x.crl": "connection_failed",
        "https://example.com/x.crl": "refused_address",
    }
    for url, category in cases.items():
        got = source.crl(url)
        assert got.value is None
        assert got.error.startswith(f"{url}: {category}: "), got.error
        for leak in ("Errno", "Error:", "Traceback", "RemoteDisconnected", "IncompleteRead", "Connection refused"):
            assert leak not in got.error, got.error


def test_the_cache_counts_a_parsed_crls_index(server, cas):
    """A CRL whose DER fits the budget but whose parsed index does not is
    used, not cached: the budget bounds resident memory, not DER bytes."""
    _, sub = cas
    body = sub.crl(list(range(1000, 1200)))
    crl = parse_crl(body)
    assert resident_size(crl) == len(crl.der) + len(crl.tbs) + CRL_ENTRY_BYTES * 200
    hits = []
    server.routes["/big.crl"] = lambda h: (hits.append(1), send(h, body))
    source = RevocationSource(FAST, max_cached_bytes=4 * len(body), wall_clock=WallClock())
    assert 4 * len(body) < resident_size(crl)
    for _ in range(2):
        assert source.crl(server.url + "/big.crl").value.der == body
    assert hits == [1, 1] and source._cached_bytes == 0
    roomy = RevocationSource(FAST, max_cached_bytes=resident_size(crl), wall_clock=WallClock())
    for _ in range(2):
        assert roomy.crl(server.url + "/big.crl").value.der == body
    assert hits == [1, 1, 1] and roomy._cached_bytes == resident_size(crl)


def test_ip_kinds_match_the_ipaddress_module():
    from bridge.revocation_source import _refusal

    assert _refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert _refusal(ipaddress.ip_address("2001:4860:4860::8888")) is None
    assert _refusal(ipaddress.ip_address("192.168.0.1")) == "a private"
