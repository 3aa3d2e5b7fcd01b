"""Two server processes on one PostgreSQL database: a cross-certificate
revoked through one is refused by the other within 1 s, with caches warm on
both (issue 6). The revocation epoch in the database is what carries it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.bridge.conftest import PASSPHRASE
from tests.bridge.members import make_member, pem

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _start(home: Path, port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--home", str(home), "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _wait_healthy(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            if _call("GET", f"http://127.0.0.1:{port}/v1/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not come up within 30 s")


def test_revocation_through_one_server_is_seen_by_the_other_within_a_second(postgres_schema_url, tmp_path, monkeypatch):
    from bridge.service import BridgeCA

    monkeypatch.setenv("BRIDGECA_DATABASE_URL", postgres_schema_url)
    home = tmp_path / "bridge"
    hk = make_member("HK")
    with BridgeCA.init(home) as ca:
        admin, platform = ca.create_token("admin"), ca.create_token("platform")
        enrollment = ca.enroll(name="Hong Kong", jurisdiction="HK", root_certificate=pem(hk.root), policy_mappings=hk.mappings())
        serial = ca.approve(enrollment["id"])["serial"]

    env = dict(os.environ, BRIDGECA_DATABASE_URL=postgres_schema_url, BRIDGECA_KEY_PASSPHRASE=PASSPHRASE)
    ports = [_free_port(), _free_port()]
    servers = [_start(home, port, env) for port in ports]
    try:
        for proc, port in zip(servers, ports, strict=True):
            _wait_healthy(proc, port)
        body = {"certificate": pem(hk.leaf).decode(), "intermediates": [pem(hk.issuing).decode()]}
        # Warm both servers' caches (Verifier, prefix and result caches).
        for port in ports:
            for _ in range(3):
                status, result = _call("POST", f"http://127.0.0.1:{port}/v1/verify/chain", platform, body)
                assert status == 200 and result["valid"], result

        status, revoked = _call("POST", f"http://127.0.0.1:{ports[0]}/v1/cross-certificates/{serial}/revoke", admin, {"reason": "keyCompromise"})
        assert status == 200 and revoked["status"] == "revoked"
        # The other process learns of it through the epoch: one second later
        # its answer must already have changed.
        time.sleep(1.0)
        status, result = _call("POST", f"http://127.0.0.1:{ports[1]}/v1/verify/chain", platform, body)
        assert status == 200
        assert result["valid"] is False
        assert result["error"]["code"] == "revoked"
        assert result["error"]["certificate"] == 2  # the cross-certificate
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
