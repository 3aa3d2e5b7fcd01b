"""The revocation source's no-fetch mode (``no_fetch()``), against real HTTP
servers on 127.0.0.1: inside the block the source answers from its caches
exactly what it would answer outside it, raises ``FetchNeeded`` where that
answer would need a fetch, and never makes a request; the mode belongs to
the thread (or asyncio task) that entered the block, and ends with it. The
tests count the requests the servers receive; nothing asserts on durations."""
from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading

import pytest

from bridge.revocation_source import FetchNeeded, RevocationSource, fetching_disabled, no_fetch
from pki.certificate import parse_certificate
from tests.pki.test_revocation import NOW, der

from .test_revocation_negative_cache import REMEMBERED, TTL, Clock, counted
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


def info_of(source, sub, leaf, at=NOW):
    return source.revocation_info(parse_certificate(der(leaf)), parse_certificate(der(sub.cert)), at)


def crl_route(sub, leaf_serials=(), next_update=NOW + dt.timedelta(hours=1)):
    return counted(lambda h: send(h, sub.crl(list(leaf_serials), next_update=next_update), "application/pkix-crl"))


def source_for_tests(**kw):
    return RevocationSource(FAST, grace=dt.timedelta(hours=6), failure_ttl=TTL, clock=kw.pop("clock", Clock()),
                            wall_clock=kw.pop("wall_clock", WallClock()), **kw)


# -- nothing cached: FetchNeeded, no request ------------------------------------------

def test_empty_cache_raises_fetch_needed_without_a_request(server, cas):
    root, sub = cas
    crl = server.routes["/sub.crl"] = crl_route(sub)
    hits: list[str] = []
    server.routes["/ocsp"] = ocsp_route(sub, hits=hits)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl", ocsp_url=server.url + "/ocsp")
    source = source_for_tests()
    v = verifier(root, sub)
    with no_fetch():
        assert fetching_disabled()
        with pytest.raises(FetchNeeded):
            info_of(source, sub, leaf)
        with pytest.raises(FetchNeeded):
            source.crl(server.url + "/sub.crl")
        with pytest.raises(FetchNeeded):
            status_of(source, sub, leaf)  # through pki's ProvidedChecker
        with pytest.raises(FetchNeeded):
            v.verify(der(leaf), at=NOW, revocation_provider=source)  # and the whole Verifier
    assert not fetching_disabled()
    assert (len(crl.hits), len(hits)) == (0, 0)
    assert source._in_flight == {} and len(source._cache) == 0 and len(source._failures) == 0
    # The interrupted verification left nothing behind in the Verifier: online it answers as a new one.
    again = v.verify(der(leaf), at=NOW, revocation_provider=source).to_dict()
    assert again["valid"] and again == verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=source).to_dict()


# -- cached: the same answer as online, no request ------------------------------------

@pytest.mark.parametrize("sources", ["crl", "ocsp", "both"])
def test_cached_objects_answer_as_online(server, cas, sources):
    root, sub = cas
    crl = server.routes["/sub.crl"] = crl_route(sub)
    ocsp_hits: list[str] = []
    server.routes["/ocsp"] = ocsp_route(sub, hits=ocsp_hits)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl" if sources != "ocsp" else None,
                    ocsp_url=server.url + "/ocsp" if sources != "crl" else None)
    source = source_for_tests()
    fetched = info_of(source, sub, leaf)
    online = info_of(source, sub, leaf)
    requests = len(crl.hits) + len(ocsp_hits)
    assert requests == (2 if sources == "both" else 1) and online == fetched and not online.errors
    with no_fetch():
        offline = info_of(source, sub, leaf)
        offline_status = status_of(source, sub, leaf)
        offline_result = verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=source).to_dict()
    assert offline == online
    assert offline_status == status_of(source, sub, leaf) and offline_status.state == "good"
    assert offline_result == verifier(root, sub).verify(der(leaf), at=NOW, revocation_provider=source).to_dict()
    assert offline_result["valid"]
    assert len(crl.hits) + len(ocsp_hits) == requests


# -- remembered failures: the same failure, no request --------------------------------

