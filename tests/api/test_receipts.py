"""Issue 12, scenario 5: signed receipts, through a real ``bridgeca serve``.

A contract signed by a member's end entity and time-stamped by the bridge's
own TSA is verified with ``"receipt": true``; the receipt verifies with the
third-party tool (``openssl cms -verify -CAfile bridge.pem``, which prints
the signed document) and with ``bridgeca receipt verify`` (evidence from a
directory and from the service); one flipped byte in the receipt or in a
piece of evidence fails. The evidence route answers only for what a receipt
named. SM2: an SM2 bridge's receipts and time-stamps verify with our own
tools; OpenSSL 3.0 cannot check them (it verifies SM2 CMS signatures with an
empty signer ID, and SM2 certificate signatures need -vfyopt, which neither
``openssl cms`` nor ``openssl ts`` takes; see tests/test_sm2_interop.py).
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from bridge.receipts import canonical_json, check_receipt
from tests.bridge.members import issue, make_member, name, pem

from .test_server import bridgeca, env, http, stop
from .test_tsa import QUERY, openssl, serve

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command-line tool is needed")

CONTRACT = "合同 no. 42: the parties agree on the delivery of 1,000 units.\n".encode()


@pytest.fixture(scope="module")
def federation_server(tmp_path_factory):
    """A served bridge with Hong Kong enrolled and approved, and an end entity of HK that can sign."""
    server = serve(tmp_path_factory.mktemp("receipts") / "home")
    try:
        base, tokens = server["base"], server["tokens"]
        bridge = x509.load_pem_x509_certificate(http("GET", base + "/v1/ca/certificate")[2])
        hk = make_member("HK")
        status, _, body = http("POST", base + "/v1/issuers", tokens["issuer"], {
            "name": "Hong Kong CA", "jurisdiction": "HK", "root_certificate": pem(hk.root).decode(), "policy_mappings": hk.mappings()})
        assert status == 201, body
        enrollment = json.loads(body)["id"]
        assert http("POST", f"{base}/v1/issuers/{enrollment}/approve", tokens["admin"])[0] == 200
        status, _, body = http("POST", f"{base}/v1/issuers/{enrollment}/reverse-certificate", tokens["issuer"],
                               {"certificate": pem(hk.reverse_certificate(bridge)).decode()})
        assert status == 201, body
        key = ec.generate_private_key(ec.SECP256R1())
        signer = issue(hk.issuing, hk.issuing_key, name("HK", "Hong Kong Trading Ltd", "contracts.hk.example"),
                       key.public_key(), ca=False, policies=[hk.policy], days=365)
        server.update(bridge=bridge, member=hk, signer=signer, signer_key=key)
        yield server
    finally:
        stop(server["process"])
        server["log"].close()


def time_stamped_cms(server, content: bytes) -> tuple[bytes, bytes]:
    """(detached CMS over ``content`` by the member's end entity, with a
    signature time-stamp token from the bridge's TSA; the token's DER)."""
    cms = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(
        server["signer"], server["signer_key"], hashes.SHA256()).sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    info = asn1_cms.ContentInfo.load(cms)
    signer_info = info["content"]["signer_infos"][0]
    query = tsp.TimeStampReq({"version": "v1", "cert_req": True, "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(signer_info["signature"].native).digest()}})
    status, _, reply = http("POST", server["base"] + "/v1/tsa", server["tokens"]["platform"], raw=query.dump(), headers=QUERY)
    assert status == 200
    response = tsp.TimeStampResp.load(reply)
    assert response["status"]["status"].native == "granted"
    token = response["time_stamp_token"]
    signer_info["unsigned_attrs"] = [{"type": "signature_time_stamp_token", "values": [token]}]
    # Re-set each level so that only the changed ones are encoded again (dump(force=True) re-encodes all, slowly).
    signed = info["content"]
    signed["signer_infos"] = asn1_cms.SignerInfos([signer_info])
    info["content"] = signed
    return info.dump(), token.dump()


def verify_with_receipt(server, body: dict) -> tuple[dict, bytes]:
    status, _, raw = http("POST", server["base"] + "/v1/verify/signature", server["tokens"]["platform"], {**body, "receipt": True})
    assert status == 200, raw
    result = json.loads(raw)
    return result, base64.b64decode(result.pop("receipt"))


def cli(*args: str) -> subprocess.CompletedProcess:
    """``bridgeca ARGS`` in this process (the command's own code; a start per call costs seconds on a loaded machine)."""
    from api.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["bridgeca", *args], code, out.getvalue(), err.getvalue())


def cli_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(bridgeca() + list(args), env=env(), capture_output=True, text=True, timeout=120)


def evidence_dir(server, document: dict, directory: Path) -> Path:
    from bridge.receipts import named_evidence

    directory.mkdir()
    for sha256 in named_evidence(document):
        status, headers, data = http("GET", f"{server['base']}/v1/evidence/{sha256}", server["tokens"]["platform"])
        assert status == 200, (sha256, data)
        assert hashlib.sha256(data).hexdigest() == sha256 and headers["X-Evidence-Kind"]
        (directory / sha256).write_bytes(data)
    return directory


