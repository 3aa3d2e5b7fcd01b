"""Member lifecycle through real ``bridgeca serve`` processes on 127.0.0.1, on
SQLite and PostgreSQL: each action over HTTP (and the CLI against the
server), the CRL and OCSP answers while suspended and after reinstatement,
two servers on one database (a suspension through one is seen by the other
within the epoch poll), continuous verification through a renewal, and the
service's own periodic maintenance expiring a stale enrollment."""
from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.bridge.conftest import postgres_schema
from tests.bridge.members import make_member, pem

from .conftest import bridge_env
from .test_server import REPO, bridgeca, env, free_port, http, stop, wait_healthy

# Generous: the requirement is one epoch poll (0.25 s) plus a request; this only bounds a failing test.
DEADLINE = 15.0


@dataclass
class Served:
    bases: list[str]
    tokens: dict[str, str]
    home: Path
    env: dict

    @property
    def base(self) -> str:
        return self.bases[0]

    def call(self, method: str, path: str, role: str | None = "admin", body=None, base: str | None = None):
        status, headers, raw = http(method, (base or self.base) + path, self.tokens.get(role) if role else None, body)
        is_json = headers.get("content-type", "").split(";")[0] in ("application/json", "application/problem+json")
        return status, (json.loads(raw) if is_json and raw else raw)

    def join(self, code: str):
        member = make_member(code)
        status, view = self.call("POST", "/v1/issuers", "issuer", {
            "name": f"{member.display} CA", "jurisdiction": code, "root_certificate": pem(member.root).decode(),
            "policy_mappings": member.mappings()})
        assert status == 201, view
        status, approved = self.call("POST", f"/v1/issuers/{view['id']}/approve")
        assert status == 200, approved
        status, bridge_pem = self.call("GET", "/v1/ca/certificate", None)
        bridge = x509.load_pem_x509_certificate(bridge_pem)
        status, body = self.call("POST", f"/v1/issuers/{view['id']}/reverse-certificate", "issuer",
                                 {"certificate": pem(member.reverse_certificate(bridge)).decode()})
        assert status == 201, body
        return member, view["id"], approved["serial"]

    def verify(self, member, base: str | None = None) -> dict:
        status, result = self.call("POST", "/v1/verify/chain", "platform", {
            "certificate": pem(member.leaf).decode(), "intermediates": [pem(member.issuing).decode()]}, base=base)
        assert status == 200, result
        return result

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(bridgeca() + list(args) + ["--url", self.base, "--token", self.tokens["admin"]], env=self.env,
                              cwd=REPO, capture_output=True, text=True, timeout=120)


def _wait_healthy(process: subprocess.Popen, base: str, log: Path) -> None:
    wait_healthy(process, base, log)


@contextlib.contextmanager
def served(kind: str, tmp_path: Path, servers: int = 1, **settings):
    """A bridge home (``kind``: sqlite or postgresql) and ``servers`` real server processes on it."""
    from bridge.service import BridgeCA

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_schema("bridgeca_life")) if kind == "postgresql" else None
        home = tmp_path / "home"
        with bridge_env(url):
            with BridgeCA.init(home, base_url="https://bridge.gd.example") as ca:
                tokens = {role: ca.create_token(role) for role in ("admin", "issuer", "platform")}
                tokens["issuer2"] = ca.create_token("issuer")
        process_env = env()
        if url:
            process_env["BRIDGECA_DATABASE_URL"] = url
        for name, value in settings.items():
            process_env[f"BRIDGECA_{name.upper()}"] = str(value)
        processes, bases = [], []
        try:
            for index in range(servers):
                port, log = free_port(), tmp_path / f"server{index}.log"
                handle = stack.enter_context(open(log, "wb"))
                processes.append(subprocess.Popen(
                    bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
                    env=process_env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT))
                bases.append(f"http://127.0.0.1:{port}")
                _wait_healthy(processes[-1], bases[-1], log)
            yield Served(bases, tokens, home, process_env)
        finally:
            for process in processes:
                stop(process)


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request):
    return request.param


def _crl_reason(served: Served, serial: str):
    status, der = served.call("GET", "/v1/crl", None)
    assert status == 200
    entry = x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(int(serial, 16))
    if entry is None:
        return None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def _ocsp(served: Served, view: dict, serial: str) -> ocsp.OCSPResponse:
    cross = next(x509.load_pem_x509_certificate(c["certificate"].encode()) for c in view["cross_certificates"] if c["serial"] == serial)
    status, bridge_pem = served.call("GET", "/v1/ca/certificate", None)
    request = ocsp.OCSPRequestBuilder().add_certificate(cross, x509.load_pem_x509_certificate(bridge_pem), hashes.SHA256()).build()
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    status, _, raw = http("GET", f"{served.base}/v1/ocsp/{encoded}")
    assert status == 200
    return ocsp.load_der_ocsp_response(raw)