def test_remembered_failure_answers_as_online(server, cas):
    _, sub = cas
    down = server.routes["/sub.crl"] = counted(error500)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    source = source_for_tests()
    first = info_of(source, sub, leaf)
    assert "HTTP 500" in first.errors[0] and not REMEMBERED.search(first.errors[0])
    online = info_of(source, sub, leaf)
    assert REMEMBERED.search(online.errors[0])
    with no_fetch():
        offline = info_of(source, sub, leaf)
        offline_status = status_of(source, sub, leaf)
    assert offline == online
    assert offline_status == status_of(source, sub, leaf) and offline_status.state == "unknown"
    assert len(down.hits) == 1


def test_remembered_ocsp_url_failure_answers_for_another_certificate(server, cas):
    _, sub = cas
    down = server.routes["/ocsp"] = counted(error500)
    first_leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    second_leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    source = source_for_tests()
    info_of(source, sub, first_leaf)
    with no_fetch():
        offline = info_of(source, sub, second_leaf)  # never asked about, but its responder is down
    assert REMEMBERED.search(offline.errors[0]) and "HTTP 500" in offline.errors[0]
    assert offline == info_of(source, sub, second_leaf)
    assert len(down.hits) == 1


def test_expired_failure_needs_a_fetch(server, cas):
    _, sub = cas
    down = server.routes["/sub.crl"] = counted(error500)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    clock = Clock()
    source = source_for_tests(clock=clock)
    info_of(source, sub, leaf)
    clock.t += TTL.total_seconds()
    with no_fetch(), pytest.raises(FetchNeeded):
        info_of(source, sub, leaf)
    assert len(down.hits) == 1


# -- a copy past its nextUpdate: only what the online path would answer ---------------

def test_stale_copy_only_alongside_a_remembered_failure(server, cas):
    """Past nextUpdate (real time) the online path tries a refresh first, so
    without a remembered failure the offline path cannot know its answer;
    once the refresh failed and is remembered, both serve the stale copy."""
    _, sub = cas
    up = server.routes["/sub.crl"] = crl_route(sub)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    wall = WallClock()
    source = source_for_tests(wall_clock=wall)
    assert info_of(source, sub, leaf).crls
    wall.t = NOW + dt.timedelta(hours=2)  # within the grace, past nextUpdate
    with no_fetch(), pytest.raises(FetchNeeded):
        info_of(source, sub, leaf, wall.t)
    down = server.routes["/sub.crl"] = counted(error500)
    refreshed = info_of(source, sub, leaf, wall.t)
    online = info_of(source, sub, leaf, wall.t)
    assert refreshed.crls == online.crls and online.crls
    assert "served from cache" in online.errors[0] and REMEMBERED.search(online.errors[0])
    with no_fetch():
        offline = info_of(source, sub, leaf, wall.t)
        offline_status = status_of(source, sub, leaf, wall.t)
    assert offline == online
    assert offline_status == status_of(source, sub, leaf, wall.t) and offline_status.state == "stale"
    assert (len(up.hits), len(down.hits)) == (1, 1)


def test_does_not_wait_for_another_requests_fetch(server, cas):
    """A fetch in progress elsewhere is not waited for: FetchNeeded at once
    (waiting would block here until the route is released)."""
    _, sub = cas
    entered, release = threading.Event(), threading.Event()
    body = sub.crl([])

    def held(h):
        entered.set()
        release.wait(30)
        send(h, body)

    route = server.routes["/sub.crl"] = counted(held)
    url = server.url + "/sub.crl"
    source = source_for_tests()
    results: list = []
    online = threading.Thread(target=lambda: results.append(source.crl(url)))
    online.start()
    try:
        assert entered.wait(30)
        with no_fetch(), pytest.raises(FetchNeeded):
            source.crl(url)
    finally:
        release.set()
        online.join(30)
    assert results[0].value is not None and len(route.hits) == 1
    with no_fetch():
        assert source.crl(url) == results[0]


