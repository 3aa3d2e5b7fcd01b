"""GET /metrics, read back with prometheus-client's own parser: requests by
route template and status (the body limit's
413s included), verifications by outcome, the cached-answer ratio, the
epoch, the CRL's age and nextUpdate, revocation fetch failures; and, from
a real ``bridgeca serve --workers 2``, one scrape that sums both workers."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import bridge_env, make_federation
from .test_cached_answers import _leaf
from .test_server import READY_WITHIN, REPO, bridgeca, env, free_port, http, run, stop


def samples(text: str) -> dict[str, list]:
    """Sample name -> [(labels, value)], as the parser reads them."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(found: dict, name: str, **labels) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for lab, v in found.get(name, ()) if all(lab.get(k) == want for k, want in labels.items()))


def scrape(client) -> dict:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


@pytest.fixture
def fed(tmp_path, monkeypatch):
    # The fetch-failure case below points a CRL at a closed loopback port.
    monkeypatch.setenv("BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES", "true")
    federation = make_federation(tmp_path / "home", codes=("HK",))
    monkeypatch.delenv("BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES")
    with federation.client:
        yield federation
    federation.ca.close()


def test_a_verification_is_counted_by_route_status_and_outcome(fed):
    body = fed.chain_body("HK")
    with bridge_env():
        before = scrape(fed.client)
        for _ in range(3):  # the first searches; the others come from what is cached (on the event loop)
            r = fed.client.post("/v1/verify/chain", headers=fed.h("platform"), json=body)
            assert r.status_code == 200 and r.json()["valid"] is True, r.text
        r = fed.client.post("/v1/verify/chain", headers=fed.h("platform"), json=dict(body, at="2000-01-01T00:00:00Z"))
        assert r.status_code == 200 and r.json()["valid"] is False
        invalid_code = r.json()["error"]["code"]
        after = scrape(fed.client)

    route = dict(route="/v1/verify/chain", method="POST", status="200")
    assert value(after, "bridgeca_http_requests_total", **route) - value(before, "bridgeca_http_requests_total", **route) == 4
    assert value(after, "bridgeca_http_request_duration_seconds_count", route="/v1/verify/chain", method="POST") == 4
    assert value(after, "bridgeca_verifications_total", kind="chain", valid="true", code="none") == 3
    assert value(after, "bridgeca_verifications_total", kind="chain", valid="false", code=invalid_code) == 1
    hits, misses = value(after, "bridgeca_verify_cache_total", result="hit"), value(after, "bridgeca_verify_cache_total", result="miss")
    assert hits >= 2 and hits + misses == 4, (hits, misses)
    # The scrape before this one is counted under its template too.
    assert value(after, "bridgeca_http_requests_total", route="/metrics", method="GET", status="200") >= 1


def test_templates_not_raw_paths_and_middleware_answers_counted(fed):
    with bridge_env():
        assert fed.client.get("/v1/issuers/0123456789abcdef0123456789abcdef", headers=fed.h("admin")).status_code == 404
        assert fed.client.get("/no/such/route/" + "x" * 50).status_code == 404
        # Refused by the body limit before any routing.
        r = fed.client.post("/v1/verify/chain", headers=fed.h("platform", **{"Content-Type": "application/json"}),
                            content=b"{" + b" " * (2 << 20) + b"}")
        assert r.status_code == 413
        found = scrape(fed.client)
    assert value(found, "bridgeca_http_requests_total", route="/v1/issuers/{issuer_id}", status="404") == 1
    assert value(found, "bridgeca_http_requests_total", route="unmatched", status="404") == 1
    assert value(found, "bridgeca_http_requests_total", route="/v1/verify/chain", status="413") == 1
    routes = {labels["route"] for labels, _ in found["bridgeca_http_requests_total"]}
    assert not any("0123456789abcdef" in r or "xxxx" in r for r in routes), routes


def test_epoch_crl_and_workers(fed):
    with bridge_env():
        found = scrape(fed.client)
        epoch = fed.ca.store.epoch()
        assert value(found, "bridgeca_revocation_epoch") == epoch
        next_update = value(found, "bridgeca_crl_next_update_seconds")
        assert 0 < next_update <= fed.ca.settings.crl_next_update_hours * 3600
        assert 0 <= value(found, "bridgeca_crl_age_seconds") < fed.ca.settings.crl_next_update_hours * 3600
        assert value(found, "bridgeca_workers") == 1
        # A revocation bumps the epoch; the next scrape shows it.
        r = fed.client.post(f"/v1/cross-certificates/{fed.serials['HK']}/revoke", headers=fed.h("admin"),
                            json={"reason": "keyCompromise"})
        assert r.status_code == 200, r.text
        assert value(scrape(fed.client), "bridgeca_revocation_epoch") == fed.ca.store.epoch() > epoch


def test_revocation_fetch_failures_are_counted(fed):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        leaf = _leaf(fed, "HK", "fetch-failure.hk.example", crl_url=f"http://127.0.0.1:{port}/hk.crl")
        body = dict(fed.chain_body("HK"), certificate=leaf)
        with bridge_env():
            r = fed.client.post("/v1/verify/chain", headers=fed.h("platform"), json=body)
            assert r.status_code == 200, r.text
            found = scrape(fed.client)
    assert value(found, "bridgeca_revocation_fetch_failures_total", kind="crl") == 1, found.get("bridgeca_revocation_fetch_failures_total")


# ---------------------------------------------------------------------- several workers


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT") or not os.path.exists("/proc"), reason="needs SO_REUSEPORT and /proc")
def test_one_scrape_sums_every_worker(tmp_path):
    home = tmp_path / "home"
    run("init", "--home", str(home), "--base-url", "https://bridge.gd.example")
    port = free_port()
    log = open(tmp_path / "server.log", "w+b")
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
                                             "--workers", "2"], env=env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def scraped() -> dict:
            status, _headers, body = http("GET", base + "/metrics")
            assert status == 200, body
            return samples(body.decode())

        # Both workers up: each live worker counts 1 in the sum, so a scrape
        # that saw only the worker answering it would say 1.
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"bridgeca serve exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                if value(scraped(), "bridgeca_workers") == 2:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the workers did not both come up")
            time.sleep(0.2)

        count = 40  # each on a new connection: the kernel spreads them over both workers
        for _ in range(count):
            with urllib.request.urlopen(base + "/v1/health", timeout=30) as r:
                assert r.status == 200
        # Whichever worker answers, every scrape sees all of them.
        for _ in range(6):
            found = scraped()
            assert value(found, "bridgeca_http_requests_total", route="/v1/health", status="200") == count
            assert value(found, "bridgeca_workers_configured") == 2

        # A worker that dies is replaced, and stops counting as live.
        from .test_workers import workers

        victim = next(iter(workers(process.pid, port)))
        environ = dict(item.split("=", 1) for item in
                       open(f"/proc/{victim}/environ", "rb").read().decode(errors="replace").split("\0") if "=" in item)
        metrics_dir = environ["PROMETHEUS_MULTIPROC_DIR"]
        assert os.path.isdir(metrics_dir)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + READY_WITHIN
        while True:
            alive = workers(process.pid, port)
            if len(alive) == 2 and victim not in alive and value(scraped(), "bridgeca_workers") == 2:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no replacement worker, or the dead one still counted: {alive}")
            time.sleep(0.2)
        # Counts from the dead worker stay: totals never go backwards.
        assert value(scraped(), "bridgeca_http_requests_total", route="/v1/health", status="200") == count
    finally:
        stop(process)
        log.close()
    assert not os.path.exists(metrics_dir)  # made per serve, removed when it stops
