"""Rate limits (api/ratelimit.py) on a real server: failed authentication
per client address (429 ``rate_limited`` with Retry-After after N failures,
other addresses unaffected), verification requests per token per second;
and the limiters' memory bound and windows, with an injected clock."""
from __future__ import annotations

import httpx
import pytest

from api.ratelimit import FailureLimiter, TokenBuckets

from .conftest import PROBLEM
from .test_body_limit import start_server
from .test_server import run, stop

LIMIT = 10
WRONG = "bca_" + "w" * 43


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("rate-limit") / "home"
    run("init", "--home", str(home), "--base-url", "https://bridge.gd.example")
    tokens = {role: run("token", "create", "--home", str(home), "--role", role).strip().splitlines()[-1]
              for role in ("platform", "admin")}
    process, base, log = start_server(home, [], extra_env={
        "BRIDGECA_AUTH_FAILURE_LIMIT": str(LIMIT),
        "BRIDGECA_AUTH_FAILURE_WINDOW_SECONDS": "600",
        # one verification per token per 100 s: a second one at once is over it
        "BRIDGECA_VERIFY_RATE_PER_TOKEN": "0.01",
    })
    try:
        yield {"base": base, "tokens": tokens}
    finally:
        stop(process)
        log.close()


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def test_300_wrong_tokens_are_429_after_n_and_another_address_is_unaffected(served):
    base, tokens = served["base"], served["tokens"]
    statuses = []
    with client_from("127.0.0.1") as attacker:
        for _ in range(300):
            r = attacker.get(base + "/v1/issuers", headers={"Authorization": f"Bearer {WRONG}"})
            statuses.append(r.status_code)
        assert statuses[:LIMIT] == [401] * LIMIT
        assert statuses[LIMIT:] == [429] * (300 - LIMIT)
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert problem["code"] == "rate_limited" and problem["status"] == 429
        retry_after = int(r.headers["retry-after"])
        assert 1 <= retry_after <= 600
        # From the blocked address even a correct token waits (the server cannot
        # tell a guess that hit from the owner) ...
        blocked = attacker.get(base + "/v1/issuers", headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert blocked.status_code == 429 and blocked.json()["code"] == "rate_limited"
        # ... a POST body is read and dropped before the 429, ...
        post = attacker.post(base + "/v1/verify/chain", json={"certificate": "x" * 100_000},
                             headers={"Authorization": f"Bearer {WRONG}"})
        assert post.status_code == 429
        # ... while public routes still answer it.
        assert attacker.get(base + "/v1/health").status_code == 200
        assert attacker.get(base + "/v1/ca/certificate").status_code == 200
    with client_from("127.0.0.2") as platform:
        ok = platform.get(base + "/v1/issuers", headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert ok.status_code == 200, ok.text
        # and its own wrong token is a 401, not the other address's 429
        assert platform.get(base + "/v1/issuers", headers={"Authorization": f"Bearer {WRONG}"}).status_code == 401


def test_a_request_without_a_token_is_not_a_failure_that_counts(served):
    with client_from("127.0.0.4") as client:
        statuses = {client.get(served["base"] + "/v1/issuers").status_code for _ in range(3 * LIMIT)}
        assert statuses == {401}
        assert client.get(served["base"] + "/v1/issuers",
                          headers={"Authorization": f"Bearer {served['tokens']['admin']}"}).status_code == 200


def test_verification_rate_per_token(served):
    base, tokens = served["base"], served["tokens"]
    body = {"certificate": "not a certificate"}
    with client_from("127.0.0.3") as client:
        first = client.post(base + "/v1/verify/chain", json=body, headers={"Authorization": f"Bearer {tokens['platform']}"})
        assert first.status_code == 400 and first.json()["code"] == "malformed_input"
        second = client.post(base + "/v1/verify/chain", json=body, headers={"Authorization": f"Bearer {tokens['platform']}"})
        assert second.status_code == 429 and second.headers["content-type"] == PROBLEM
        assert second.json()["code"] == "rate_limited" and int(second.headers["retry-after"]) >= 1
        # another token has its own budget; other routes are not verifications
        other = client.post(base + "/v1/verify/chain", json=body, headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert other.status_code == 400
        assert client.get(base + "/v1/issuers", headers={"Authorization": f"Bearer {tokens['platform']}"}).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failure_limiter_window_and_memory_bound():
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60, max_keys=100, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
    assert limiter.retry_after("a") == 60
    clock.now += 59
    assert limiter.retry_after("a") == pytest.approx(1)
    clock.now += 1
    assert limiter.retry_after("a") is None  # the window is over: a fresh start
    limiter.failed("a")
    assert limiter.retry_after("a") is None
    for i in range(100_000):
        limiter.failed(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    assert len(limiter) == 100  # bounded, whatever the number of addresses


def test_token_buckets_refill_and_memory_bound():
    clock = Clock()
    buckets = TokenBuckets(rate=2, max_keys=10, clock=clock)
    assert buckets.take("t") is None and buckets.take("t") is None  # a burst of one second's worth
    assert buckets.take("t") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("t") is None
    for i in range(1000):
        buckets.take(f"k{i}")
    assert len(buckets._buckets) == 10