def _until(condition, what: str):
    deadline = time.monotonic() + DEADLINE
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        time.sleep(0.05)


def test_each_action_over_http(kind, tmp_path):
    with served(kind, tmp_path) as s:
        hk, hk_id, serial = s.join("HK")
        assert s.verify(hk)["valid"] is True

        status, view = s.call("POST", f"/v1/issuers/{hk_id}/suspend", body={"reason": "investigation"})
        assert status == 200 and view["status"] == "suspended" and view["held_serials"] == [serial], view
        assert _crl_reason(s, serial) == x509.ReasonFlags.certificate_hold
        answer = _ocsp(s, view, serial)
        assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
        assert answer.revocation_reason == x509.ReasonFlags.certificate_hold
        result = s.verify(hk)
        assert result["valid"] is False and result["error"]["code"] == "suspended", result
        status, problem = s.call("POST", f"/v1/issuers/{hk_id}/renew")
        assert status == 409 and problem["code"] == "invalid_state"

        status, view = s.call("POST", f"/v1/issuers/{hk_id}/reinstate")
        assert status == 200 and view["status"] == "active"
        assert _crl_reason(s, serial) is None
        assert _ocsp(s, view, serial).certificate_status == ocsp.OCSPCertStatus.GOOD
        assert s.verify(hk)["valid"] is True

        status, view = s.call("POST", f"/v1/issuers/{hk_id}/renew", body={"reason": "yearly"})
        assert status == 200 and view["superseded_serials"] == [serial], view
        renewed = view["serial"]
        assert _crl_reason(s, serial) == x509.ReasonFlags.superseded
        result = s.verify(hk)
        assert result["valid"] is True and result["path"][2]["serial"] == renewed

        status, view = s.call("PUT", f"/v1/issuers/{hk_id}/terms", body={"path_length": 0})
        assert status == 200 and view["path_length"] == 0 and view["superseded_serials"] == [renewed], view
        result = s.verify(hk)  # the member's issuing CA is one CA too many under pathLen 0
        assert result["valid"] is False and result["error"]["code"] == "path_length_exceeded", result
        status, view = s.call("PUT", f"/v1/issuers/{hk_id}/terms", body={"path_length": None, "reason": "back to the default"})
        assert status == 200 and view["path_length"] is None
        assert s.verify(hk)["valid"] is True

        status, history = s.call("GET", f"/v1/issuers/{hk_id}/history", "issuer")
        assert status == 200
        assert [h["status"] for h in history] == ["pending", "active", "suspended", "active", "active", "active", "active"]
        assert history[2]["reason"] == "investigation" and history[2]["serials"] == [serial]
        status, _ = s.call("GET", f"/v1/issuers/{hk_id}/history", "issuer2")
        assert status == 404  # another issuer's enrollment

        status, expiring = s.call("GET", "/v1/cross-certificates/expiring?days=5000")
        assert status == 200 and [e["enrollment"] for e in expiring] == [hk_id]
        status, expiring = s.call("GET", "/v1/cross-certificates/expiring?days=1")
        assert status == 200 and expiring == []

        # Withdrawal: by another issuer, not found; by the issuer that enrolled it, done.
        status, problem = s.call("POST", f"/v1/issuers/{hk_id}/withdraw", "issuer2", {"reason": "not mine"})
        assert status == 404 and problem["code"] == "not_found"
        status, view = s.call("POST", f"/v1/issuers/{hk_id}/withdraw", "issuer", {"reason": "ceasing operation"})
        assert status == 200 and view["status"] == "withdrawn" and len(view["revoked_serials"]) == 1
        assert _crl_reason(s, view["revoked_serials"][0]) == x509.ReasonFlags.cessation_of_operation
        assert s.verify(hk)["error"]["code"] == "revoked"
        status, problem = s.call("POST", f"/v1/issuers/{hk_id}/suspend")
        assert status == 409 and problem["code"] == "invalid_state"

        from bridge.service import BridgeCA

        with bridge_env(s.env.get("BRIDGECA_DATABASE_URL")), BridgeCA.open(s.home) as ca:
            actions = [e.action for e in ca.store.audit_entries()]
            assert ca.verify_audit().intact
        for action in ("issuer.suspend", "issuer.reinstate", "certificate.renew", "issuer.change_terms", "issuer.withdraw"):
            assert action in actions, action


