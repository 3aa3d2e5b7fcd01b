"""Fixtures for the HTTP service tests: a real bridge home (SQLite, or
PostgreSQL in a private schema when BRIDGECA_TEST_POSTGRES_URL is set), real
member PKIs from tests/bridge/members.py, real tokens of every role, and
FastAPI's TestClient over ``api.app.create_app``.

``federation`` is shared by a test module (HK and GD enrolled by one issuer
token, approved, reverse certificates published); tests that change state
for good (revocations, token revocation) make their own with ``make_federation``.
"""
from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from tests.bridge.conftest import postgres_schema as _postgres_schema
from tests.bridge.members import Member, issue, make_member, name, pem


def postgres_schema():
    return _postgres_schema("bridgeca_api")

PASSPHRASE = "api tests: correct horse battery staple"
PROBLEM = "application/problem+json"
ROLES = ("admin", "issuer", "issuer2", "platform")


@contextlib.contextmanager
def bridge_env(database_url: str | None = None):
    """The environment a bridge reads at init/open: the passphrase, and the database URL or none."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRIDGECA_KEY_PASSPHRASE", PASSPHRASE)
        for var in ("BRIDGECA_DATABASE_URL", "BRIDGECA_BASE_URL", "BRIDGECA_HOME", "BRIDGECA_PKCS11_PIN", "BRIDGECA_MAX_BODY_BYTES"):
            mp.delenv(var, raising=False)
        if database_url:
            mp.setenv("BRIDGECA_DATABASE_URL", database_url)
        yield mp


@dataclass
class Signer:
    """A member leaf whose private key we hold, for signatures."""
    certificate: x509.Certificate
    key: object
    member: Member

    @property
    def pem(self) -> str:
        return pem(self.certificate).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class Federation:
    ca: object
    app: object
    client: TestClient
    tokens: dict[str, str]
    members: dict[str, Member] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    serials: dict[str, str] = field(default_factory=dict)

    def h(self, role: str, **extra) -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}

    def enroll(self, member: Member, role: str = "issuer") -> dict:
        r = self.client.post("/v1/issuers", headers=self.h(role), json={
            "name": f"{member.display} Test CA {uuid.uuid4().hex[:6]}", "jurisdiction": member.code,
            "root_certificate": pem(member.root).decode(), "policy_mappings": member.mappings(),
        })
        assert r.status_code == 201, r.text
        return r.json()

    def join(self, member: Member, role: str = "issuer") -> str:
        """Enroll, approve, publish the reverse certificate; returns the enrollment id."""
        view = self.enroll(member, role)
        r = self.client.post(f"/v1/issuers/{view['id']}/approve", headers=self.h("admin"))
        assert r.status_code == 200, r.text
        self.serials[member.code] = r.json()["serial"]
        reverse = pem(member.reverse_certificate(self.ca.certificate)).decode()
        r = self.client.post(f"/v1/issuers/{view['id']}/reverse-certificate", headers=self.h(role), json={"certificate": reverse})
        assert r.status_code == 201, r.text
        self.members[member.code] = member
        self.ids[member.code] = view["id"]
        return view["id"]

    def chain_body(self, code: str, **options) -> dict:
        m = self.members[code]
        return {"certificate": pem(m.leaf).decode(), "intermediates": [pem(m.issuing).decode()], **options}

    def signer(self, code: str) -> Signer:
        from cryptography.hazmat.primitives.asymmetric import ec

        m = self.members[code]
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(m.issuing, m.issuing_key, name("HK" if code == "HK" else "CN", f"{m.display} Example Org",
                                                    f"document-signer.{code.lower()}.example"),
                     key.public_key(), ca=False, policies=[m.policy], days=365)
        return Signer(cert, key, m)

    def revoke_token(self, role: str) -> None:
        """Revoke a token as `bridgeca token revoke` does (through the store, as
        another process would), then wait out the epoch poll interval within
        which every process must have noticed."""
        import time

        from bridge.verification import EPOCH_POLL_SECONDS

        token_id, _ = self.ca.principal(self.tokens[role])
        self.ca.store.revoke_token(actor="test", token_id=token_id)
        time.sleep(2 * EPOCH_POLL_SECONDS)


def make_federation(home: Path, database_url: str | None = None, codes=("HK", "GD"), *, max_body_bytes: int | None = None) -> Federation:
    from api.app import create_app
    from bridge.service import BridgeCA

    with bridge_env(database_url):
        ca = BridgeCA.init(home, base_url="https://bridge.gd.example")
    tokens = {role: ca.create_token("issuer" if role == "issuer2" else role) for role in ROLES}
    app = create_app(ca, max_body_bytes=max_body_bytes)
    client = TestClient(app, raise_server_exceptions=False)
    fed = Federation(ca, app, client, tokens)
    for code in codes:
        fed.join(make_member(code))
    return fed


@contextlib.contextmanager
def federation_on(kind: str, home: Path, **kwargs):
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if kind == "postgresql" else None
        fed = make_federation(home, url, **kwargs)
        try:
            with fed.client:
                yield fed
        finally:
            fed.ca.close()


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    with federation_on("sqlite", tmp_path_factory.mktemp("bridge") / "home") as fed:
        yield fed


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_federation(request, tmp_path):
    """A federation of its own for a test that changes state for good, on each database."""
    with federation_on(request.param, tmp_path / "home") as fed:
        yield fed


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].split(";")[0] == PROBLEM, response.headers.get("content-type")
    body = response.json()
    assert body["status"] == status and isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["title"], str) and isinstance(body["detail"], str), body
    if code is not None:
        assert body["code"] == code, body
    return body
