"""The real server: ``bridgeca init`` and ``bridgeca token create`` make a
home, ``bridgeca serve`` (uvicorn) runs it on a free loopback port in a
subprocess, and the test speaks HTTP to it: health, an enrollment through to
a chain verification, 413 for oversized bodies (declared, and chunked without
an end), and the server is always stopped."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.bridge.members import make_member, pem

from .conftest import PASSPHRASE

REPO = Path(__file__).resolve().parents[2]
LIMIT = 64 * 1024
READY_WITHIN = 60.0  # seconds the server may take to come up (a guard, not a measurement)


def bridgeca() -> list[str]:
    exe = Path(sys.executable).with_name("bridgeca")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGECA_")}
    e["BRIDGECA_KEY_PASSPHRASE"] = PASSPHRASE
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def run(*args: str) -> str:
    done = subprocess.run(bridgeca() + list(args), env=env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def http(method: str, url: str, token: str | None = None, body: object = None, raw: bytes | None = None,
         headers: dict | None = None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("served") / "home"
    run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
    tokens = {role: run("token", "create", "--home", str(home), "--role", role).strip().splitlines()[-1]
              for role in ("admin", "issuer", "platform")}
    port = free_port()
    log = open(home.parent / "server.log", "w+b")
    process = subprocess.Popen(
        bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port), "--max-body-bytes", str(LIMIT)],
        env=env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base, log)
        yield {"base": base, "port": port, "tokens": tokens, "home": home, "process": process}
    finally:
        stop(process)
        log.close()


def wait_healthy(process: subprocess.Popen, base: str, log=None, *, context=None, within: float = READY_WITHIN) -> None:
    """Until a started ``bridgeca serve`` answers GET /v1/health with 200.
    Fails the test with the end of the server's log (an open binary file or
    a path) when the server exits, or does not answer within ``within``
    seconds (then it is stopped): a guard against a hang, not a measurement."""
    deadline = time.monotonic() + within
    while True:
        if process.poll() is not None:
            pytest.fail(f"bridgeca serve exited with {process.returncode}: {_log_tail(log)}")
        try:
            with urllib.request.urlopen(base + "/v1/health", timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"bridgeca serve did not answer /v1/health: {_log_tail(log)}")
        time.sleep(0.1)


def _log_tail(log) -> str:
    if log is None:
        return "(its output was not kept)"
    if isinstance(log, (str, Path)):
        return Path(log).read_text(errors="replace")[-2000:]
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGINT (uvicorn, and the workers' supervisor, shut down gracefully on
    it), then SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def test_health(server):
    status, headers, body = http("GET", server["base"] + "/v1/health")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"status": "ok"}
    assert "server" not in {k.lower() for k in headers}  # serve hides uvicorn's banner


def test_enroll_approve_and_verify_a_chain(server):
    base, tokens = server["base"], server["tokens"]
    status, _, cert_pem = http("GET", base + "/v1/ca/certificate")
    assert status == 200
    from cryptography import x509

    bridge = x509.load_pem_x509_certificate(cert_pem)
    hk = make_member("HK")
    status, _, body = http("POST", base + "/v1/issuers", tokens["issuer"], {
        "name": "Hong Kong Served CA", "jurisdiction": "HK", "root_certificate": pem(hk.root).decode(), "policy_mappings": hk.mappings()})
    assert status == 201, body
    enrollment = json.loads(body)["id"]
    status, _, body = http("POST", f"{base}/v1/issuers/{enrollment}/approve", tokens["admin"])
    assert status == 200 and json.loads(body)["status"] == "active", body
    status, _, body = http("POST", f"{base}/v1/issuers/{enrollment}/reverse-certificate", tokens["issuer"],
                           {"certificate": pem(hk.reverse_certificate(bridge)).decode()})
    assert status == 201, body

    chain = {"certificate": pem(hk.leaf).decode(), "intermediates": [pem(hk.issuing).decode()], "policies": [hk.mappings()[0]["bridge_policy"]]}
    status, headers, body = http("POST", base + "/v1/verify/chain", tokens["platform"], chain)
    assert status == 200 and headers["content-type"] == "application/json", body
    result = json.loads(body)
    assert result["valid"] is True, result["error"]
    assert result["path"][-1]["subject"] == bridge.subject.rfc4514_string()

    status, headers, body = http("POST", base + "/v1/verify/chain", tokens["issuer"], chain)
    assert status == 403 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "forbidden"
    status, _, body = http("POST", base + "/v1/verify/chain", None, chain)
    assert status == 401 and json.loads(body)["code"] == "unauthorized"


def test_oversized_declared_body_is_413(server):
    status, headers, body = http("POST", server["base"] + "/v1/verify/chain", server["tokens"]["platform"],
                                 raw=b"{" + b" " * LIMIT + b"}", headers={"Content-Type": "application/json"})
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "body_too_large"


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def test_chunked_body_without_end_is_413_before_it_is_read_whole(server):
    """Send four times the limit in chunks and never the final chunk: a server
    that waited for the whole body would never answer (the socket timeout
    fails the test); this one answers 413 once the limit is passed."""
    token = server["tokens"]["platform"]
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/verify/chain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n"
        )
        piece = b" " * 8192
        try:
            for _ in range(4 * LIMIT // len(piece)):
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed its side after answering: the answer is still in our buffer
        status, headers, body = read_response(sock)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "body_too_large"
    # and the server is still serving
    assert http("GET", server["base"] + "/v1/health")[0] == 200


def test_serve_refuses_a_bad_home(tmp_path):
    done = subprocess.run(bridgeca() + ["serve", "--home", str(tmp_path / "nothing"), "--port", str(free_port())],
                          env=env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "not_initialised" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args,message", [
    (["--max-body-bytes", "0"], "--max-body-bytes"),
    (["--workers", "0"], "--workers"),
    (["--port", "70000"], "out of range"),
])
def test_serve_refuses_bad_options(tmp_path, args, message):
    done = subprocess.run(bridgeca() + ["serve", "--home", str(tmp_path)] + args,
                          env=env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
