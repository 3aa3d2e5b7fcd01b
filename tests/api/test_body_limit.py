"""The request-body limit (api/limits.py) answers 413 before the body is read
whole: driven through the real application as an ASGI callable, with a
client that never stops sending, so an implementation that read on until the
end would never answer (the test fails on the guard, not on a clock)."""
from __future__ import annotations

import asyncio
import json

import pytest

from api.app import create_app

from .conftest import PROBLEM

CHUNK = 16 * 1024
LIMIT = 64 * 1024
GUARD = 1000  # chunks: an application reading past this is reading "forever"


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
    assert pulled <= LIMIT // CHUNK + 2  # it stopped reading right after the limit


def test_declared_length_over_the_limit_reads_nothing(federation, small_app):
    headers = [(b"content-type", b"application/json"), (b"content-length", str(LIMIT + 1).encode()),
               (b"authorization", f"Bearer {federation.tokens['platform']}".encode())]
    status, _, body, pulled = run_asgi(small_app, "POST", "/v1/verify/chain", headers, endless())
    assert status == 413 and json.loads(body)["code"] == "body_too_large"
    assert pulled == 0


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
