"""The blacklist through the real server (``bridgeca serve`` on 127.0.0.1),
on SQLite and on PostgreSQL: a keyCompromise revocation blocks re-enrollment
of the key; a blacklisted leaf fails with ``blacklisted`` (index and entry
id) on /v1/verify/chain, /v1/verify/signature (CMS) and /v1/verify/batch;
the published list verifies offline with ``openssl cms`` and fails after one
flipped byte; ``bridgeca blacklist`` works on a server and on the home."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.bridge.members import BRIDGE_MEDIUM, issue, make_member, name, pem

from .conftest import postgres_schema
from .test_server import REPO, bridgeca, env, free_port, http, stop, wait_healthy

DEADLINE = 30.0  # generous: the epoch poll makes a change visible within 1 s


class Served:
    def __init__(self, base, tokens, home, environment):
        self.base, self.tokens, self.home, self.env = base, tokens, home, environment

    def call(self, method, path, role=None, body=None, **kw):
        status, headers, raw = http(method, self.base + path, self.tokens[role] if role else None, body, **kw)
        return status, headers, raw

    def json(self, method, path, role=None, body=None, expect=200):
        status, _, raw = self.call(method, path, role, body)
        assert status == expect, (status, raw[:500])
        return json.loads(raw)

    def cli(self, *args):
        return subprocess.run(bridgeca() + list(args), env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120)

    def bridge_pem(self) -> bytes:
        return self.call("GET", "/v1/ca/certificate")[2]

    def join(self, member, role="issuer", **extra) -> tuple[str, str]:
        from cryptography import x509

        view = self.json("POST", "/v1/issuers", role, {
            "name": f"{member.display} Served {os.urandom(3).hex()}", "jurisdiction": member.code,
            "root_certificate": pem(member.root).decode(), "policy_mappings": member.mappings(), **extra}, expect=201)
        serial = self.json("POST", f"/v1/issuers/{view['id']}/approve", "admin")["serial"]
        bridge = x509.load_pem_x509_certificate(self.bridge_pem())
        self.json("POST", f"/v1/issuers/{view['id']}/reverse-certificate", role,
                  {"certificate": pem(member.reverse_certificate(bridge)).decode()}, expect=201)
        return view["id"], serial


@contextlib.contextmanager
def serve(kind: str, tmp_path, workers: int = 1):
    """``bridgeca init`` + tokens + ``bridgeca serve`` on a free port, on SQLite or PostgreSQL (skipped without it)."""
    with contextlib.ExitStack() as stack:
        environment = env()
        if kind == "postgresql":
            environment["BRIDGECA_DATABASE_URL"] = stack.enter_context(postgres_schema())
        home = tmp_path / "home"

        def run(*args):
            done = subprocess.run(bridgeca() + list(args), env=environment, cwd=REPO, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            return done.stdout

        run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
        tokens = {role: run("token", "create", "--home", str(home), "--role", "issuer" if role == "issuer2" else role)
                  .strip().splitlines()[-1] for role in ("admin", "issuer", "issuer2", "platform")}
        port = free_port()
        log = open(tmp_path / "server.log", "w+b")
        process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
                                                 "--workers", str(workers)],
                                   env=environment, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(process, base, log)
            yield Served(base, tokens, home, environment)
        finally:
            stop(process)
            log.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, tmp_path):
    with serve(request.param, tmp_path) as s:
        yield s


def poll(fetch, done, what: str):
    """fetch() until done(value); the deadline is a guard, not a measurement."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: last answer {value}"
        time.sleep(0.05)


