"""The request-body limit (api/limits.py) answers 413 before the body is read
whole: driven through the real application as an ASGI callable, with a
client that never stops sending, so an implementation that read on until the
end would never answer (the test fails on the guard, not on a clock)."""
from __future__ import annotations

import asyncio
import json

import pytest

from api.app import create_app
from api.limits import DRAIN_BYTES

from .conftest import PROBLEM

CHUNK = 16 * 1024
LIMIT = 64 * 1024
GUARD = 4 * (LIMIT + DRAIN_BYTES) // CHUNK  # chunks: an application reading past this is reading "forever"


class EndlessBody(Exception):
    pass


def run_asgi(app, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks):
    """Send the request with ``chunks`` (an iterator of bytes; more_body until it ends) and collect the response."""
    pulled = 0
    messages = []

    async def receive():
        nonlocal pulled
        pulled += 1
        if pulled > GUARD:
            raise EndlessBody("the application kept reading")
        try:
            body = next(chunks)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1),
             "server": ("testserver", 80), "scheme": "http", "root_path": ""}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, pulled


def endless(pattern: bytes = b"x"):
    while True:
        yield pattern * CHUNK


@pytest.fixture(scope="module")
def small_app(federation):
    return create_app(federation.ca, max_body_bytes=LIMIT)


@pytest.mark.parametrize("path,ctype,auth", [
    ("/v1/verify/chain", b"application/json", "platform"),
    ("/v1/verify/signature", b"application/json", "platform"),
    ("/v1/issuers", b"application/json", "issuer"),
    ("/v1/ocsp", b"application/ocsp-request", None),
])
def test_endless_chunked_body_is_refused_early(federation, small_app, path, ctype, auth):
    headers = [(b"content-type", ctype), (b"transfer-encoding", b"chunked")]
    if auth:
        headers.append((b"authorization", f"Bearer {federation.tokens[auth]}".encode()))
    status, response_headers, body, pulled = run_asgi(small_app, "POST", path, headers, endless())
    assert status == 413
    assert response_headers[b"content-type"] == PROBLEM.encode()
    assert json.loads(body)["code"] == "body_too_large"
    # it stopped reading the endless body once past the limit and the drain bound
    assert pulled <= (LIMIT + DRAIN_BYTES) // CHUNK + 2


def test_declared_length_far_over_the_limit_reads_nothing(federation, small_app):
    """Over the limit by more than the drain bound: refused without reading."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(LIMIT + DRAIN_BYTES + 1).encode()),
               (b"authorization", f"Bearer {federation.tokens['platform']}".encode())]
    status, response_headers, body, pulled = run_asgi(small_app, "POST", "/v1/verify/chain", headers, endless())
    assert status == 413 and json.loads(body)["code"] == "body_too_large"
    assert pulled == 0
    assert response_headers[b"connection"] == b"close"


def test_declared_length_with_expect_continue_reads_nothing(federation, small_app):
    """The client waits for 100 Continue before sending: nothing to drain, answered at once."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(LIMIT + 1).encode()),
               (b"expect", b"100-continue"), (b"authorization", f"Bearer {federation.tokens['platform']}".encode())]
    status, _, body, pulled = run_asgi(small_app, "POST", "/v1/verify/chain", headers, endless())
    assert status == 413 and json.loads(body)["code"] == "body_too_large"
    assert pulled == 0


def test_declared_length_a_little_over_the_limit_is_read_to_its_end_then_refused(federation, small_app):
    """A client that sends first (urllib): its body is read and dropped, so it
    gets the 413 rather than a reset; the handler never sees it."""
    size = LIMIT + 3 * CHUNK
    pieces = iter([b"x" * CHUNK] * (size // CHUNK))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(size).encode()),
               (b"authorization", f"Bearer {federation.tokens['platform']}".encode())]
    status, _, body, pulled = run_asgi(small_app, "POST", "/v1/verify/chain", headers, pieces)
    assert status == 413 and json.loads(body)["code"] == "body_too_large"
    assert pulled == size // CHUNK + 1  # every chunk, then the end of the body


def test_a_body_under_the_limit_in_chunks_is_served(federation, small_app):
    payload = json.dumps(federation.chain_body("HK")).encode()
    assert len(payload) < LIMIT
    pieces = iter([payload[i:i + 100] for i in range(0, len(payload), 100)])
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked"),
               (b"authorization", f"Bearer {federation.tokens['platform']}".encode())]
    status, _, body, _ = run_asgi(small_app, "POST", "/v1/verify/chain", headers, pieces)
    assert status == 200, body
    assert json.loads(body)["valid"] is True


