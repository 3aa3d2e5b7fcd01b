"""Request ids and structured logs: a sane incoming X-Request-ID is kept,
anything else replaced by a generated one; every response carries it (a
problem+json and a 413 from the body limit included); the access log line
of the request carries the same id. Read from a real ``bridgeca serve``'s
stderr, one JSON object per line, and from the in-process app."""
from __future__ import annotations

import io
import json
import logging
import re
import subprocess

import pytest

from api.observability import JsonFormatter, RequestIdFilter, TextFormatter, logging_config, sane_request_id

from .conftest import bridge_env, make_federation
from .test_server import REPO, bridgeca, env, free_port, http, run, stop, wait_healthy

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def captured(tmp_path):
    """The app's log records, formatted as ``bridgeca serve`` formats them."""
    fed = make_federation(tmp_path / "home", codes=("HK",))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("bridgeca")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with fed.client:
            yield fed, stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        fed.ca.close()


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _access(lines: list[dict], request_id: str) -> dict:
    found = [line for line in lines if line["logger"] == "bridgeca.access" and line["request_id"] == request_id]
    assert len(found) == 1, lines[-5:]
    return found[0]


def test_an_incoming_id_is_kept_and_logged(captured):
    fed, stream = captured
    with bridge_env():
        r = fed.client.post("/v1/verify/chain", headers=fed.h("platform", **{"X-Request-ID": "platform-7:req/42"}),
                            json=fed.chain_body("HK"))
    assert r.status_code == 200 and r.headers["x-request-id"] == "platform-7:req/42"
    line = _access(_lines(stream), "platform-7:req/42")
    assert line["method"] == "POST" and line["path"] == "/v1/verify/chain" and line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["time"].endswith("Z")
    assert fed.tokens["platform"] not in stream.getvalue()  # the bearer token is never logged


@pytest.mark.parametrize("incoming", ["", "a" * 129, "two words", "line\r\nbreak", "caf\u00e9", "<script>"])
def test_an_insane_id_is_replaced(captured, incoming):
    fed, stream = captured
    with bridge_env():
        r = fed.client.get("/v1/health", headers={"X-Request-ID": incoming.encode("utf-8")})
    assert r.status_code == 200
    generated = r.headers["x-request-id"]
    assert GENERATED.fullmatch(generated), generated
    assert _access(_lines(stream), generated)["path"] == "/v1/health"


def test_errors_carry_the_id_too(captured):
    fed, stream = captured
    with bridge_env():
        unauthorized = fed.client.post("/v1/verify/chain", json=fed.chain_body("HK"))
        too_large = fed.client.post("/v1/verify/chain", headers=fed.h("platform", **{"Content-Type": "application/json"}),
                                    content=b"[" + b" " * (2 << 20) + b"]")
    assert unauthorized.status_code == 401 and unauthorized.headers["content-type"] == "application/problem+json"
    assert too_large.status_code == 413 and too_large.headers["content-type"] == "application/problem+json"
    lines = _lines(stream)
    for response in (unauthorized, too_large):
        rid = response.headers["x-request-id"]
        assert GENERATED.fullmatch(rid)
        assert _access(lines, rid)["status"] == response.status_code
    assert unauthorized.headers["x-request-id"] != too_large.headers["x-request-id"]


def test_an_unexpected_error_is_a_500_problem_with_the_id(captured, monkeypatch):
    fed, stream = captured

    def broken(*_args, **_kwargs):
        raise RuntimeError("secret internal state")

    monkeypatch.setattr(fed.app.state.verification, "verify_chain", broken)
    monkeypatch.setattr(fed.app.state.verification, "quick_chain", lambda *a, **k: None)
    with bridge_env():
        r = fed.client.post("/v1/verify/chain", headers=fed.h("platform", **{"X-Request-ID": "boom-1"}), json=fed.chain_body("HK"))
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "internal_error" and "secret" not in r.text
    assert r.headers["x-request-id"] == "boom-1"
    lines = _lines(stream)
    errors = [line for line in lines if line["level"] == "error" and line["request_id"] == "boom-1"]
    assert errors and "RuntimeError: secret internal state" in errors[0]["exception"]  # the log has it, the client not
    assert _access(lines, "boom-1")["status"] == 500


def test_text_format_and_the_config():
    record = logging.LogRecord("bridgeca.access", logging.INFO, __file__, 1, "%s %s %d", ("GET", "/v1/health", 200), None)
    record.request_id, record.duration_ms = "abc", 1.5
    line = TextFormatter().format(record)
    assert "[abc] GET /v1/health 200 1.500ms" in line and "\n" not in line
    assert logging_config("text")["handlers"]["default"]["formatter"] == "text"
    with pytest.raises(ValueError):
        logging_config("xml")
    assert sane_request_id(b"ok-1") == "ok-1" and sane_request_id(b"\xff") is None


def test_served_json_logs_carry_the_response_id(tmp_path):
    home = tmp_path / "home"
    run("init", "--home", str(home), "--base-url", "https://bridge.gd.example")
    token = run("token", "create", "--home", str(home), "--role", "platform").strip().splitlines()[-1]
    port = free_port()
    stderr = open(tmp_path / "stderr.log", "w+b")
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
                                             "--log-format", "json"],
                               env=env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base)
        status, headers, _ = http("GET", base + "/v1/issuers", token=token, headers={"X-Request-ID": "served-1"})
        assert status == 200 and headers["X-Request-ID"] == "served-1"
        status, headers, _ = http("GET", base + "/v1/issuers", token="bca_wrong")
        assert status == 401
        generated = headers["X-Request-ID"]
        assert GENERATED.fullmatch(generated)
    finally:
        stop(process)  # flushes and closes stderr: every line is complete
        stderr.seek(0)
        text = stderr.read().decode()
        stderr.close()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert lines and all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    served = _access(lines, "served-1")
    assert (served["method"], served["path"], served["status"]) == ("GET", "/v1/issuers", 200)
    assert _access(lines, generated)["status"] == 401
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's own lines are JSON too
    assert token not in text and "bca_wrong" not in text
