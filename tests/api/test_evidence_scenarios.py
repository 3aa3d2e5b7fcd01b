"""Issue 12's scenarios 1-4 through the HTTP service: a real ``bridgeca
serve``, real certificates, a CRL distribution point served on 127.0.0.1 by
a small HTTP server in the test, and signature time-stamp tokens from a test
TSA (tests/evidence_builder.py).

The months of the issue are real months for the member's own hierarchy (its
certificates are back-dated; it is the trust anchor: ``trust_anchor`` its
enrollment id). A path through the bridge needs the cross-certificate the
bridge issued at approval, so scenario 2 happens within seconds, in the same
order (signed and time-stamped, then revoked, then validated).
"""
from __future__ import annotations

import base64
import datetime as dt
import http.server as http_server
import json
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.bridge.members import BRIDGE_MEDIUM, MEMBER_POLICIES, der, ec_key, make_root, name, pem
from tests.evidence_builder import TestTsa, add_time_stamp, issue_at, sign_cms

from .test_server import bridgeca, env, free_port, http, run, stop, wait_healthy

# One server for the module: under ``--dist loadgroup`` its tests stay on one worker.
pytestmark = pytest.mark.xdist_group("evidence_scenarios")

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
MONTH = dt.timedelta(days=30)
SIGNED = NOW - 3 * MONTH  # month 1
REVOKED = NOW - MONTH  # month 3, after the time-stamp
REVOKED_EARLY = SIGNED - dt.timedelta(days=10)  # before the time-stamp
STAMPED = SIGNED + dt.timedelta(minutes=1)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _CrlServer(http_server.ThreadingHTTPServer):
    """Serves ``documents`` (path -> DER) on 127.0.0.1."""

    daemon_threads = True

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        documents = self.documents

        class Handler(http_server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


class _Member:
    """A member hierarchy back-dated four months: root, issuing CA, a TSA."""

    def __init__(self, code: str, crl_base: str | None) -> None:
        display, self.policy = MEMBER_POLICIES[code]
        start = NOW - 4 * MONTH - dt.timedelta(days=5)
        self.code = code
        self.root_key, self.root = make_root(name(code if code != "GD" else "CN", f"{display} Evidence CA", f"{display} Evidence Root"),
                                             not_before=start)
        self.ca_key = ec_key()
        self.ca = issue_at(self.root, self.root_key, name("CN", f"{display} Evidence CA", f"{display} Evidence Issuing CA"),
                           self.ca_key.public_key(), not_before=start, ca=True)
        self.tsa = TestTsa.issued_by(self.ca, self.ca_key, name=f"{display} Evidence TSA")
        self.crl_url = f"{crl_base}/{code.lower()}.crl" if crl_base else None

    def signer(self, cn: str, crl_url: str | None = "default"):
        key = ec_key()
        url = self.crl_url if crl_url == "default" else crl_url
        extra = []
        if url:
            extra.append((x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(url)], None, None, None)]), False))
        cert = issue_at(self.ca, self.ca_key, name("CN", "Evidence Example Org", cn), key.public_key(),
                        not_before=NOW - 4 * MONTH, days=365, extra=extra)
        return cert, key

    def crl(self, revoked: dict, *, of_root: bool = False) -> bytes:
        issuer, issuer_key = (self.root, self.root_key) if of_root else (self.ca, self.ca_key)
        b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
             .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(days=7))
             .add_extension(x509.CRLNumber(4), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
        for serial, when in revoked.items():
            b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
                                          .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                                          .build())
        return der(b.sign(issuer_key, hashes.SHA256()))

    def cms(self, cert, key, *, stamp: dt.datetime | None, content: bytes = b"a contract, month 1",
            tsa: TestTsa | None = None) -> str:
        signed = sign_cms(content, cert, key, signing_time=SIGNED, certificates=[self.ca])
        if stamp is not None:
            signed = add_time_stamp(signed, tsa or self.tsa, stamp)
        return base64.b64encode(signed).decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    crls = _CrlServer()
    threading.Thread(target=crls.serve_forever, daemon=True).start()
    crl_base = f"http://127.0.0.1:{crls.server_address[1]}"
    home = tmp_path_factory.mktemp("evidence") / "home"
    run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
    tokens = {role: run("token", "create", "--home", str(home), "--role", role).strip().splitlines()[-1]
              for role in ("admin", "issuer", "platform")}
    port = free_port()
    log = open(home.parent / "server.log", "w+b")
    environment = env()
    # The CRL distribution point is on the loopback address.
    environment["BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES"] = "true"
    process = subprocess.Popen(bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                               env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base, log)
        members = {}
        for code in ("HK", "GD"):
            m = _Member(code, crl_base)
            status, _, body = http("POST", base + "/v1/issuers", tokens["issuer"], {
                "name": f"{code} Evidence CA", "jurisdiction": code, "root_certificate": pem(m.root).decode(),
                "policy_mappings": [{"bridge_policy": BRIDGE_MEDIUM, "member_policy": m.policy}]})
            assert status == 201, body
            m.id = json.loads(body)["id"]
            status, _, body = http("POST", f"{base}/v1/issuers/{m.id}/approve", tokens["admin"])
            assert status == 200, body
            m.cross_serial = json.loads(body)["serial"]
            members[code] = m
        hk = members["HK"]
        signers = {label: hk.signer(f"{label} signer") for label in ("revoked-later", "revoked-early", "good")}
        signers["unreachable"] = hk.signer("unreachable signer", crl_url=f"http://127.0.0.1:{free_port()}/gone.crl")
        crls.documents["/hk.crl"] = hk.crl({signers["revoked-later"][0].serial_number: REVOKED,
                                            signers["revoked-early"][0].serial_number: REVOKED_EARLY})
        yield {"base": base, "tokens": tokens, "members": members, "signers": signers, "crl": crls.documents["/hk.crl"]}
    finally:
        stop(process)
        log.close()
        crls.shutdown()