def test_exactly_the_limit_is_allowed(federation):
    """The limit is inclusive: a body of exactly max_body_bytes reaches the handler (and is judged there)."""
    body = json.dumps(federation.chain_body("HK")).encode()
    app = create_app(federation.ca, max_body_bytes=len(body))
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        ok = client.post("/v1/verify/chain", content=body, headers=federation.h("platform", **{"Content-Type": "application/json"}))
        assert ok.status_code == 200 and ok.json()["valid"] is True
        over = client.post("/v1/verify/chain", content=body + b" ", headers=federation.h("platform", **{"Content-Type": "application/json"}))
        assert over.status_code == 413 and over.json()["code"] == "body_too_large"


def test_default_limit_is_one_mebibyte(federation):
    assert federation.app.state.max_body_bytes == 1 << 20
    assert federation.ca.settings.max_body_bytes == 1 << 20


def test_the_limit_comes_from_the_settings_only(tmp_path):
    """One source: BridgeSettings.max_body_bytes (env BRIDGECA_MAX_BODY_BYTES
    over config.json), read when the bridge is opened; create_app_from_home
    (what every uvicorn worker runs) uses it."""
    from api.app import create_app_from_home
    from bridge.service import BridgeCA

    from .conftest import bridge_env

    with bridge_env() as env:
        BridgeCA.init(tmp_path / "home", base_url="https://bridge.gd.example").close()
        env.setenv("BRIDGECA_MAX_BODY_BYTES", "4096")
        app = create_app_from_home(tmp_path / "home")
        try:
            assert app.state.max_body_bytes == 4096 == app.state.ca.settings.max_body_bytes
        finally:
            app.state.ca.close()


# --------------------------------------------------------------------------- a real server, a client that sends first

SERVED_LIMIT = 4096


def start_server(home, args, extra_env=None, scheme="http", ssl_context=None):
    """``bridgeca serve --home HOME *args`` on a free loopback port, once
    /v1/health answers; returns (process, base URL, log file). Also used by
    test_tls and test_rate_limit."""
    import subprocess

    from .test_server import bridgeca, env, free_port, wait_healthy

    port = free_port()
    log = open(home.parent / f"server-{port}.log", "w+b")
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)] + list(args),
                               env={**env(), **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT)
    base = f"{scheme}://127.0.0.1:{port}"
    wait_healthy(process, base, log, context=ssl_context)
    return process, base, log


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from .test_server import run, stop

    home = tmp_path_factory.mktemp("body-limit") / "home"
    run("init", "--home", str(home), "--base-url", "https://bridge.gd.example")
    token = run("token", "create", "--home", str(home), "--role", "platform").strip().splitlines()[-1]
    process, base, log = start_server(home, ["--max-body-bytes", str(SERVED_LIMIT)])
    try:
        yield {"base": base, "token": token}
    finally:
        stop(process)
        log.close()


@pytest.mark.parametrize("size", [SERVED_LIMIT + 1, 256 * 1024, 8 * 1024 * 1024])
def test_urllib_sending_the_whole_body_first_gets_the_413(served, size):
    """urllib writes the whole request before it reads. Without the drain, a
    body larger than the kernels' buffers (over loopback about 3 MiB; 4 MB
    and more failed, measured) made the server's close a reset, and urllib
    raised URLError (connection reset, broken pipe) instead of reading the 413."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(served["base"] + "/v1/verify/chain", data=b"{" + b" " * (size - 2) + b"}", method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {served['token']}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    assert caught.value.code == 413
    assert caught.value.headers["content-type"] == PROBLEM
    assert json.loads(caught.value.read())["code"] == "body_too_large"


def test_the_server_still_serves_within_the_limit(served):
    import urllib.request

    with urllib.request.urlopen(served["base"] + "/v1/health", timeout=60) as r:
        assert r.status == 200


@pytest.mark.parametrize("value", ["500", "0", "-1"])
def test_serve_refuses_a_limit_the_settings_refuse_in_one_line(tmp_path, value):
    import subprocess

    from .test_server import bridgeca, env, free_port

    done = subprocess.run(bridgeca() + ["serve", "--home", str(tmp_path), "--port", str(free_port()), "--max-body-bytes", value],
                          env=env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--max-body-bytes must be at least 1024" in done.stderr and "Traceback" not in done.stderr
