"""GET /v1/ready: 200 with each check while the bridge can work; 503
problem+json ``not_ready`` naming the failed check when it cannot -- here
the SQLite database removed, or made unreadable, under a running app, a
signer that cannot sign, and a CRL past its nextUpdate."""
from __future__ import annotations

import datetime as dt
import os

import pytest

from bridge import readiness

from .conftest import assert_problem, bridge_env, make_federation


@pytest.fixture
def fed(tmp_path):
    federation = make_federation(tmp_path / "home", codes=())
    with federation.client:
        yield federation
    federation.ca.close()


def _ready(fed):
    with bridge_env():
        return fed.client.get("/v1/ready")  # no token: probes carry none


def test_ready_then_not_ready_when_the_database_is_gone(fed):
    r = _ready(fed)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json" and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "signer", "crl", "epoch"}
    assert all(c["status"] == "ok" for c in body["checks"].values()), body

    database = fed.ca.settings.home / "bridge.db"
    moved = database.with_name("bridge.db.moved")
    database.rename(moved)
    r = _ready(fed)
    problem = assert_problem(r, 503, "not_ready")
    assert problem["failed"] == ["database"]
    assert problem["checks"]["database"]["status"] == "failed"
    assert "gone" in problem["checks"]["database"]["detail"] and "database" in problem["detail"]
    assert problem["checks"]["signer"]["status"] == "ok"  # only the failing check is named
    assert not database.exists()  # the check did not create an empty database in its place
    assert r.headers["x-request-id"]

    moved.rename(database)
    assert _ready(fed).status_code == 200


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_not_ready_when_the_database_is_unreadable(fed):
    database = fed.ca.settings.home / "bridge.db"
    mode = database.stat().st_mode
    database.chmod(0)
    try:
        problem = assert_problem(_ready(fed), 503, "not_ready")
        assert problem["failed"] == ["database"]
    finally:
        database.chmod(mode)
    assert _ready(fed).status_code == 200


def test_not_ready_when_the_database_does_not_answer(fed, monkeypatch):
    # A PostgreSQL server that went away looks like this from the store: the
    # query raises. The epoch poll, due at once, fails with it.
    from bridge.store import StoreError

    def down():
        raise StoreError("cannot reach the database: connection refused")

    monkeypatch.setattr(fed.ca.store, "epoch", down)
    fed.app.state.verification.invalidate()  # the epoch read is due now
    problem = assert_problem(_ready(fed), 503, "not_ready")
    assert problem["failed"] == ["database", "epoch"], problem
    assert "connection refused" in problem["checks"]["database"]["detail"]


def test_not_ready_when_the_signer_cannot_sign(fed, monkeypatch):
    from bridge.signer import SignerError

    key = fed.ca.authority.keys[0]

    def broken(_data):
        raise SignerError("PKCS#11 signing failed: SessionHandleInvalid")

    monkeypatch.setattr(key.signer, "sign", broken)
    problem = assert_problem(_ready(fed), 503, "not_ready")
    assert "signer" in problem["failed"]
    assert "SessionHandleInvalid" in problem["checks"]["signer"]["detail"]


def test_a_signature_that_does_not_verify_is_not_ready(fed, monkeypatch):
    key = fed.ca.authority.keys[0]
    real = key.signer.sign
    monkeypatch.setattr(key.signer, "sign", lambda data: real(data + b"tampered"))
    problem = assert_problem(_ready(fed), 503, "not_ready")
    assert problem["failed"] == ["signer"]


def test_crl_past_next_update(fed):
    _this_update, next_update = readiness.crl_times(fed.ca)
    with bridge_env():
        assert readiness.check_crl(fed.ca, now=next_update - dt.timedelta(seconds=1)).ok
        late = readiness.check_crl(fed.ca, now=next_update + dt.timedelta(seconds=1))
    assert not late.ok and "past its nextUpdate" in late.detail


def test_ready_is_documented(fed):
    with bridge_env():
        spec = fed.client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/ready"]["get"]
    assert "security" not in operation
    assert list(operation["responses"]["503"]["content"]) == ["application/problem+json"]
    assert "/metrics" in spec["paths"]
