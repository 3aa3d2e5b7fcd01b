"""Limits of the revocation source's cache, against real HTTP servers on
127.0.0.1 (the helpers of test_revocation_source): a CA that publishes late
costs one fetch per ``min_fresh``, not one per verification. The tests
count the requests the servers receive; the real time is an injected clock
and nothing asserts on durations."""
from __future__ import annotations

import datetime as dt

import pytest

from bridge.revocation_source import RevocationSource

from .test_revocation import NOW
from .test_revocation_negative_cache import counted
from .test_revocation_source import (  # noqa: F401 (fixtures)
    FAST, WallClock, cas, leaf_for, ocsp_route, send, server, status_of,
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
