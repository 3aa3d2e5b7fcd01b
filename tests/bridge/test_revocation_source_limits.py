"""Limits of the revocation source's cache, against real HTTP servers on
127.0.0.1 (the helpers of test_revocation_source): a CA that publishes late
costs one fetch per ``min_fresh``, not one per verification; the cache holds
at most ``max_cached_bytes`` of DER, dropping the least recently used, and
an object larger than that is used but not cached. The tests count the
requests the servers receive; the real time is an injected clock and nothing
asserts on durations."""
from __future__ import annotations

import datetime as dt

import pytest

from bridge.revocation_source import RevocationSource, resident_size
from pki.crl import parse_crl
from tests.pki.test_revocation import NOW

from .test_revocation_negative_cache import counted
from .test_revocation_source import (  # noqa: F401 (fixtures)
    FAST,
    WallClock,
    cas,
    leaf_for,
    ocsp_route,
    send,
    server,
    status_of,
)

GRACE = dt.timedelta(hours=12)


# -- late publication: a minimum freshness ----------------------------------------------

@pytest.mark.parametrize("kind, late, detail", [
    ("crl", dt.timedelta(hours=1), "decided by a CRL past its nextUpdate"),  # within the grace at the validation time
    ("crl", dt.timedelta(hours=13), "out of date"),  # past nextUpdate + grace as well: not used by pki
    ("ocsp", dt.timedelta(minutes=10), ""),
], ids=["crl-within-grace", "crl-past-grace", "ocsp"])
def test_late_published_object_is_fetched_once_per_min_fresh(server, cas, kind, late, detail):
    """A server serving an object whose nextUpdate has already passed (by
    the real time) is asked once for all the requests within ``min_fresh``
    after the fetch, and again after it. The object is judged by pki as it
    would be freshly fetched: stale, or out of date."""
    _, sub = cas
    if kind == "crl":
        body = sub.crl([], this_update=NOW - late - dt.timedelta(hours=2), next_update=NOW - late)
        route = server.routes["/sub.crl"] = counted(lambda h: send(h, body, "application/pkix-crl"))
        hits = route.hits
        leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    else:
        hits = []
        server.routes["/ocsp"] = ocsp_route(sub, next_update=-late, hits=hits)
        leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    wall = WallClock()
    source = RevocationSource(FAST, grace=GRACE, min_fresh=dt.timedelta(seconds=60), wall_clock=wall)
    first = status_of(source, sub, leaf)
    assert first.state == "stale" and detail in first.detail
    # Exactly what a source that fetches it anew makes of it.
    assert first == status_of(RevocationSource(FAST, grace=GRACE, wall_clock=wall), sub, leaf)
    assert len(hits) == 2
    for seconds in range(0, 60, 3):
        wall.t = NOW + dt.timedelta(seconds=seconds)
        assert status_of(source, sub, leaf, wall.t) == status_of(source, sub, leaf)
    assert len(hits) == 2  # the one fetch above, and the comparison source's
    wall.t = NOW + dt.timedelta(seconds=60)
    assert status_of(source, sub, leaf) == first
    assert len(hits) == 3  # due again: a republished object would be picked up now
    wall.t = NOW + dt.timedelta(seconds=119)
    assert status_of(source, sub, leaf) == first
    assert len(hits) == 3


# -- a memory bound by size: max_cached_bytes --------------------------------------------

def _der_of(entry) -> bytes:
    value = entry.value
    return (value[0] if isinstance(value, tuple) else value).der


def _size(crl_der: bytes) -> int:
    """What a CRL counts against max_cached_bytes: its estimated resident size."""
    return resident_size(parse_crl(crl_der))


def _cached(source) -> dict[str, int]:
    """The cached objects by URL path, with their counted sizes; checks the
    source's running total against them."""
    sizes = {key[1].rsplit("/", 1)[1]: resident_size(entry.value) for key, entry in source._cache.items()}
    assert source._cached_bytes == sum(sizes.values())
    return sizes


def _crl_server(server, sub, counts: dict[str, int]):
    """A CRL per name with ``counts[name]`` revoked serials (so of known
    size); returns (bodies, hits by name, url of a name)."""
    bodies = {name: sub.crl(list(range(1000, 1000 + n))) for name, n in counts.items()}
    hits: dict[str, int] = {}

    def route(h):
        name = h.path.rsplit("/", 1)[1]
        hits[name] = hits.get(name, 0) + 1
        send(h, bodies[name], "application/pkix-crl")

    for name in counts:
        server.routes["/" + name] = route
    return bodies, hits, lambda name: f"{server.url}/{name}"


def test_default_byte_budget():
    assert RevocationSource().max_cached_bytes == 256 * 1024 * 1024


