"""Recognition through others' trusted lists, end to end on real servers: a
Hong Kong-style list (written and signed by tests/api/tl_writer.py, served
over HTTP on 127.0.0.1) naming HK's root, its issuing CA and the policy
prefix 2.16.344.8.2.2008.810.2; Guangdong's ``bridgeca serve`` registers it
(admin route), fetches it, checks its signature and the shared XSD, and
verifies an HK leaf under <prefix>.2012.1.0 with trust_anchor "list:<id>".
HK's next list (a new sequence number) marks the issuing CA withdrawn at W:
a validation time before W still passes, after W fails (service_withdrawn)."""
from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.bridge.members import CA_USAGE, LEAF_USAGE, ec_key, make_root, name, pem

from .conftest import postgres_schema
from .test_server import bridgeca, env, free_port, http, stop, wait_healthy
from .tl_writer import ListedService, write_list

ETSI_XSD = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "etsi-tl" / "xsd"
PREFIX = "2.16.344.8.2.2008.810.2"
BRIDGE_POLICY = "1.3.6.1.4.1.32473.5.1.1"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
T0 = NOW - dt.timedelta(days=30)
W = NOW - dt.timedelta(days=5)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _issue(issuer, issuer_key, subject, key, *, ca: bool, policies, not_before):
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before)
               .not_valid_after(NOW + dt.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(CA_USAGE if ca else LEAF_USAGE, critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                   issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value), critical=False)
               .add_extension(x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(p), None)
                                                        for p in policies]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


class HongKong:
    """HK's PKI and its trusted list operator."""

    def __init__(self) -> None:
        self.root_key, self.root = make_root(name("HK", "HK Demo e-Cert", "HK Demo Root CA"), not_before=T0 - dt.timedelta(days=1))
        self.issuing_key = ec_key()
        self.issuing = _issue(self.root, self.root_key, name("HK", "HK Demo e-Cert", "HK Demo Issuing CA"), self.issuing_key,
                              ca=True, policies=["2.5.29.32.0"], not_before=T0)
        self.leaf = self.make_leaf(PREFIX + ".2012.1.0")
        self.tl_key, self.tl_cert = make_root(name("HK", "HK Trusted List Operator", "HK TL signer"), not_before=T0 - dt.timedelta(days=2))

    def make_leaf(self, policy: str):
        return _issue(self.issuing, self.issuing_key, name("HK", "HK Trading (fictional)", f"signer {policy}"), ec_key(),
                      ca=False, policies=[policy], not_before=T0 + dt.timedelta(days=1))

    def trust_list(self, sequence: int, *, issuing_withdrawn_at: dt.datetime | None = None, signer=None) -> bytes:
        issuing = ListedService("HK Demo Issuing CA", self.issuing, "granted", T0, policies=[PREFIX])
        if issuing_withdrawn_at is not None:
            issuing = ListedService("HK Demo Issuing CA", self.issuing, "withdrawn", issuing_withdrawn_at,
                                    history=[("granted", T0)], policies=[PREFIX])
        services = [ListedService("HK Demo Root CA", self.root, "granted", T0, policies=[PREFIX]), issuing]
        key, cert = signer or (self.tl_key, self.tl_cert)
        return write_list(territory="HK", operator="HK Trusted List Scheme Operator (fictional)", tsp="HK Demo e-Cert",
                          sequence=sequence, issued=NOW - dt.timedelta(minutes=10 - sequence),
                          next_update=NOW + dt.timedelta(days=30), services=services, signer_key=key, signer_cert=cert)


