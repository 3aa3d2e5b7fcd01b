"""The fast lane for POST /v1/verify/chain answers exactly as the FastAPI
route does: every request here goes to two apps over the same bridge, one
with the lane and one without, and status, content type and body bytes must
be identical; the lane must really have answered the cheap ones and left
every other one to FastAPI."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import api.fastlane as fastlane
from api.app import create_app
from tests.bridge.members import BRIDGE_MEDIUM

from .conftest import bridge_env, make_federation
from .test_cached_answers import _leaf


@pytest.fixture
def lanes(tmp_path, monkeypatch):
    fed = make_federation(tmp_path / "home", codes=("HK", "GD"))
    plain = TestClient(create_app(fed.ca, fast_lane=False), raise_server_exceptions=False)
    answered = []
    original = fastlane.VerifyChainFastLane._answer

    def counting(self, scope, body):
        answer = original(self, scope, body)
        answered.append(answer is not None)
        return answer

    monkeypatch.setattr(fastlane.VerifyChainFastLane, "_answer", counting)
    return fed, plain, answered


def _both(fed, plain, body, *, role="platform", content_type="application/json", raw: bytes | None = None, token=None):
    headers = {"Content-Type": content_type} if content_type else {}
    headers["X-Request-ID"] = "fastlane-comparison"  # the same id to both apps: a generated one would differ
    if role:
        headers["Authorization"] = f"Bearer {token or fed.tokens[role]}"
    data = raw if raw is not None else json.dumps(body).encode()
    with bridge_env():
        a = fed.client.post("/v1/verify/chain", headers=headers, content=data)
        b = plain.post("/v1/verify/chain", headers=headers, content=data)
    assert (a.status_code, a.headers.get("content-type"), a.content) == (b.status_code, b.headers.get("content-type"), b.content)
    assert sorted(a.headers.items()) == sorted(b.headers.items())
    assert a.headers["x-request-id"] == "fastlane-comparison"
    return a


def test_answers_are_byte_for_byte_the_routes(lanes):
    fed, plain, answered = lanes
    hk, gd = fed.chain_body("HK"), fed.chain_body("GD")
    bodies = [hk, hk, hk, gd, dict(hk, policies=[BRIDGE_MEDIUM]), dict(hk, policies=[BRIDGE_MEDIUM]),
              dict(hk, policies=["1.3.6.1.4.1.32473.77.1.2"], require_explicit_policy=True),
              dict(hk, revocation="off"), dict(hk, revocation="require"), dict(hk, inhibit_any_policy=True),
              dict(hk, trust_anchor=fed.ids["HK"]), dict(hk, at="2020-01-01T00:00:00Z")]
    bodies += [dict(hk, certificate=_leaf(fed, "HK", f"new leaf {i}")) for i in range(6)]
    for body in bodies:
        for _ in range(2):
            _both(fed, plain, body)
    assert sum(answered) >= 12, answered  # the repeated and the new-leaf questions went through the lane


def test_every_refusal_is_left_to_the_route(lanes):
    fed, plain, answered = lanes
    hk = fed.chain_body("HK")
    _both(fed, plain, hk)
    _both(fed, plain, hk)  # warm: the lane would answer this one
    with bridge_env():  # the issuer's token is now known to the lane's app too
        assert fed.client.get("/v1/issuers", headers=fed.h("issuer")).status_code == 200
    answered.clear()
    cases = [
        dict(body=hk, role=None),  # no token
        dict(body=hk, role="platform", token="bca_unknown"),
        dict(body=hk, role="issuer"),  # a role that may not verify
        dict(body=hk, content_type="text/plain"),
        dict(body=hk, content_type=None),
        dict(body=hk, content_type="application/json; charset=utf-8"),  # FastAPI's to judge
        dict(body=None, raw=b"{not json"),
        dict(body=None, raw=b"\xef\xbb\xbf" + json.dumps(hk).encode()),  # a BOM: json.loads takes it, jiter not
        dict(body=dict(hk, unexpected=1)),
        dict(body=dict(hk, certificate=123)),
        dict(body=dict(hk, certificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
        dict(body=dict(hk, trust_anchor="no-such-issuer")),
        dict(body=dict(hk, trust_anchor="../etc")),
        dict(body=dict(hk, policies=["not an oid"])),
        dict(body=dict(hk, at="yesterday")),
        dict(body=dict(hk, revocation="sometimes")),
        dict(body=dict(hk, certificate="\ud800")),
        dict(body=dict(hk, certificate=_leaf(fed, "HK", "expired", expired=True))),
        dict(body=None, raw=b""),
    ]
    for case in cases:
        body = case.pop("body")
        _both(fed, plain, body, **case)
    # headers given twice: whichever one FastAPI reads, the lane leaves it to it
    data = json.dumps(hk).encode()
    for headers in ([("content-type", "text/plain"), ("content-type", "application/json")],
                    [("authorization", "Bearer bca_unknown"), ("authorization", f"Bearer {fed.tokens['platform']}")]):
        full = [("authorization", f"Bearer {fed.tokens['platform']}"), ("content-type", "application/json")]
        names = {n for n, _ in headers}
        sent = [h for h in full if h[0] not in names] + headers
        with bridge_env():
            a = fed.client.post("/v1/verify/chain", headers=sent, content=data)
            b = plain.post("/v1/verify/chain", headers=sent, content=data)
        assert (a.status_code, a.content) == (b.status_code, b.content)
    assert not any(answered), answered


def test_a_body_over_the_limit_is_still_refused_before_the_lane(tmp_path):
    fed = make_federation(tmp_path / "home", codes=("HK",), max_body_bytes=2048)
    body = dict(fed.chain_body("HK"), intermediates=[fed.chain_body("HK")["intermediates"][0]] * 8)
    r = fed.client.post("/v1/verify/chain", headers=fed.h("platform"), json=body)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
