"""Maker-checker through the real server: ``bridgeca serve`` with
approvals_required 2 on SQLite and on PostgreSQL, two admin tokens made by
``bridgeca token create``. Approve and revoke answer 202 with a proposal;
the proposer confirming is 403 same_admin; the other admin's confirmation
does the action; a cancelled proposal cannot be confirmed. The audit log
(GET /v1/audit) and its public checkpoints (GET /v1/audit/checkpoints) show
it, and ``bridgeca audit verify --checkpoints URL`` checks the home against
the server's checkpoints."""
from __future__ import annotations

import json
import subprocess

import pytest
import sqlalchemy as sa
from cryptography import x509

from bridge import checkpoints
from tests.bridge.members import make_member, pem

from .conftest import postgres_schema
from .test_server import READY_WITHIN, REPO, bridgeca, env, free_port, http, stop


def _run(environment: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(bridgeca() + list(args), env=environment, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, tmp_path):
    import time

    with _database(request.param) as database_url:
        environment = env()
        if database_url:
            environment["BRIDGECA_DATABASE_URL"] = database_url
        home = tmp_path / "home"
        done = _run(environment, "init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
        assert done.returncode == 0, done.stderr
        tokens = {}
        for name, role in (("admin1", "admin"), ("admin2", "admin"), ("issuer", "issuer"), ("platform", "platform")):
            made = _run(environment, "token", "create", "--home", str(home), "--role", role)
            assert made.returncode == 0, made.stderr
            tokens[name] = made.stdout.strip().splitlines()[-1]
        port = free_port()
        served_env = dict(environment, BRIDGECA_APPROVALS_REQUIRED="2", BRIDGECA_AUDIT_CHECKPOINT_ENTRIES="5")
        log = open(tmp_path / "server.log", "w+b")
        process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                                   env=served_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + READY_WITHIN
            while True:
                try:
                    if http("GET", base + "/v1/health")[0] == 200:
                        break
                except OSError:
                    pass
                assert process.poll() is None, (log.seek(0), log.read())
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.1)
            yield {"base": base, "tokens": tokens, "home": home, "env": environment,
                   "db_url": database_url or f"sqlite:///{home / 'bridge.db'}"}
        finally:
            stop(process)
            log.close()


def _database(kind: str):
    import contextlib

    if kind == "sqlite":
        return contextlib.nullcontext(None)
    return postgres_schema()


def _json(response) -> dict:
    status, headers, body = response
    return json.loads(body)


def _problem(response, status: int, code: str) -> dict:
    got, headers, body = response
    assert got == status, body
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["code"] == code, problem
    return problem


def test_maker_checker_needs_two_different_admins(served):
    base, t = served["base"], served["tokens"]
    member = make_member("HK")
    status, _, body = http("POST", base + "/v1/issuers", t["issuer"], {
        "name": "Hong Kong CA", "jurisdiction": "HK", "root_certificate": pem(member.root).decode(),
        "policy_mappings": member.mappings()})
    assert status == 201, body
    enrollment = json.loads(body)["id"]

    # Approve: a proposal, nothing done yet.
    status, _, body = http("POST", f"{base}/v1/issuers/{enrollment}/approve", t["admin1"])
    assert status == 202, body
    proposal = json.loads(body)["proposal"]
    assert proposal["action"] == "approve" and proposal["status"] == "pending" and proposal["proposer"].startswith("admin:")
    assert _json(http("GET", f"{base}/v1/issuers/{enrollment}", t["admin1"]))["status"] == "pending"

    # The proposer cannot confirm its own proposal; a platform token cannot at all.
    _problem(http("POST", f"{base}/v1/proposals/{proposal['id']}/confirm", t["admin1"]), 403, "same_admin")
    _problem(http("POST", f"{base}/v1/proposals/{proposal['id']}/confirm", t["platform"]), 403, "forbidden")
    assert _json(http("GET", f"{base}/v1/issuers/{enrollment}", t["admin1"]))["status"] == "pending"

    status, _, body = http("POST", f"{base}/v1/proposals/{proposal['id']}/confirm", t["admin2"])
    assert status == 200, body
    confirmed = json.loads(body)
    assert confirmed["proposal"]["status"] == "confirmed" and confirmed["proposal"]["decided_by"] != proposal["proposer"]
    assert confirmed["result"]["status"] == "active" and confirmed["result"]["cross_certificate"].startswith("-----BEGIN")
    serial = confirmed["result"]["serial"]
    assert _json(http("GET", f"{base}/v1/issuers/{enrollment}", t["admin1"]))["status"] == "active"
    _problem(http("POST", f"{base}/v1/proposals/{proposal['id']}/confirm", t["admin2"]), 409, "proposal_not_pending")

    # Revoke: proposed, cancelled by the other admin, proposed again, confirmed.
    status, _, body = http("POST", f"{base}/v1/cross-certificates/{serial}/revoke", t["admin2"], {"reason": "keyCompromise"})
    assert status == 202, body
    first = json.loads(body)["proposal"]
    pending = _json(http("GET", base + "/v1/proposals?status=pending", t["admin1"]))
    assert [p["id"] for p in pending] == [first["id"]] and pending[0]["params"] == {"serial": serial, "reason": "keyCompromise"}
    cancelled = _json(http("POST", f"{base}/v1/proposals/{first['id']}/cancel", t["admin1"], {"reason": "wrong reason"}))
    assert cancelled["proposal"]["status"] == "cancelled"
    _problem(http("POST", f"{base}/v1/proposals/{first['id']}/confirm", t["admin1"]), 409, "proposal_not_pending")
    crosses = _json(http("GET", f"{base}/v1/issuers/{enrollment}", t["admin1"]))["cross_certificates"]
    assert [c["status"] for c in crosses] == ["issued"]

    second = json.loads(http("POST", f"{base}/v1/cross-certificates/{serial}/revoke", t["admin2"], {"reason": "keyCompromise"})[2])["proposal"]
    done = _json(http("POST", f"{base}/v1/proposals/{second['id']}/confirm", t["admin1"]))
    assert done["result"]["status"] == "revoked" and done["result"]["reason"] == "keyCompromise"
    crosses = _json(http("GET", f"{base}/v1/issuers/{enrollment}", t["admin1"]))["cross_certificates"]
    assert [(c["status"], c["revocation_reason"]) for c in crosses] == [("revoked", "keyCompromise")]
    assert _json(http("GET", base + "/v1/proposals?status=pending", t["admin1"])) == []

    # The audit log tells who proposed and who confirmed; paged.
    page = _json(http("GET", base + "/v1/audit?action=proposal.&limit=2", t["admin1"]))
    assert [e["action"] for e in page["entries"]] == ["proposal.create", "proposal.confirm"] and page["next_after"]
    rest = _json(http("GET", f"{base}/v1/audit?action=proposal.&after={page['next_after']}", t["admin1"]))
    actions = [e["action"] for e in page["entries"] + rest["entries"]]
    assert actions == ["proposal.create", "proposal.confirm", "proposal.create", "proposal.cancel", "proposal.create",
                       "proposal.confirm"]
    assert rest["next_after"] is None
    confirm_entry = page["entries"][1]
    assert confirm_entry["details"]["proposer"] == proposal["proposer"] and confirm_entry["actor"] == confirmed["proposal"]["decided_by"]
    _problem(http("GET", base + "/v1/audit", t["platform"]), 403, "forbidden")
    _problem(http("GET", base + "/v1/audit"), 401, "unauthorized")


def test_checkpoints_are_public_and_check_the_home(served):
    base, t, home = served["base"], served["tokens"], served["home"]
    for _ in range(6):  # past the checkpoint interval of 5 entries
        assert http("POST", base + "/v1/tokens", t["admin1"], {"role": "platform"})[0] == 201
    status, headers, body = http("GET", base + "/v1/audit/checkpoints")
    assert status == 200 and headers["content-type"] == "application/json"
    document = json.loads(body)
    bridge_certificate = x509.load_pem_x509_certificate(http("GET", base + "/v1/ca/certificate")[2])
    claims, findings = checkpoints.check_signatures(document, [bridge_certificate])
    assert findings == [] and len(claims) >= 2
    newest = _json(http("GET", base + "/v1/audit?limit=1000", t["admin1"]))["entries"]
    by_seq = {e["seq"]: e["entry_hash"] for e in newest}
    assert all(by_seq[c.entries] == c.head for c in claims)

    url = base + "/v1/audit/checkpoints"
    ok = _run(served["env"], "audit", "verify", "--home", str(home), "--checkpoints", url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "checkpoints: " in ok.stdout and "state tables match the log" in ok.stdout

    # A token un-revoked behind the log's back (SQL) is found by the replay.
    revoked = json.loads(http("POST", base + "/v1/tokens", t["admin1"], {"role": "admin"})[2])["id"]
    assert http("POST", f"{base}/v1/tokens/{revoked}/revoke", t["admin1"])[0] == 200
    engine = sa.create_engine(served["db_url"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_token SET revoked_at = NULL WHERE id = :id"), {"id": revoked})
    finally:
        engine.dispose()
    found = _run(served["env"], "audit", "verify", "--home", str(home), "--checkpoints", url)
    assert found.returncode == 1
    assert found.stdout.strip().splitlines() == [
        f"TAMPERED: API token {revoked} is not revoked in the state tables, but the audit log says revoked"]
    unreachable = _run(served["env"], "audit", "verify", "--home", str(home), "--checkpoints", "http://127.0.0.1:1/x")
    assert unreachable.returncode == 2 and len(unreachable.stderr.strip().splitlines()) == 1