class _ListServer:
    """HK's publication point: serves whatever list is current."""

    def __init__(self) -> None:
        self.body = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.etsi.tsl+xml")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hk-tl.xml"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _serve(home: Path, extra_env: dict):
    e = {**env(), **extra_env}

    def run(*args):
        done = subprocess.run(bridgeca() + list(args), env=e, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
    tokens = {role: run("token", "create", "--home", str(home), "--role", role).strip().splitlines()[-1]
              for role in ("admin", "platform")}
    port = free_port()
    log = open(home.parent / f"server-{port}.log", "w+b")
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                               env=e, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(process, base, log)
    return process, log, base, tokens, run


@pytest.fixture(params=["sqlite", "postgresql"])
def guangdong(request, tmp_path):
    extra = {"BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES": "true",  # HK's list is served on 127.0.0.1 here
             "BRIDGECA_TRUST_LIST_SCHEMA_DIR": str(ETSI_XSD)}
    if not ETSI_XSD.is_dir():
        pytest.skip(f"{ETSI_XSD} is not there")
    with (postgres_schema() if request.param == "postgresql" else _nothing()) as url:
        if url:
            extra["BRIDGECA_DATABASE_URL"] = url
        process, log, base, tokens, run = _serve(tmp_path / "gd", extra)
        try:
            yield {"base": base, "tokens": tokens, "run": run, "home": tmp_path / "gd"}
        finally:
            stop(process)
            log.close()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _verify(gd, list_id: str, leaf, **options):
    status, _, body = http("POST", gd["base"] + "/v1/verify/chain", gd["tokens"]["platform"],
                           {"certificate": pem(leaf).decode(), "trust_anchor": f"list:{list_id}", **options})
    assert status == 200, body
    return json.loads(body)


def test_hong_kong_list_recognised_then_issuing_ca_withdrawn(guangdong):
    gd, hk, served = guangdong, HongKong(), _ListServer()
    try:
        served.body = hk.trust_list(1)
        admin = gd["tokens"]["admin"]
        status, _, body = http("POST", gd["base"] + "/v1/trust-lists", admin, {
            "name": "Hong Kong recognised CAs", "url": served.url, "allowed_signers": [pem(hk.tl_cert).decode()],
            "mapping": {"policies": [{"prefix": PREFIX, "bridge_policy": BRIDGE_POLICY}]}})
        assert status == 201, body
        registered = json.loads(body)
        list_id = registered["id"]
        assert registered["trust_anchor"] == f"list:{list_id}"
        assert registered["outcome"]["accepted"] is True, registered
        assert registered["latest"]["sequence_number"] == 1 and registered["latest"]["territory"] == "HK"
        assert registered["latest"]["schema"] == {"checked": "xsd", "valid": True, "errors": []}
        assert registered["latest"]["signature"]["status"] == "valid"

        # An HK leaf under <prefix>.2012.1.0, recognised under the listing of the prefix, in the bridge's policy.
        result = _verify(gd, list_id, hk.leaf, policies=[BRIDGE_POLICY])
        assert result["valid"] is True, result["error"]
        assert result["policies"] == [BRIDGE_POLICY]
        recognition = result["recognition"]
        assert recognition["list"]["id"] == list_id and recognition["list"]["sequence_number"] == 1
        assert recognition["service"]["name"] == "HK Demo Issuing CA"
        assert recognition["service"]["type"] == "http://uri.etsi.org/TrstSvc/Svctype/CA/PKC"
        assert recognition["status"].endswith("/granted") and recognition["policy_prefix"] == PREFIX
        assert recognition["foreign_policies"] == [PREFIX + ".2012.1.0"]

        # A policy beside the prefix (…810.21) is not under it.
        stranger = _verify(gd, list_id, hk.make_leaf("2.16.344.8.2.2008.810.21"))
        assert stranger["valid"] is False and stranger["error"]["code"] == "policy_not_recognised"

        # HK's next list: the issuing CA withdrawn at W. Fetched now.
        served.body = hk.trust_list(2, issuing_withdrawn_at=W)
        status, _, body = http("POST", gd["base"] + f"/v1/trust-lists/{list_id}/fetch", admin, {})
        assert status == 200, body
        fetched = json.loads(body)
        assert fetched["accepted"] is True and fetched["sequence_number"] == 2
        assert [v["sequence_number"] for v in fetched["list"]["versions"]] == [2, 1]

        before = _verify(gd, list_id, hk.leaf, at=_iso(W - dt.timedelta(days=1)))
        assert before["valid"] is True, before["error"]
        assert before["recognition"]["list"]["sequence_number"] == 2
        assert before["recognition"]["status"].endswith("/granted")
        assert before["recognition"]["status_since"] == _iso(T0)
        after = _verify(gd, list_id, hk.leaf, at=_iso(W + dt.timedelta(days=1)))
        assert after["valid"] is False and after["recognition"] is None
        assert after["error"]["code"] == "service_withdrawn" and after["error"]["certificate"] == 1
        assert "HK Demo Issuing CA" in after["error"]["message"] and _iso(W) in after["error"]["message"]
        assert _verify(gd, list_id, hk.leaf)["error"]["code"] == "service_withdrawn"  # now, too

        # An older sequence number never replaces a newer one.
        status, _, body = http("POST", gd["base"] + f"/v1/trust-lists/{list_id}/versions", admin,
                               {"xml": base64.b64encode(hk.trust_list(1)).decode()})
        assert status == 409 and json.loads(body)["code"] == "stale_sequence_number"

        # A list signed by a certificate nobody allowed is refused, and nothing is registered.
        rogue = make_root(name("HK", "Somebody else", "Rogue TL signer"), not_before=T0)
        status, _, body = http("POST", gd["base"] + "/v1/trust-lists", admin, {
            "name": "rogue", "xml": base64.b64encode(hk.trust_list(3, signer=rogue)).decode(),
            "allowed_signers": [pem(hk.tl_cert).decode()]})
        assert status == 422 and json.loads(body)["code"] == "trust_list_signature_invalid"
        status, _, body = http("GET", gd["base"] + "/v1/trust-lists", gd["tokens"]["platform"])
        assert status == 200 and [entry["id"] for entry in json.loads(body)] == [list_id]

        # Every registration and accepted version is in the audit log.
        done = subprocess.run(bridgeca() + ["audit", "verify", "--home", str(gd["home"])], env=env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        served.close()


def test_unknown_list_anchor_is_404(guangdong):
    status, headers, body = http("POST", guangdong["base"] + "/v1/verify/chain", guangdong["tokens"]["platform"],
                                 {"certificate": pem(HongKong().leaf).decode(), "trust_anchor": "list:0123abcd"})
    assert status == 404 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "not_found"


def test_second_bridge_recognises_the_first_through_its_published_list(tmp_path):
    """Interop between two bridgeca instances: A enrolls and approves HK, and
    publishes its federation at /v1/trust-list.xml (bridge/trust_list.py);
    B registers that URL with A's certificate as the allowed signer, and
    recognises HK's leaf under A's list."""
    from tests.bridge.members import make_member

    extra = {"BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES": "true", "BRIDGECA_TRUST_LIST_SCHEMA_DIR": str(ETSI_XSD)}
    a_process, a_log, a_base, a_tokens, _ = _serve(tmp_path / "a", extra)
    b_process, b_log, b_base, b_tokens, _ = _serve(tmp_path / "b", extra)
    try:
        hk = make_member("HK")
        status, _, body = http("POST", a_base + "/v1/issuers", a_tokens["admin"], {
            "name": "Hong Kong", "jurisdiction": "HK", "root_certificate": pem(hk.root).decode(), "policy_mappings": hk.mappings()})
        assert status == 201, body
        status, _, body = http("POST", a_base + f"/v1/issuers/{json.loads(body)['id']}/approve", a_tokens["admin"])
        assert status == 200, body
        status, _, a_cert = http("GET", a_base + "/v1/ca/certificate")
        assert status == 200
        # A's list catches up with the approval through the epoch; B registers it once it names HK.
        deadline = time.monotonic() + 30
        while True:
            status, _, published = http("GET", a_base + "/v1/trust-list.xml")
            if status == 200 and b"Hong Kong" in published or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert status == 200 and b"Hong Kong" in published, published[:300]
        status, _, body = http("POST", b_base + "/v1/trust-lists", b_tokens["admin"], {
            "name": "Bridge A's federation", "url": a_base + "/v1/trust-list.xml", "allowed_signers": [a_cert.decode()]})
        assert status == 201, body
        registered = json.loads(body)
        assert registered["outcome"]["accepted"] is True, registered
        assert registered["latest"]["schema"]["valid"] is True and registered["latest"]["signature"]["status"] == "valid"
        status, _, body = http("POST", b_base + "/v1/verify/chain", b_tokens["platform"], {
            "certificate": pem(hk.leaf).decode(), "intermediates": [pem(hk.issuing).decode()],
            "trust_anchor": registered["trust_anchor"], "policies": [hk.policy]})
        assert status == 200, body
        result = json.loads(body)
        assert result["valid"] is True, result["error"]
        assert result["recognition"]["service"]["certificate"] == 2  # HK's root, the service A lists
        assert result["recognition"]["status"].endswith("/granted") and result["policies"] == [hk.policy]
    finally:
        stop(a_process)
        stop(b_process)
        a_log.close()
        b_log.close()
