"""`bridgeca demo` (what `make demo` runs) and the certs/ federation it serves.

The main test sets the demo up in a temporary home, starts the real server
(`bridgeca serve`, uvicorn) on a free loopback port, and runs the curl
commands the demo printed, checking the answers README.md shows.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parent.parent
CERTS = REPO / "certs"
FEDERATION = json.loads((CERTS / "federation.json").read_text())
MEMBERS = {m["code"]: m for m in FEDERATION["members"]}
BRIDGE_POLICY = FEDERATION["bridge_policy"]
DOC_ARC = "1.3.6.1.4.1.32473."


def _bridgeca() -> list[str]:
    script = Path(sys.executable).parent / "bridgeca"
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("BRIDGECA_KEY_PASSPHRASE", "BRIDGECA_DATABASE_URL", "BRIDGECA_HOME")}
    env.update(extra)
    return env


def demo_setup(workdir: Path, home: str = "demo-home", env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        _bridgeca() + ["demo", "--no-serve", "--home", home], cwd=workdir, env=env or _env(),
        capture_output=True, text=True, timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


class Printed:
    """The parts of the demo's output a user copies."""

    def __init__(self, stdout: str):
        self.text = stdout
        self.exports = dict(re.findall(r"^export (\w+)=(\S+)$", stdout, re.M))
        self.curls = [line for line in stdout.splitlines() if line.startswith("curl ")]
        serve = re.search(r"^to serve it: (.*)$", stdout, re.M)
        self.serve = serve.group(1) if serve else None
        self.members = {
            code: {"id": ident, "serial": serial}
            for code, ident, serial in re.findall(
                r"^  (GD|SZ|HK|MO) .*\n\s+issuer id ([0-9a-f]+)\s+cross-certificate ([0-9a-f]+)$", stdout, re.M
            )
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False


def run_curl(command: str, exports: dict, port: int, cwd: Path) -> tuple[int, dict]:
    """Run a printed curl command against ``port``; (HTTP status, JSON body)."""
    command = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    if shutil.which("curl") and shutil.which("bash"):
        script = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items())
        script += command + " -w '\\n%{http_code}'\n"
        done = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body)
    # No curl: the same request with urllib.
    words = shlex.split(command)
    headers, data, url = {}, None, words[-1]
    for flag, value in zip(words, words[1:], strict=False):
        if flag == "-H":
            name, _, val = value.partition(":")
            headers[name.strip()] = re.sub(r"\$(\w+)", lambda m: exports[m.group(1)], val.strip())
        elif flag == "--data":
            data = (cwd / value.lstrip("@")).read_bytes()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Server:
    """`bridgeca serve` in a subprocess, started as the demo says to start it."""

    def __init__(self, printed: Printed, cwd: Path):
        assert printed.serve, "the --no-serve output says how to serve the home"
        self.port = _free_port()
        words = shlex.split(printed.serve)
        env = _env()
        while words and "=" in words[0]:
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        assert words[:2] == ["bridgeca", "serve"], printed.serve
        self.log = open(cwd / f"serve-{self.port}.log", "w+")
        self.process = subprocess.Popen(
            _bridgeca() + words[1:] + ["--port", str(self.port)], cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _health(self.port):
                return
            time.sleep(0.1)
        self.log.seek(0)
        pytest.fail(f"the server did not come up (exit {self.process.poll()}):\n{self.log.read()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


def _in_process_client(home: Path, monkeypatch):
    """A TestClient on the demo home (for the checks that need no real server)."""
    from fastapi.testclient import TestClient

    from api.app import create_app_from_home
    from api.demo import DEMO_PASSPHRASE

    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", DEMO_PASSPHRASE)
    monkeypatch.delenv("BRIDGECA_DATABASE_URL", raising=False)
    return TestClient(create_app_from_home(home))


def _verify_hk_from_gd(client, home: Path, platform: str) -> dict:
    body = json.loads((home / "requests" / "hk-leaf-from-gd.json").read_text())
    response = client.post("/v1/verify/chain", json=body, headers={"Authorization": f"Bearer {platform}"})
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------- the demo against a real server


def test_printed_curl_commands_give_the_readme_answers(tmp_path):
    printed = Printed(demo_setup(tmp_path).stdout)
    assert set(printed.exports) == {"ADMIN", "ISSUER", "PLATFORM"}
    assert len(printed.curls) == 4, printed.text  # (a), (b), (c) revoke, (c) verify again
    assert set(printed.members) == {"GD", "SZ", "HK", "MO"}
    chain_a, signature_b, revoke_c, again_c = printed.curls
    assert again_c == chain_a
    assert f"/v1/cross-certificates/{printed.members['HK']['serial']}/revoke" in revoke_c
    request_a = json.loads((tmp_path / "demo-home" / "requests" / "hk-leaf-from-gd.json").read_text())
    assert request_a["trust_anchor"] == printed.members["GD"]["id"]
    assert request_a["policies"] == [MEMBERS["GD"]["policy"]]

    server = Server(printed, tmp_path)
    try:
        server.wait_healthy()

        status, a = run_curl(chain_a, printed.exports, server.port, tmp_path)
        assert status == 200, a
        assert a["valid"] is True, a["error"]
        assert a["policies"] == [MEMBERS["GD"]["policy"]]
        subjects = [entry["subject"] for entry in a["path"]]
        assert subjects[0] == MEMBERS["HK"]["leaves"][0]["subject"]
        assert subjects[2] == MEMBERS["HK"]["root"]["subject"]
        assert subjects[3].startswith("CN=Guangdong Provincial Bridge CA")
        assert subjects[-1] == MEMBERS["GD"]["root"]["subject"]
        assert [e.get("revocation") for e in a["path"][2:4]] == ["good", "good"]

        status, b = run_curl(signature_b, printed.exports, server.port, tmp_path)
        assert status == 200, b
        assert b["valid"] is True, b["error"]
        assert b["signer"]["subject"] == MEMBERS["MO"]["document"]["signer"]
        assert b["chain"]["valid"] is True
        assert b["chain"]["policies"] == [BRIDGE_POLICY]
        assert b["content_type"] == "1.2.840.113549.1.7.1"

        status, c = run_curl(revoke_c, printed.exports, server.port, tmp_path)
        assert status == 200, c
        assert c["status"] == "revoked" and c["serial"] == printed.members["HK"]["serial"]

        status, again = run_curl(again_c, printed.exports, server.port, tmp_path)
        assert status == 200, again
        assert again["valid"] is False
        assert again["error"]["code"] == "revoked"
        assert again["error"]["certificate"] == 2  # the cross-certificate bridge -> HK root

        # The Macao document does not pass through Hong Kong: still valid.
        status, b_after = run_curl(signature_b, printed.exports, server.port, tmp_path)
        assert (status, b_after["valid"]) == (200, True)
        # Revoking twice is a conflict.
        status, twice = run_curl(revoke_c, printed.exports, server.port, tmp_path)
        assert (status, twice["code"]) == (409, "already_revoked")
    finally:
        server.stop()


def test_readme_shows_the_printed_commands(tmp_path):
    printed = Printed(demo_setup(tmp_path).stdout)
    readme = (REPO / "README.md").read_text()
    demo_section = readme[readme.index("## Demo"):]
    chain_a, signature_b, revoke_c, _ = printed.curls
    assert chain_a in demo_section and signature_b in demo_section
    assert re.sub(r"/cross-certificates/[0-9a-f]+/", "/cross-certificates/SERIAL/", revoke_c) in re.sub(
        r"/cross-certificates/[0-9a-f]+/", "/cross-certificates/SERIAL/", demo_section
    )
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert first_block[0].startswith("make demo") and first_block[1].startswith("make test")
    # The answers the README promises are the ones the main test checks.
    for answer in ('"valid": true', '"valid": false', '"code": "revoked"', MEMBERS["GD"]["policy"], BRIDGE_POLICY):
        assert answer in demo_section


# ---------------------------------------------------------------------- reruns and the home


def test_rerun_reuses_the_home_and_prints_the_same_tokens(tmp_path):
    first = Printed(demo_setup(tmp_path).stdout)
    second_run = demo_setup(tmp_path)
    assert "already_enrolled" not in second_run.stdout + second_run.stderr
    second = Printed(second_run.stdout)
    assert "(reused)" in second.text
    assert second.exports == first.exports
    assert second.members == first.members
    assert second.curls == first.curls
    assert second.text.count("already in place") == 4


def test_rerun_after_the_revocation_enrolls_hong_kong_again(tmp_path, monkeypatch):
    first = Printed(demo_setup(tmp_path).stdout)
    home = tmp_path / "demo-home"
    client = _in_process_client(home, monkeypatch)
    with client:
        revoked = client.post(
            f"/v1/cross-certificates/{first.members['HK']['serial']}/revoke",
            json={"reason": "cessationOfOperation"}, headers={"Authorization": f"Bearer {first.exports['ADMIN']}"},
        )
        assert revoked.status_code == 200, revoked.text
        assert _verify_hk_from_gd(client, home, first.exports["PLATFORM"])["error"]["code"] == "revoked"

    second = Printed(demo_setup(tmp_path).stdout)
    assert "enrolled again (the previous enrollment is revoked)" in second.text
    assert second.members["HK"]["serial"] != first.members["HK"]["serial"]
    assert second.members["GD"] == first.members["GD"]
    assert second.exports == first.exports
    with _in_process_client(home, monkeypatch) as client:
        result = _verify_hk_from_gd(client, home, second.exports["PLATFORM"])
    assert result["valid"] is True, result["error"]
    assert result["path"][2]["serial"] == second.members["HK"]["serial"]


def test_half_made_home_is_rebuilt(tmp_path, monkeypatch):
    first = Printed(demo_setup(tmp_path).stdout)
    home = tmp_path / "demo-home"
    (home / "config.json").unlink()  # as if init had been interrupted
    second = Printed(demo_setup(tmp_path).stdout)
    assert "(rebuilt (an earlier run did not finish))" in second.text
    assert second.exports["PLATFORM"] != first.exports["PLATFORM"]
    with _in_process_client(home, monkeypatch) as client:
        assert _verify_hk_from_gd(client, home, second.exports["PLATFORM"])["valid"] is True
        assert client.get("/v1/issuers", headers={"Authorization": f"Bearer {first.exports['ADMIN']}"}).status_code == 401


def test_a_directory_the_demo_did_not_make_is_left_alone(tmp_path):
    home = tmp_path / "precious"
    home.mkdir()
    (home / "notes.txt").write_text("keep me")
    result = demo_setup(tmp_path, home="precious", check=False)
    assert result.returncode == 2
    assert "was not made by 'bridgeca demo'" in result.stderr
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


def test_the_environment_passphrase_is_used_when_set(tmp_path, monkeypatch):
    from api.demo import DEMO_PASSPHRASE
    from bridge.errors import BridgeError
    from bridge.service import BridgeCA

    printed = Printed(demo_setup(tmp_path, env=_env(BRIDGECA_KEY_PASSPHRASE="operator-chosen")).stdout)
    assert "key      from BRIDGECA_KEY_PASSPHRASE" in printed.text
    assert DEMO_PASSPHRASE not in printed.text
    assert printed.serve == "bridgeca serve --home demo-home"
    monkeypatch.delenv("BRIDGECA_DATABASE_URL", raising=False)
    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", DEMO_PASSPHRASE)
    with pytest.raises(BridgeError):
        BridgeCA.open(tmp_path / "demo-home").close()
    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", "operator-chosen")
    BridgeCA.open(tmp_path / "demo-home").close()


# ---------------------------------------------------------------------- certs/


def _certs_of(directory: Path):
    for member in FEDERATION["members"]:
        for name in ("root", "issuing-ca", "signer", "server"):
            yield member, name, x509.load_pem_x509_certificate((directory / member["dir"] / f"{name}.pem").read_bytes())


def test_certs_regenerate_to_the_same_keys_names_and_contents(tmp_path):
    done = subprocess.run([sys.executable, str(CERTS / "generate.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "federation.json").read_text()) == FEDERATION
    for member in FEDERATION["members"]:
        for name in ("root", "issuing-ca", "signer", "server"):
            committed, fresh = (d / member["dir"] for d in (CERTS, tmp_path))
            assert (fresh / f"{name}-key.pem").read_bytes() == (committed / f"{name}-key.pem").read_bytes()
            a = x509.load_pem_x509_certificate((committed / f"{name}.pem").read_bytes())
            b = x509.load_pem_x509_certificate((fresh / f"{name}.pem").read_bytes())
            # ECDSA signatures are randomised; everything they sign is not.
            assert a.tbs_certificate_bytes == b.tbs_certificate_bytes, (member["code"], name)
        assert (tmp_path / member["dir"] / "document.txt").read_bytes() == (CERTS / member["dir"] / "document.txt").read_bytes()


@pytest.mark.parametrize("code", sorted(MEMBERS))
def test_each_member_document_verifies_under_its_own_root(code):
    from pki import Verifier
    from pki.cms import verify_cms

    member = MEMBERS[code]
    directory = CERTS / member["dir"]
    verifier = Verifier(anchors=[(directory / "root.pem").read_bytes()])
    result = verify_cms((directory / "document.p7m").read_bytes(), verifier, policies=[member["policy"]]).to_dict()
    assert result["valid"] is True, result["error"]
    assert result["signer"]["subject"] == member["document"]["signer"]
    assert result["chain"]["policies"] == [member["policy"]]
    # Attached: the signed content is the document itself.
    from asn1crypto import cms as asn1_cms

    content = asn1_cms.ContentInfo.load((directory / "document.p7m").read_bytes())["content"]["encap_content_info"]["content"]
    assert content.native == (directory / "document.txt").read_bytes()
    # Each leaf chains to its root under the member policy.
    chains = Verifier(anchors=[(directory / "root.pem").read_bytes()], untrusted=[(directory / "issuing-ca.pem").read_bytes()])
    for leaf in member["leaves"]:
        r = chains.verify((CERTS / leaf["file"]).read_bytes(), policies=[member["policy"]], explicit_policy=True)
        assert r.valid, r.to_dict()["error"]


def test_certs_are_fictional_fixed_and_long_lived():
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    seen_keys = set()
    for _member, name, cert in _certs_of(CERTS):
        subject = cert.subject.rfc4514_string()
        assert "Demo" in subject, subject
        assert cert.not_valid_before_utc == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        years = {"root": 10, "issuing-ca": 8, "signer": 5, "server": 5}[name]
        assert cert.not_valid_after_utc == dt.datetime(2026 + years, 1, 1, tzinfo=dt.timezone.utc)
        if name == "root":
            # the bridge enrolls a root only while it has 30 days left
            assert cert.not_valid_after_utc - now > dt.timedelta(days=30)
        try:
            policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        except x509.ExtensionNotFound:
            policies = []
        for p in policies:
            assert p.policy_identifier.dotted_string.startswith(DOC_ARC)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            for value in san.get_values_for_type(x509.DNSName) + san.get_values_for_type(x509.RFC822Name):
                assert value.endswith(".example"), value
        except x509.ExtensionNotFound:
            assert name in ("root", "issuing-ca")
        spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert spki not in seen_keys
        seen_keys.add(spki)
    assert len(seen_keys) == 16
    assert "never for real use" in (CERTS / "README.md").read_text().lower()