def _post(world, route: str, body: dict) -> dict:
    status, headers, raw = http("POST", world["base"] + route, world["tokens"]["platform"], body)
    assert status == 200 and headers["content-type"] == "application/json", raw
    return json.loads(raw)


def _signature(world, label: str, *, stamp, **options) -> dict:
    hk = world["members"]["HK"]
    cert, key = world["signers"][label]
    return _post(world, "/v1/verify/signature", {"cms": hk.cms(cert, key, stamp=stamp), "trust_anchor": hk.id, **options})


def test_1_time_stamped_before_a_later_revocation_passes_at_the_time_stamp(world):
    d = _signature(world, "revoked-later", stamp=STAMPED, at="signing-time")
    assert (d["valid"], d["indication"], d["sub_indication"]) == (True, "TOTAL_PASSED", None), d["error"]
    assert d["validation_time"] == _iso(STAMPED) and d["signing_time"] == _iso(SIGNED)
    assert d["timestamp"]["status"] == "valid" and d["timestamp"]["time"] == _iso(STAMPED)
    assert d["timestamp"]["tsa"].startswith("CN=Hong Kong Evidence TSA") and len(d["timestamp"]["sha256"]) == 64
    entry = d["chain"]["path"][0]
    assert entry["revocation"] == "good" and entry["revocation_reason"] == "keyCompromise"
    assert entry["revocation_time"] == _iso(REVOKED)


def test_1_without_a_time_stamp_the_signing_time_is_only_claimed(world):
    d = _signature(world, "revoked-later", stamp=None, at="signing-time")
    assert (d["valid"], d["indication"], d["sub_indication"]) == (False, "INDETERMINATE", "REVOKED_NO_POE")
    assert d["error"]["code"] == "revoked_no_poe" and d["timestamp"] is None
    assert d["validation_time"] == _iso(SIGNED)


def test_1_revoked_before_the_time_stamp_is_total_failed(world):
    d = _signature(world, "revoked-early", stamp=STAMPED, at="signing-time")
    assert (d["valid"], d["indication"], d["sub_indication"]) == (False, "TOTAL_FAILED", "REVOKED")
    assert d["error"]["code"] == "revoked" and d["timestamp"]["status"] == "valid"


