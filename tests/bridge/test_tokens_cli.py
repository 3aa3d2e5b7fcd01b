"""API tokens from the command line: created with an id, revoked by it, and
refused from then on; every step in the audit log."""
from __future__ import annotations

import re

import pytest

from api.cli import main
from bridge.errors import BridgeError
from bridge.service import BridgeCA, parse_serial


def test_token_create_and_revoke(bridge, bridge_home, capsys):
    assert main(["token", "create", "--home", str(bridge_home), "--role", "platform"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    token = out[-1]
    token_id = int(re.search(r"id (\d+)", out[0]).group(1))
    assert bridge.principal(token) == (token_id, "platform")

    assert main(["token", "revoke", "--home", str(bridge_home), "--id", str(token_id)]) == 0
    assert bridge.principal(token) is None
    actions = [e.action for e in bridge.store.audit_entries()]
    assert actions[-2:] == ["token.create", "token.revoke"]

    assert main(["token", "revoke", "--home", str(bridge_home), "--id", str(token_id)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already_revoked" in err[0]
    assert main(["token", "revoke", "--home", str(bridge_home), "--id", "999999"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_found" in err[0]


@pytest.mark.parametrize("text", ["-5", "+5", "zz", ""])
def test_serials_must_be_hexadecimal_and_unsigned(text):
    with pytest.raises(BridgeError) as info:
        parse_serial(text)
    assert info.value.code == "invalid_serial" and info.value.kind == "malformed"


def test_body_limit_comes_from_the_settings(bridge_home, bridge, monkeypatch):
    from fastapi.testclient import TestClient

    from api.app import create_app

    monkeypatch.setenv("BRIDGECA_MAX_BODY_BYTES", "2048")
    with BridgeCA.open(bridge_home) as ca:
        assert ca.settings.max_body_bytes == 2048
        client = TestClient(create_app(ca))
        response = client.post("/v1/verify/chain", content=b"{" + b" " * 4000 + b"}", headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert response.json()["code"] == "body_too_large"
