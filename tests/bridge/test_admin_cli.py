"""The administration commands, each with --json, on a bridge home
(``--home``) and on a real ``bridgeca serve`` subprocess (``--url``): the
same domain calls, audited (actor ``cli`` on the home, the admin token on a
server); token expiry (stored, listed, refused with 401)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from api.cli import main
from bridge.service import BridgeCA
from bridge.store import utcnow
from tests.api.test_server import wait_healthy

from .conftest import PASSPHRASE
from .members import make_member, pem

REPO = Path(__file__).resolve().parents[2]


def run_json(capsys, *args) -> object:
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def run_fail(capsys, expected: int, *args) -> str:
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == expected, (code, captured.out, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def enroll(ca: BridgeCA, code: str) -> str:
    member = make_member(code)
    return ca.enroll(name=f"{member.display} CA", jurisdiction=code, root_certificate=pem(member.root),
                     policy_mappings=member.mappings())["id"]


def last_audit(home: Path, count: int) -> list[tuple[str, str]]:
    store = BridgeCA.open_store_only(home)
    try:
        return [(e.actor, e.action) for e in store.audit_entries()[-count:]]
    finally:
        store.close()


def exercise(capsys, target: list[str], ca: BridgeCA, home: Path, actor: str) -> None:
    """Every admin command once, through ``target`` (--home or --url)."""
    approve_id, reject_id = enroll(ca, "HK"), enroll(ca, "GD")

    listed = run_json(capsys, "issuer", "list", *target)
    assert {v["id"]: v["status"] for v in listed} == {approve_id: "pending", reject_id: "pending"}
    shown = run_json(capsys, "issuer", "show", approve_id, *target)
    assert shown["id"] == approve_id and shown["cross_certificates"] == []

    approved = run_json(capsys, "issuer", "approve", approve_id, *target)
    assert approved["status"] == "active" and "BEGIN CERTIFICATE" in approved["cross_certificate"]
    assert last_audit(home, 1) == [(actor, "enrollment.approve")]

    rejected = run_json(capsys, "issuer", "reject", reject_id, "--reason", "wrong root", *target)
    assert rejected["status"] == "rejected"
    assert last_audit(home, 1) == [(actor, "enrollment.rejected")]
    assert "invalid_state" in run_fail(capsys, 1, "issuer", "reject", reject_id, *target)

    revoked = run_json(capsys, "cross-certificate", "revoke", approved["serial"], "--reason", "keyCompromise", *target)
    assert revoked == {"serial": approved["serial"], "status": "revoked", "reason": "keyCompromise",
                       "crl_number": revoked["crl_number"]}
    assert ca.issuer(approve_id)["cross_certificates"][0]["revocation_reason"] == "keyCompromise"
    assert "already_revoked" in run_fail(capsys, 1, "cross-certificate", "revoke", approved["serial"], *target)

    issued = run_json(capsys, "crl", "issue", *target)
    assert issued["crl_number"] == revoked["crl_number"] + 1
    assert ca.store.latest_crl().number == issued["crl_number"]
    assert last_audit(home, 1) == [(actor, "crl.issue")]

    created = run_json(capsys, "token", "create", "--role", "platform", "--expires-in", "30d", *target)
    assert created["token"].startswith("bca_") and created["role"] == "platform" and created["state"] == "active"
    assert ca.principal(created["token"]) == (created["id"], "platform")
    assert last_audit(home, 1) == [(actor, "token.create")]
    listed = run_json(capsys, "token", "list", *target)
    mine = next(t for t in listed if t["id"] == created["id"])
    expires = mine["expires_at"]
    assert expires is not None and timedelta(days=29) < (
        __import__("datetime").datetime.fromisoformat(expires) - utcnow()) <= timedelta(days=30)
    text = json.dumps(listed)
    assert created["token"] not in text and "hash" not in text  # never the token, never its hash

    revoked_token = run_json(capsys, "token", "revoke", "--id", str(created["id"]), *target)
    assert revoked_token["state"] == "revoked" and revoked_token["revoked_at"]
    assert ca.principal(created["token"]) is None
    assert last_audit(home, 1) == [(actor, "token.revoke")]
    assert "not_found" in run_fail(capsys, 1, "issuer", "show", "0" * 32, *target)


# --------------------------------------------------------------------------- on the home


def test_every_admin_command_on_the_home(bridge, bridge_home, capsys):
    exercise(capsys, ["--home", str(bridge_home)], bridge, bridge_home, "cli")
    assert bridge.verify_audit().intact


def test_plain_output_and_usage_errors(bridge, bridge_home, capsys):
    home = str(bridge_home)
    enrollment = enroll(bridge, "MO")
    assert main(["issuer", "list", "--home", home]) == 0
    out = capsys.readouterr().out
    assert enrollment in out and "pending" in out
    assert main(["token", "create", "--home", home, "--role", "issuer", "--expires-in", "12h"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("bca_") and "expires" in out[0]
    assert main(["token", "list", "--home", home]) == 0
    listing = capsys.readouterr().out
    assert "issuer" in listing and "active" in listing and out[-1] not in listing

    assert "give --home" in run_fail(capsys, 2, "issuer", "list")
    assert "not both" in run_fail(capsys, 2, "issuer", "list", "--home", home, "--url", "http://127.0.0.1:1")
    assert "--expires-in" in run_fail(capsys, 2, "token", "create", "--home", home, "--role", "admin", "--expires-in", "0d")
    assert "--expires-in" in run_fail(capsys, 2, "token", "create", "--home", home, "--role", "admin", "--expires-in", "soon")
    assert "invalid_serial" in run_fail(capsys, 2, "cross-certificate", "revoke", "zz", "--home", home)


def test_an_expired_token_is_refused_with_401(bridge):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from bridge.tokens import hash_token

    expired, live = "bca_expired-" + "x" * 32, "bca_live-" + "y" * 32
    bridge.store.add_token(actor="test", role="admin", token_hash=hash_token(expired), expires_at=utcnow() - timedelta(seconds=1))
    bridge.store.add_token(actor="test", role="admin", token_hash=hash_token(live), expires_at=utcnow() + timedelta(days=1))
    client = TestClient(create_app(bridge))
    answer = client.get("/v1/issuers", headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert client.get("/v1/issuers", headers={"Authorization": f"Bearer {live}"}).status_code == 200
    states = {t["id"]: t["state"] for t in bridge.tokens()}
    assert sorted(states.values()) == ["active", "expired"]


def test_a_cached_token_stops_at_its_expiry():
    """The per-process token cache lives for an epoch; expiry bumps none, so the cache checks it."""
    from api.security import PrincipalCache

    cache = PrincipalCache()
    cache.remember("h1", 7, (1, "admin"), time.time() - 1)
    cache.remember("h2", 7, (2, "admin"), time.time() + 3600)
    cache.remember("h3", 7, (3, "admin"), None)
    assert cache.cached("h1", 7) is None
    assert cache.cached("h2", 7) == (2, "admin") and cache.cached("h3", 7) == (3, "admin")


# --------------------------------------------------------------------------- on a server


@pytest.fixture
def served(bridge, bridge_home):
    from tests.api.test_server import bridgeca, free_port, stop

    admin = bridge.create_token("admin")
    platform = bridge.create_token("platform")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGECA_")}
    env["BRIDGECA_KEY_PASSPHRASE"] = PASSPHRASE
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    port = free_port()
    log = open(bridge_home.parent / "server.log", "w+b")
    # No BRIDGECA_DATABASE_URL: the server finds a PostgreSQL home's database through config.json.
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(bridge_home), "--port", str(port)],
                               env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base, log)
        yield {"base": base, "admin": admin, "platform": platform}
    finally:
        stop(process)
        log.close()


def test_every_admin_command_on_a_server(bridge, bridge_home, served, capsys, monkeypatch):
    admin_id, _ = bridge.principal(served["admin"])
    monkeypatch.setenv("BRIDGECA_TOKEN", served["admin"])  # the token from the environment
    exercise(capsys, ["--url", served["base"]], bridge, bridge_home, f"admin:{admin_id}")
    assert bridge.verify_audit().intact


def test_server_refusals_are_one_line(bridge, served, capsys, monkeypatch):
    monkeypatch.delenv("BRIDGECA_TOKEN", raising=False)
    base = served["base"]
    assert "admin token" in run_fail(capsys, 2, "issuer", "list", "--url", base)
    assert "forbidden" in run_fail(capsys, 1, "token", "list", "--url", base, "--token", served["platform"])
    assert "unauthorized" in run_fail(capsys, 1, "issuer", "list", "--url", base, "--token", "bca_" + "z" * 43)
    assert "invalid_serial" in run_fail(capsys, 2, "cross-certificate", "revoke", "zz", "--url", base, "--token", served["admin"])
    assert "unreachable" in run_fail(capsys, 1, "crl", "issue", "--url", "http://127.0.0.1:1", "--token", served["admin"])
    # The flag wins over the variable.
    monkeypatch.setenv("BRIDGECA_TOKEN", served["platform"])
    assert main(["token", "list", "--url", base, "--token", served["admin"], "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_version_in_a_real_process():
    from tests.api.test_server import bridgeca

    done = subprocess.run(bridgeca() + ["--version"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("bridgeca ") and done.stderr == ""