def test_does_not_wait_for_another_certificates_probe(server, cas):
    """A first request to an OCSP responder nothing is known about is in
    progress for one certificate: online, another certificate's request
    would wait for it; under no_fetch() it raises FetchNeeded at once."""
    _, sub = cas
    entered, release = threading.Event(), threading.Event()
    hits: list[str] = []
    answer = ocsp_route(sub, hits=hits)

    def held(h):
        if not hits:
            entered.set()
            release.wait(30)
        answer(h)

    server.routes["/ocsp"] = held
    first_leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    second_leaf = leaf_for(sub, ocsp_url=server.url + "/ocsp")
    source = source_for_tests()
    results: list = []
    online = threading.Thread(target=lambda: results.append(info_of(source, sub, first_leaf)))
    online.start()
    try:
        assert entered.wait(30)
        assert source._probes  # the responder is being probed
        with no_fetch(), pytest.raises(FetchNeeded):
            info_of(source, sub, second_leaf)
    finally:
        release.set()
        online.join(30)
    assert results[0].ocsp and len(hits) == 1
    assert info_of(source, sub, second_leaf).ocsp and len(hits) == 2
    assert source._probes == {} and source._in_flight == {}


# -- the mode is the caller's only, and ends with the block ---------------------------

def test_other_threads_fetch_normally(server, cas):
    _, sub = cas
    route = server.routes["/sub.crl"] = crl_route(sub)
    url = server.url + "/sub.crl"
    source = source_for_tests(max_cached=0)  # every question is a fetch
    results: list = []

    def ask():
        results.append((fetching_disabled(), source.crl(url)))

    with no_fetch():
        plain = threading.Thread(target=ask)  # a new thread: a context of its own
        plain.start()
        plain.join(30)
        copied = threading.Thread(target=contextvars.copy_context().run, args=(ask,))  # this block's context, copied
        copied.start()
        copied.join(30)
        with pytest.raises(FetchNeeded):
            source.crl(url)
    assert [(disabled, got.value is not None) for disabled, got in results] == [(False, True), (False, True)]
    assert len(route.hits) == 2


def test_asyncio_task_under_no_fetch_goes_to_a_thread_on_fetch_needed(server, cas):
    """The service's pattern: try on the event loop under no_fetch(), and on
    FetchNeeded run the same call in a worker thread (asyncio.to_thread
    copies the context, no_fetch() included, and still fetches there). A
    task beside it is not affected."""
    _, sub = cas
    route = server.routes["/sub.crl"] = crl_route(sub)
    leaf = leaf_for(sub, crl_url=server.url + "/sub.crl")
    source = source_for_tests()

    async def answer():
        with no_fetch():
            try:
                return "loop", info_of(source, sub, leaf)
            except FetchNeeded:
                return "thread", await asyncio.to_thread(info_of, source, sub, leaf)

    inside, done = asyncio.Event(), asyncio.Event()

    async def holding_no_fetch():
        with no_fetch():
            inside.set()
            await done.wait()
            return fetching_disabled()

    async def beside():  # same thread, another task, while the first is in its block
        await inside.wait()
        disabled = fetching_disabled()
        done.set()
        return disabled

    async def main():
        first = await answer()
        held, other = await asyncio.gather(holding_no_fetch(), beside())
        assert held is True
        return first, other, await answer()

    (where1, info1), other_disabled, (where2, info2) = asyncio.run(main())
    assert (where1, where2) == ("thread", "loop")
    assert info1 == info2 and info1.crls
    assert other_disabled is False
    assert len(route.hits) == 1


def test_reset_after_an_exception(server, cas):
    _, sub = cas
    route = server.routes["/sub.crl"] = crl_route(sub)
    url = server.url + "/sub.crl"
    source = source_for_tests()
    with pytest.raises(RuntimeError):
        with no_fetch():
            raise RuntimeError("boom")
    assert not fetching_disabled()
    with pytest.raises(FetchNeeded):
        with no_fetch():
            source.crl(url)
    assert not fetching_disabled()
    assert source.crl(url).value is not None
    assert len(route.hits) == 1


def test_nested_blocks(server, cas):
    with no_fetch():
        with no_fetch():
            assert fetching_disabled()
        assert fetching_disabled()
    assert not fetching_disabled()
