"""Issue 12, scenario 6: the bridge's own time-stamping authority, through a
real ``bridgeca serve``. ``openssl ts -verify`` accepts its replies (with and
without the TSA certificate in the token, nonce checked against the query);
requests it will not serve get a TimeStampResp with status rejection and
the RFC 3161 failure bit; only a body that is not a time-stamp query at all
gets problem+json. The TSA certificate has RFC 3161's profile. SM2: see
tests/api/test_receipts.py (an SM2 bridge's time-stamps and receipts)."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import core, tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from bridge.service import BridgeCA

from .conftest import bridge_env
from .test_server import bridgeca, env, free_port, http, stop, wait_healthy

QUERY = {"Content-Type": "application/timestamp-query"}
REPLY = "application/timestamp-reply"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command-line tool is needed")


def serve(home: Path, key_type: str | None = None):
    """A home with a token per role (made in this process: each `bridgeca` command costs a start), then
    ``bridgeca serve`` on it: a dict for the tests."""
    with bridge_env():
        ca = BridgeCA.init(home, base_url="http://127.0.0.1:1", key_type=key_type)
        try:
            tokens = {role: ca.create_token(role) for role in ("admin", "issuer", "platform")}
        finally:
            ca.close()
    port = free_port()
    log = open(home.parent / f"{home.name}.log", "w+b")
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                               env=env(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(process, base, log)
    return {"base": base, "tokens": tokens, "home": home, "process": process, "log": log}


@pytest.fixture(scope="module")
def tsa_server(tmp_path_factory):
    server = serve(tmp_path_factory.mktemp("tsa") / "home")
    try:
        yield server
    finally:
        stop(server["process"])
        server["log"].close()


def openssl(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60)


def fetch_pems(server, directory: Path) -> None:
    for path, name in (("/v1/ca/certificate", "bridge.pem"), ("/v1/tsa/certificate", "tsa.pem")):
        status, _, body = http("GET", server["base"] + path, server["tokens"]["platform"])
        assert status == 200, body
        (directory / name).write_bytes(body)


def time_stamp(server, query: bytes, token: str | None = None) -> tuple[int, dict, bytes]:
    return http("POST", server["base"] + "/v1/tsa", token or server["tokens"]["platform"], raw=query, headers=QUERY)


@pytest.mark.parametrize("cert_req", [True, False], ids=["with-tsa-certificate", "without"])
def test_openssl_ts_verify_accepts_a_reply(tsa_server, tmp_path, cert_req):
    fetch_pems(tsa_server, tmp_path)
    (tmp_path / "contract.txt").write_text("Contract no. 42: the parties agree.\n")
    done = openssl("ts", "-query", "-data", "contract.txt", "-sha256", *(["-cert"] if cert_req else []), "-out", "q.tsq", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status, headers, reply = time_stamp(tsa_server, (tmp_path / "q.tsq").read_bytes())
    assert status == 200 and headers["content-type"] == REPLY
    (tmp_path / "reply.tsr").write_bytes(reply)
    done = openssl("ts", "-verify", "-in", "reply.tsr", "-queryfile", "q.tsq", "-CAfile", "bridge.pem",
                   "-untrusted", "tsa.pem", cwd=tmp_path)
    assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stdout + done.stderr
    # The same reply against the document itself (imprint recomputed by openssl).
    done = openssl("ts", "-verify", "-in", "reply.tsr", "-data", "contract.txt", "-CAfile", "bridge.pem",
                   "-untrusted", "tsa.pem", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    token = tsp.TimeStampResp.load(reply)["time_stamp_token"]
    assert len(token["content"]["certificates"].native or []) == (1 if cert_req else 0)  # certReq: the TSA's certificate
    # Another document's query does not verify against this reply.
    (tmp_path / "other.txt").write_text("Contract no. 43\n")
    done = openssl("ts", "-verify", "-in", "reply.tsr", "-data", "other.txt", "-CAfile", "bridge.pem",
                   "-untrusted", "tsa.pem", cwd=tmp_path)
    assert done.returncode != 0


def _query(*, algorithm: str = "sha256", digest: bytes | None = None, policy: str | None = None, nonce: int | None = 7,
           extensions: bool = False) -> bytes:
    fields: dict = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm},
                            "hashed_message": digest if digest is not None else hashlib.new(algorithm, b"doc").digest()},
        "cert_req": True,
    }
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        fields["nonce"] = nonce
    if extensions:
        fields["extensions"] = [{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}]
    return tsp.TimeStampReq(fields).dump()


@pytest.mark.parametrize("query, failure", [
    (b"not a request", "bad_data_format"),
    (_query(algorithm="sha1"), "bad_alg"),
    (_query(digest=b"\x00" * 20), "bad_data_format"),
    (_query(policy="1.2.3.4.5"), "unaccepted_policy"),
    (_query(extensions=True), "unaccepted_extensions"),
], ids=["garbage", "sha1", "short-imprint", "other-policy", "extensions"])
def test_refused_requests_get_a_rejection(tsa_server, query, failure):
    status, headers, reply = time_stamp(tsa_server, query)
    assert status == 200 and headers["content-type"] == REPLY
    # asn1crypto's TimeStampResp requires the token RFC 3161 makes optional: read the status alone.
    status_info = tsp.PKIStatusInfo.load(core.Sequence.load(reply)[0].dump())
    assert status_info["status"].native == "rejection"
    assert failure in status_info["fail_info"].native


def test_granted_tokens_echo_the_nonce_and_have_increasing_serials(tsa_server):
    infos = []
    for nonce in (11, 12):
        status, _, reply = time_stamp(tsa_server, _query(nonce=nonce))
        assert status == 200
        response = tsp.TimeStampResp.load(reply)
        assert response["status"]["status"].native == "granted"
        infos.append(response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed)
    assert [i["nonce"].native for i in infos] == [11, 12]
    assert infos[0]["serial_number"].native < infos[1]["serial_number"].native
    assert infos[0]["message_imprint"]["hashed_message"].native == hashlib.sha256(b"doc").digest()
    policy = json.loads((tsa_server["home"] / "config.json").read_text())["tsa_policy"]
    assert infos[0]["policy"].dotted == policy


def test_not_a_query_is_problem_json(tsa_server):
    base, platform = tsa_server["base"], tsa_server["tokens"]["platform"]
    status, headers, body = http("POST", base + "/v1/tsa", platform, raw=_query(), headers={"Content-Type": "application/json"})
    assert status == 415 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "unsupported_media_type"
    status, _, body = http("POST", base + "/v1/tsa", platform, raw=b"", headers=QUERY)
    assert status == 400 and json.loads(body)["code"] == "invalid_request"
    status, _, body = http("POST", base + "/v1/tsa", None, raw=_query(), headers=QUERY)
    assert status == 401 and json.loads(body)["code"] == "unauthorized"
    status, _, body = http("POST", base + "/v1/tsa", tsa_server["tokens"]["issuer"], raw=_query(), headers=QUERY)
    assert status == 403 and json.loads(body)["code"] == "forbidden"


def test_tsa_certificate_profile(tsa_server):
    status, _, body = http("GET", tsa_server["base"] + "/v1/tsa/certificate")
    assert status == 200
    certificate = x509.load_pem_x509_certificate(body)
    bridge = x509.load_pem_x509_certificate(http("GET", tsa_server["base"] + "/v1/ca/certificate")[2])
    assert certificate.issuer == bridge.subject
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]  # RFC 3161 2.3: the one purpose, critical
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert certificate.public_key() != bridge.public_key()  # a key of its own, not the bridge's
    home = tsa_server["home"]
    assert (home / "tsa-key.p8").stat().st_mode & 0o077 == 0
    assert b"PRIVATE KEY" not in body