def test_2_a_cross_certificate_revoked_after_the_time_stamp(world):
    gd, hk = world["members"]["GD"], world["members"]["HK"]
    cert, key = gd.signer("cross evidence signer", crl_url=None)
    stamped_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    # Time-stamped by another member's TSA, whose own chain stays good (a TSA
    # under the revoked member would now be doubted, and its token with it).
    hk_tsa = TestTsa(hk.tsa.cert, hk.tsa.key, (hk.ca,))
    cms = gd.cms(cert, key, stamp=stamped_at, content=b"a document, then the member left", tsa=hk_tsa)
    time.sleep(1.2)  # the revocation's time, in whole seconds, strictly after the time-stamp's
    status, _, body = http("POST", f"{world['base']}/v1/cross-certificates/{gd.cross_serial}/revoke",
                           world["tokens"]["admin"], {"reason": "cessationOfOperation"})
    assert status == 200, body
    time.sleep(0.6)  # the service notices the new epoch (EPOCH_POLL_SECONDS)
    d = _post(world, "/v1/verify/signature", {"cms": cms})
    assert (d["valid"], d["indication"]) == (True, "TOTAL_PASSED"), d["error"]
    assert d["validation_time"] == _iso(stamped_at)
    cross = [e for e in d["chain"]["path"] if e.get("revocation_reason")]
    assert len(cross) == 1 and cross[0]["serial"].lower().lstrip("0") == gd.cross_serial.lower().lstrip("0")
    assert cross[0]["revocation"] == "good" and cross[0]["revocation_reason"] == "cessationOfOperation"
    assert cross[0]["revocation_time"] > _iso(stamped_at)
    # Without the time-stamp the same signature is judged now: the cross-certificate is revoked.
    plain = base64.b64encode(sign_cms(b"a document, then the member left", cert, key, certificates=[gd.ca])).decode()
    d = _post(world, "/v1/verify/signature", {"cms": plain})
    assert (d["indication"], d["sub_indication"], d["error"]["code"]) == ("TOTAL_FAILED", "REVOKED", "revoked")


def test_3_an_unreachable_crl_distribution_point_is_try_later(world):
    hk = world["members"]["HK"]
    cert, _ = world["signers"]["unreachable"]
    d = _post(world, "/v1/verify/chain", {"certificate": pem(cert).decode(), "intermediates": [pem(hk.ca).decode()],
                                          "trust_anchor": hk.id})
    assert (d["valid"], d["indication"], d["sub_indication"]) == (False, "INDETERMINATE", "TRY_LATER")
    assert d["error"]["code"] == "revocation_unknown"


def test_4_a_past_at_asked_cold_and_warm_gets_the_same_answer(world):
    hk = world["members"]["HK"]

    def chain(label: str, at: str | None) -> dict:
        cert, _ = world["signers"][label]
        body = {"certificate": pem(cert).decode(), "intermediates": [pem(hk.ca).decode()], "trust_anchor": hk.id}
        return _post(world, "/v1/verify/chain", body if at is None else {**body, "at": at})

    past = _iso(SIGNED)
    cold = {label: chain(label, past) for label in ("good", "revoked-later")}
    assert cold["good"]["indication"] == "TOTAL_PASSED" and cold["good"]["validation_time"] == past
    assert cold["revoked-later"]["sub_indication"] == "REVOKED_NO_POE"
    # Warm every cache: the same leaves now (the revoked one fails), then again in the past.
    now_answer = chain("revoked-later", None)
    assert (now_answer["indication"], now_answer["sub_indication"]) == ("TOTAL_FAILED", "REVOKED")
    assert chain("good", None)["indication"] == "TOTAL_PASSED"
    for _ in range(2):
        warm = {label: chain(label, past) for label in ("good", "revoked-later")}
        assert warm == cold


def test_the_cli_json_carries_the_indication(world, tmp_path):
    hk = world["members"]["HK"]
    files = {"root.pem": pem(hk.root), "ca.pem": pem(hk.ca), "leaf.pem": pem(world["signers"]["revoked-later"][0]),
             "hk.crl": world["crl"], "root.crl": hk.crl({}, of_root=True)}
    for file_name, data in files.items():
        (tmp_path / file_name).write_bytes(data)
    done = subprocess.run(bridgeca() + ["verify", str(tmp_path / "leaf.pem"), "--anchor", str(tmp_path / "root.pem"),
                                        "--untrusted", str(tmp_path / "ca.pem"), "--crl", str(tmp_path / "hk.crl"),
                                        "--crl", str(tmp_path / "root.crl"),
                                        "--at", _iso(SIGNED), "--json"], env=env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    d = json.loads(done.stdout)
    assert (d["indication"], d["sub_indication"], d["validation_time"]) == ("INDETERMINATE", "REVOKED_NO_POE", _iso(SIGNED))
    assert d["path"][0]["revocation_time"] == _iso(REVOKED)