def test_byte_budget_evicts_the_least_recently_used(server, cas):
    _, sub = cas
    bodies, hits, url = _crl_server(server, sub, {"a": 20, "b": 20, "c": 20, "d": 20, "e": 40})
    unit = max(_size(bodies[n]) for n in "abcd")
    budget = 3 * unit  # three of a..d fit, four do not
    assert 4 * min(_size(bodies[n]) for n in "abcd") > budget
    assert unit < _size(bodies["e"]) and 2 * min(_size(bodies[n]) for n in "abcd") + _size(bodies["e"]) > budget
    source = RevocationSource(FAST, max_cached_bytes=budget, wall_clock=WallClock())
    for name in "abc":
        assert source.crl(url(name)).value.der == bodies[name]
    assert _cached(source) == {n: _size(bodies[n]) for n in "abc"}
    assert source.crl(url("a")).value is not None  # a used again: b is now the least recently used
    assert source.crl(url("d")).value is not None
    assert set(_cached(source)) == {"a", "c", "d"} and source._cached_bytes <= budget
    for name in "acd":
        assert source.crl(url(name)).error is None  # still cached (order of use now a, c, d) ...
    assert hits == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert source.crl(url("b")).value is not None  # ... b was dropped: fetched again, dropping a
    assert hits["b"] == 2
    assert set(_cached(source)) == {"c", "d", "b"} and source._cached_bytes <= budget
    # A larger object drops as many of the least recently used as it takes.
    assert source.crl(url("e")).value is not None
    assert set(_cached(source)) == {"b", "e"} and source._cached_bytes <= budget
    assert source.crl(url("b")).error is None and source.crl(url("e")).error is None
    assert hits == {"a": 1, "b": 2, "c": 1, "d": 1, "e": 1}


def test_object_over_the_whole_budget_is_used_but_not_cached(server, cas):
    _, sub = cas
    bodies, hits, url = _crl_server(server, sub, {"a": 1, "b": 1, "huge": 60})
    budget = _size(bodies["a"]) + _size(bodies["b"]) + 10
    assert _size(bodies["huge"]) > budget
    source = RevocationSource(FAST, max_cached_bytes=budget, wall_clock=WallClock())
    source.crl(url("a")), source.crl(url("b"))
    for _ in range(3):
        got = source.crl(url("huge"))
        assert got.value.der == bodies["huge"] and got.error is None and not got.stale
        assert set(_cached(source)) == {"a", "b"}  # not cached, and it cost no other entry its place
    assert hits == {"a": 1, "b": 1, "huge": 3}
    # Through the provider: the same answer as a source that caches it, no error about the cache.
    leaf = leaf_for(sub, crl_url=url("huge"))
    small = status_of(source, sub, leaf)
    assert small == status_of(RevocationSource(FAST, wall_clock=WallClock()), sub, leaf) and small.state == "good"
    assert hits["huge"] == 5


def test_a_refresh_over_the_budget_drops_the_older_copy(server, cas):
    _, sub = cas
    small = sub.crl([], next_update=NOW + dt.timedelta(hours=1))
    big = sub.crl(list(range(1000, 1060)), next_update=NOW + dt.timedelta(hours=2))
    route = server.routes["/sub.crl"] = counted(lambda h: send(h, small))
    wall = WallClock()
    source = RevocationSource(FAST, max_cached_bytes=_size(small) + 100, wall_clock=wall)
    assert source.crl(server.url + "/sub.crl").value.der == small
    assert _cached(source) == {"sub.crl": _size(small)}
    server.routes["/sub.crl"] = counted(lambda h: send(h, big))
    wall.t = NOW + dt.timedelta(hours=1, minutes=1)  # due for a refresh
    assert source.crl(server.url + "/sub.crl").value.der == big
    assert _cached(source) == {} and len(route.hits) == 1


def test_ocsp_responses_count_their_der_size(server, cas):
    _, sub = cas
    hits: list[str] = []
    server.routes["/ocsp"] = ocsp_route(sub, hits=hits)
    leaves = [leaf_for(sub, ocsp_url=server.url + "/ocsp") for _ in range(3)]
    source = RevocationSource(FAST, wall_clock=WallClock())
    status_of(source, sub, leaves[0])
    size = source._cached_bytes
    assert size > 0 and size == sum(len(_der_of(e)) for e in source._cache.values())
    source.max_cached_bytes = 2 * size + size // 2  # room for two responses of about that size
    for leaf in leaves[1:]:
        assert status_of(source, sub, leaf).state == "good"
    assert len(source._cache) == 2 and source._cached_bytes <= source.max_cached_bytes
    assert status_of(source, sub, leaves[0]).state == "good" and len(hits) == 4  # the first was dropped