def test_receipt_verifies_with_openssl_and_the_cli(federation_server, tmp_path):
    server = federation_server
    cms, token = time_stamped_cms(server, CONTRACT)
    result, receipt = verify_with_receipt(server, {"cms": base64.b64encode(cms).decode(), "content": base64.b64encode(CONTRACT).decode(),
                                                   "intermediates": [pem(server["member"].issuing).decode()]})
    assert result["valid"] is True, result
    (tmp_path / "bridge.pem").write_bytes(server["bridge"].public_bytes(serialization.Encoding.PEM))
    (tmp_path / "receipt.der").write_bytes(receipt)

    # The third-party tool: signature, chain to the bridge certificate, and the signed document.
    done = openssl("cms", "-verify", "-in", "receipt.der", "-inform", "DER", "-CAfile", "bridge.pem", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert canonical_json(document) == done.stdout.encode()  # the signed bytes are the canonical form

    assert document["format"] == "bridgeca-verification-receipt" and document["request"] == "signature"
    assert document["inputs"]["cms"] == hashlib.sha256(cms).hexdigest()
    assert document["inputs"]["content"] == hashlib.sha256(CONTRACT).hexdigest()
    assert document["evidence"]["timestamps"] == [hashlib.sha256(token).hexdigest()]
    assert document["path"] == [entry["sha256"] for entry in result["chain"]["path"]]
    assert document["path"][0] == hashlib.sha256(server["signer"].public_bytes(serialization.Encoding.DER)).hexdigest()
    bridge_name = server["bridge"].subject.rfc4514_string()
    assert any(crl["issuer"] == bridge_name and isinstance(crl["number"], int) for crl in document["evidence"]["crls"])
    assert document["result"]["valid"] is True and document["result"]["sha256"] == hashlib.sha256(canonical_json(result)).hexdigest()
    assert document["result"]["indication"] == result.get("indication")
    assert document["validation_time"] == result["chain"]["validation_time"]
    assert isinstance(document["bridge"]["epoch"], int) and document["service_version"]
    assert document["options"]["trust_anchor"] == "bridge"

    # Our own command (the installed one, once), offline, then with the evidence from a directory and from the service.
    done = cli_process("receipt", "verify", str(tmp_path / "receipt.der"), "--anchor", str(tmp_path / "bridge.pem"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout[: done.stdout.rindex("}") + 1]) == document
    evidence = evidence_dir(server, document, tmp_path / "evidence")
    done = cli("receipt", "verify", str(tmp_path / "receipt.der"), "--anchor", str(tmp_path / "bridge.pem"),
               "--evidence-dir", str(evidence), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)
    assert checks["valid"] and {e["status"] for e in checks["evidence"]} == {"ok"} and len(checks["evidence"]) >= 5
    base64_file = tmp_path / "receipt.b64"
    base64_file.write_text(base64.b64encode(receipt).decode())  # as the route returns it
    done = cli("receipt", "verify", str(base64_file), "--anchor", str(tmp_path / "bridge.pem"),
               "--url", server["base"], "--token", server["tokens"]["platform"])
    assert done.returncode == 0, done.stderr

    # One flipped byte in the receipt's signed document: openssl and the CLI refuse it.
    at = receipt.index(b'"format"') + 3
    flipped = receipt[:at] + bytes([receipt[at] ^ 0x01]) + receipt[at + 1:]
    (tmp_path / "flipped.der").write_bytes(flipped)
    done = openssl("cms", "-verify", "-in", "flipped.der", "-inform", "DER", "-CAfile", "bridge.pem", cwd=tmp_path)
    assert done.returncode != 0
    done = cli("receipt", "verify", str(tmp_path / "flipped.der"), "--anchor", str(tmp_path / "bridge.pem"))
    assert done.returncode == 1 and "INVALID" in done.stderr
    # ... or in a piece of evidence.
    cms_file = evidence / document["inputs"]["cms"]
    data = bytearray(cms_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    cms_file.write_bytes(bytes(data))
    done = cli("receipt", "verify", str(tmp_path / "receipt.der"), "--anchor", str(tmp_path / "bridge.pem"),
               "--evidence-dir", str(evidence))
    assert done.returncode == 1 and "mismatch" in done.stderr


def test_chain_receipt_and_the_cli_refusals(federation_server, tmp_path):
    server = federation_server
    hk = server["member"]
    chain = {"certificate": pem(hk.leaf).decode(), "intermediates": [pem(hk.issuing).decode()], "receipt": True}
    status, _, raw = http("POST", server["base"] + "/v1/verify/chain", server["tokens"]["platform"], chain)
    assert status == 200, raw
    result = json.loads(raw)
    receipt = base64.b64decode(result.pop("receipt"))
    (tmp_path / "receipt.der").write_bytes(receipt)
    (tmp_path / "bridge.pem").write_bytes(server["bridge"].public_bytes(serialization.Encoding.PEM))
    done = openssl("cms", "-verify", "-in", "receipt.der", "-inform", "DER", "-CAfile", "bridge.pem", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["request"] == "chain"
    assert document["inputs"]["intermediates"] == [hashlib.sha256(hk.issuing.public_bytes(serialization.Encoding.DER)).hexdigest()]
    # A batch item asks for its own.
    status, _, raw = http("POST", server["base"] + "/v1/verify/batch", server["tokens"]["platform"],
                          {"items": [{"kind": "chain", **chain}, {"kind": "chain", **chain, "receipt": False}]})
    assert status == 200, raw
    items = json.loads(raw)["results"]
    assert "receipt" not in items[1]["result"]
    batch_receipt = check_receipt(base64.b64decode(items[0]["result"]["receipt"]), [server["bridge"]])
    assert batch_receipt.document["path"] == document["path"] and batch_receipt.document["id"] != document["id"]
    # No receipt unless asked for.
    status, _, raw = http("POST", server["base"] + "/v1/verify/chain", server["tokens"]["platform"], {**chain, "receipt": False})
    assert status == 200 and "receipt" not in json.loads(raw)

    # Another anchor: invalid (1). Not a receipt, or no anchor file: bad input (2, one line).
    (tmp_path / "other.pem").write_bytes(pem(hk.root))
    assert cli("receipt", "verify", str(tmp_path / "receipt.der"), "--anchor", str(tmp_path / "other.pem")).returncode == 1
    (tmp_path / "junk").write_bytes(b"\x30\x03\x02\x01\x01")
    for args in (["junk", "--anchor", "bridge.pem"], ["receipt.der", "--anchor", "missing.pem"]):
        done = cli("receipt", "verify", *[str(tmp_path / a) if not a.startswith("--") else a for a in args])
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_evidence_route(federation_server):
    server = federation_server
    base, tokens = server["base"], server["tokens"]
    unknown = "0" * 64
    status, headers, body = http("GET", f"{base}/v1/evidence/{unknown}", tokens["platform"])
    assert status == 404 and headers["content-type"] == "application/problem+json" and json.loads(body)["code"] == "not_found"
    assert http("GET", f"{base}/v1/evidence/not-a-hash", tokens["platform"])[0] == 404
    assert http("GET", f"{base}/v1/evidence/{unknown}", None)[0] == 401
    assert http("GET", f"{base}/v1/evidence/{unknown}", tokens["issuer"])[0] == 403


@pytest.fixture(scope="module")
def sm2_server(tmp_path_factory):
    from pki.sm2 import sm2_available

    if not sm2_available():
        pytest.skip("the system libcrypto cannot do SM2")
    server = serve(tmp_path_factory.mktemp("sm2") / "home", key_type="sm2")
    try:
        yield server
    finally:
        stop(server["process"])
        server["log"].close()


def test_sm2_bridge_time_stamps_and_receipts(sm2_server, tmp_path):
    from pki import Verifier
    from pki.cms import verify_cms

    server = sm2_server
    base, platform = server["base"], server["tokens"]["platform"]
    bridge_pem = http("GET", base + "/v1/ca/certificate")[2]
    (tmp_path / "bridge.pem").write_bytes(bridge_pem)
    digest = hashlib.sha256(b"SM2 contract").digest()
    query = tsp.TimeStampReq({"version": "v1", "cert_req": True, "nonce": 5,
                              "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest}})
    status, _, reply = http("POST", base + "/v1/tsa", platform, raw=query.dump(), headers=QUERY)
    assert status == 200
    token = tsp.TimeStampResp.load(reply)["time_stamp_token"]
    checked = verify_cms(token.dump(), Verifier(anchors=[bridge_pem], untrusted=[]), revocation="off",
                         extended_key_usage=["timeStamping"])
    assert checked.valid and checked.algorithm == "SM2-with-SM3", checked.to_dict()
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest and info["nonce"].native == 5

    tsa_pem = http("GET", base + "/v1/tsa/certificate")[2]
    status, _, raw = http("POST", base + "/v1/verify/chain", platform,
                          {"certificate": tsa_pem.decode(), "extended_key_usage": ["timeStamping"], "receipt": True})
    assert status == 200, raw
    result = json.loads(raw)
    assert result["valid"] is True, result
    (tmp_path / "receipt.b64").write_text(result["receipt"])
    done = cli("receipt", "verify", str(tmp_path / "receipt.b64"), "--anchor", str(tmp_path / "bridge.pem"),
               "--url", base, "--token", platform, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)
    assert checks["signer"]["subject"].startswith("CN=") and checks["receipt"]["path"][-1] == hashlib.sha256(
        x509.load_pem_x509_certificate(bridge_pem).public_bytes(serialization.Encoding.DER)).hexdigest()


def test_a_der_receipt_is_read_as_it_came():
    """DER is not stripped (a signature's last byte may be 0x20 or 0x0a); base64 and PEM still are."""
    import base64

    from bridge.receipts import read_receipt

    der = bytes.fromhex("3003020120")  # ends in 0x20
    assert read_receipt(der) == der
    assert read_receipt(b"\n" + base64.b64encode(der) + b"\n") == der
    assert read_receipt(b"-----BEGIN PKCS7-----\n" + base64.b64encode(der) + b"\n-----END PKCS7-----\n") == der