def test_the_cli_against_the_server(kind, tmp_path):
    with served(kind, tmp_path) as s:
        hk, hk_id, serial = s.join("HK")
        done = s.cli("issuer", "suspend", hk_id, "--reason", "audit finding", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["held_serials"] == [serial]
        assert s.verify(hk)["error"]["code"] == "suspended"
        again = s.cli("issuer", "suspend", hk_id)
        assert again.returncode == 1 and again.stderr.count("\n") == 1 and "invalid_state" in again.stderr
        done = s.cli("issuer", "reinstate", hk_id)
        assert done.returncode == 0 and "off hold" in done.stdout, done.stderr
        done = s.cli("issuer", "terms", hk_id, "--permit", "directoryName=C=HK", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["permitted_subtrees"] == [{"type": "directoryName", "value": "C=HK"}]
        assert s.verify(hk)["valid"] is True  # HK's names are inside C=HK
        done = s.cli("issuer", "history", hk_id)
        assert done.returncode == 0 and "audit finding" in done.stdout
        usage = s.cli("issuer", "terms", hk_id, "--permit", "x400Address=whatever")
        assert usage.returncode == 2 and usage.stderr.count("\n") == 1
        done = s.cli("maintenance", "expiring", "--days", "5000", "--json")
        assert done.returncode == 0 and [e["enrollment"] for e in json.loads(done.stdout)] == [hk_id]


def test_suspension_through_one_server_is_seen_by_the_other(kind, tmp_path):
    with served(kind, tmp_path, servers=2) as s:
        hk, hk_id, _ = s.join("HK")
        one, other = s.bases
        for _ in range(3):  # warm the other server's caches (Verifier, prefix and result caches)
            assert s.verify(hk, base=other)["valid"] is True
        status, view = s.call("POST", f"/v1/issuers/{hk_id}/suspend", base=one)
        assert status == 200
        suspended_at = time.monotonic()
        result = _until(lambda: (r := s.verify(hk, base=other))["valid"] is False and r, "the other server refuses the path")
        waited = time.monotonic() - suspended_at
        assert result["error"]["code"] == "suspended" and result["error"]["certificate"] == 2, result
        print(f"suspension seen by the other server after {waited:.2f} s")
        status, view = s.call("POST", f"/v1/issuers/{hk_id}/reinstate", base=one)
        assert status == 200
        _until(lambda: s.verify(hk, base=other)["valid"] is True, "the other server accepts the path again")


def test_renewal_has_no_moment_where_the_leaf_fails(kind, tmp_path):
    with served(kind, tmp_path, servers=2) as s:
        hk, hk_id, old = s.join("HK")
        answers: list[dict] = []
        stop_event = threading.Event()

        def hammer(base: str) -> None:
            while not stop_event.is_set():
                answers.append(s.verify(hk, base=base))

        threads = [threading.Thread(target=hammer, args=(base,)) for base in s.bases]
        for thread in threads:
            thread.start()
        try:
            _until(lambda: len(answers) >= 10, "verifications running before the renewal")
            status, view = s.call("POST", f"/v1/issuers/{hk_id}/renew", base=s.bases[0])
            assert status == 200, view
            new = view["serial"]
            # Keep verifying until both servers answer through the new cross-certificate.
            _until(lambda: all(s.verify(hk, base=b)["path"][2]["serial"] == new for b in s.bases), "both servers use the new one")
            before = len(answers)
            _until(lambda: len(answers) >= before + 10, "more verifications after the renewal")
        finally:
            stop_event.set()
            for thread in threads:
                thread.join(timeout=60)
        failures = [a for a in answers if not a["valid"]]
        assert not failures, failures[:3]
        serials = {a["path"][2]["serial"] for a in answers}
        assert new in serials and serials <= {old, new}, serials
        assert _crl_reason(s, old) == x509.ReasonFlags.superseded


def test_the_service_expires_stale_enrollments_itself(kind, tmp_path):
    # Pending enrollments expire after 2 s here; the service's maintenance runs every 0.5 s.
    with served(kind, tmp_path, maintenance_interval_seconds=0.5, pending_enrollment_max_days=2 / 86400) as s:
        member = make_member("MO")
        status, view = s.call("POST", "/v1/issuers", "issuer", {
            "name": "Macau CA", "jurisdiction": "MO", "root_certificate": pem(member.root).decode(),
            "policy_mappings": member.mappings()})
        assert status == 201 and view["status"] == "pending"
        expired = _until(lambda: (v := s.call("GET", f"/v1/issuers/{view['id']}")[1])["status"] == "expired" and v,
                         "the pending enrollment expires")
        assert expired["status_history"][-1]["status"] == "expired"
        status, problem = s.call("POST", f"/v1/issuers/{view['id']}/approve")
        assert status == 409