def test_key_compromise_blocks_re_enrollment(served):
    hk = make_member("HK")
    _, serial = served.join(hk)
    served.json("POST", f"/v1/cross-certificates/{serial}/revoke", "admin", {"reason": "keyCompromise"})
    status, headers, raw = served.call("POST", "/v1/issuers", "issuer", {
        "name": "Hong Kong again", "jurisdiction": "HK", "root_certificate": pem(hk.root).decode(), "policy_mappings": hk.mappings()})
    assert status == 409 and headers["content-type"] == "application/problem+json", raw
    assert json.loads(raw)["code"] == "blacklisted"
    [entry] = json.loads(served.call("GET", "/v1/blacklist")[2])["entries"]
    assert entry["source"] == "keyCompromise" and entry["reason"] == "keyCompromise" and entry["kind"] == "spki_sha256"
    [admin_entry] = served.json("GET", "/v1/blacklist/entries", "admin")
    assert admin_entry["author"].startswith("admin:") and admin_entry["id"] == entry["id"]


def _signed_document(served, hk):
    """A leaf with a key we hold, and a CMS SignedData it made over a document."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue(hk.issuing, hk.issuing_key, name("HK", "Hong Kong Example Org", "signer.blacklist.example"), key.public_key(),
                 ca=False, policies=[hk.policy], days=30)
    cms = pkcs7.PKCS7SignatureBuilder().set_data(b"a contract").add_signer(leaf, key, hashes.SHA256()) \
        .add_certificate(hk.issuing).sign(serialization.Encoding.DER, [])
    return leaf, cms


def test_a_blacklisted_leaf_fails_on_chain_signature_and_batch(served):
    hk = make_member("HK")
    served.join(hk)
    leaf, cms = _signed_document(served, hk)
    chain = {"certificate": pem(leaf).decode(), "intermediates": [pem(hk.issuing).decode()], "policies": [BRIDGE_MEDIUM]}
    signature = {"cms": base64.b64encode(cms).decode(), "policies": [BRIDGE_MEDIUM]}
    assert served.json("POST", "/v1/verify/chain", "platform", chain)["valid"] is True
    assert served.json("POST", "/v1/verify/signature", "platform", signature)["valid"] is True

    entry = served.json("POST", "/v1/blacklist/entries", "admin", {
        "kind": "certificate_sha256", "certificate": pem(leaf).decode(), "reason": "forged documents",
        "public_note": "misused for forged contracts", "internal_note": "tip-off 17", "evidence": "case GD-2026-1"}, expect=201)
    assert entry["value"] == hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()

    result = poll(lambda: served.json("POST", "/v1/verify/chain", "platform", chain), lambda r: not r["valid"], "chain")
    assert result["error"]["code"] == "blacklisted"
    assert result["error"]["certificate"] == 0 and result["error"]["blacklist_entry"] == entry["id"]

    result = served.json("POST", "/v1/verify/signature", "platform", signature)
    assert result["valid"] is False
    assert result["chain"]["error"]["code"] == "blacklisted" and result["chain"]["error"]["blacklist_entry"] == entry["id"]

    status, _, raw = served.call("POST", "/v1/verify/batch", "platform", {"items": [{"kind": "chain", **chain},
                                                                                   {"kind": "signature", **signature}]})
    if status != 404:
        chain_result, signature_result = (r["result"] for r in json.loads(raw)["results"])
        assert chain_result["error"]["code"] == "blacklisted" and chain_result["error"]["blacklist_entry"] == entry["id"]
        assert signature_result["chain"]["error"]["code"] == "blacklisted"

    served.json("POST", f"/v1/blacklist/entries/{entry['id']}/remove", "admin", {"reason": "cleared"})
    poll(lambda: served.json("POST", "/v1/verify/chain", "platform", chain), lambda r: r["valid"], "after removal")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_published_blacklist_verifies_offline_with_openssl(served, tmp_path):
    served.json("POST", "/v1/blacklist/entries", "admin", {
        "kind": "subject_identity", "value": {"oid": "organizationIdentifier", "value": "91440300MA5FAKE00X"},
        "reason": "serious violation", "public_note": "营业执照被吊销", "internal_note": "do not publish"}, expect=201)
    status, headers, document = served.call("GET", "/v1/blacklist")
    assert status == 200 and headers["content-type"] == "application/json"
    assert b"do not publish" not in document
    assert json.loads(document)["entries"][0]["public_note"] == "营业执照被吊销"
    status, headers, signature = served.call("GET", "/v1/blacklist.p7s")
    assert status == 200 and headers["content-type"] == "application/pkcs7-signature"
    (tmp_path / "blacklist.json").write_bytes(document)
    (tmp_path / "blacklist.p7s").write_bytes(signature)
    (tmp_path / "bridge.pem").write_bytes(served.bridge_pem())

    def openssl_verify(content: str):
        return subprocess.run(["openssl", "cms", "-verify", "-binary", "-content", str(tmp_path / content), "-inform", "DER",
                               "-in", str(tmp_path / "blacklist.p7s"), "-CAfile", str(tmp_path / "bridge.pem"),
                               "-purpose", "any", "-out", os.devnull], capture_output=True, text=True, timeout=60)

    good = openssl_verify("blacklist.json")
    assert good.returncode == 0, good.stderr
    flipped = bytearray(document)
    flipped[len(flipped) // 2] ^= 0x01
    (tmp_path / "flipped.json").write_bytes(bytes(flipped))
    bad = openssl_verify("flipped.json")
    assert bad.returncode != 0 and "verification failure" in bad.stderr.lower()

    # Conditional GET: the same document is a 304, and every fetch serves the same signed bytes.
    etag = headers.get("ETag") or served.call("GET", "/v1/blacklist")[1]["ETag"]
    status, _, _ = served.call("GET", "/v1/blacklist", headers={"If-None-Match": served.call("GET", "/v1/blacklist")[1]["ETag"]})
    assert status == 304 and etag
    assert served.call("GET", "/v1/blacklist.p7s")[2] == signature


def test_blacklist_cli_on_the_server_and_on_the_home(served, tmp_path):
    hk = make_member("HK")
    (tmp_path / "issuing.pem").write_bytes(pem(hk.issuing))
    done = served.cli("blacklist", "add", "--url", served.base, "--token", served.tokens["admin"], "--kind", "spki_sha256",
                      "--certificate", str(tmp_path / "issuing.pem"), "--reason", "compromised CA", "--json")
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert added["author"].startswith("admin:") and added["status"] == "active"

    done = served.cli("blacklist", "add", "--home", str(served.home), "--kind", "subject_identity",
                      "--identity", "serialNumber=440300123456789", "--reason", "fraud", "--json")
    assert done.returncode == 0, done.stderr
    by_home = json.loads(done.stdout)
    assert by_home["author"] == "cli" and by_home["value"] == {"oid": "2.5.4.5", "value": "440300123456789"}

    done = served.cli("blacklist", "remove", by_home["id"], "--url", served.base, "--token", served.tokens["admin"],
                      "--reason", "court ruling", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "removed", done.stderr
    listed = served.cli("blacklist", "list", "--home", str(served.home))
    assert listed.returncode == 0 and added["id"] in listed.stdout and by_home["id"] not in listed.stdout
    listed = served.cli("blacklist", "list", "--all", "--url", served.base, "--token", served.tokens["admin"])
    assert by_home["id"] in listed.stdout and "removed" in listed.stdout

    # Refusals: one line on stderr, exit 1 for a conflict, 2 for bad usage.
    again = served.cli("blacklist", "remove", by_home["id"], "--home", str(served.home))
    assert again.returncode == 1 and "already_removed" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    bad = served.cli("blacklist", "add", "--home", str(served.home), "--kind", "spki_sha256", "--value", "xyz", "--reason", "r")
    assert bad.returncode in (1, 2) and "invalid_blacklist_entry" in bad.stderr and "Traceback" not in bad.stderr
    usage = served.cli("blacklist", "add", "--home", str(served.home), "--kind", "issuer_serial", "--issuer", "CN=X", "--reason", "r")
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
    forbidden = served.cli("blacklist", "list", "--url", served.base, "--token", served.tokens["platform"])
    assert forbidden.returncode == 1 and "forbidden" in forbidden.stderr

