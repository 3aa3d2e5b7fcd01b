"""The bridge's service keys (bridge/service_keys.py) where the bridge key
is: on a PKCS#11 token (SoftHSM2) for a token bridge, generated there under
their own labels, non-extractable; a home made before them gets them on
first need, once, whoever asks first. The TSA's replies verify with
``openssl ts -verify``."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import uuid

import pytest
from asn1crypto import tsp
from cryptography.hazmat.primitives import serialization

from bridge.service import BridgeCA
from bridge.service_keys import RECEIPT, TSA, ServiceKeys
from bridge.tsa import TimeStampAuthority


@pytest.fixture
def hsm_bridge(softhsm_token, tmp_path, monkeypatch):
    module, token_label, pin = softhsm_token
    monkeypatch.setenv("BRIDGECA_PKCS11_PIN", pin)
    monkeypatch.delenv("BRIDGECA_KEY_PASSPHRASE", raising=False)
    key_label = f"bridge-{uuid.uuid4().hex[:8]}"
    ca = BridgeCA.init(tmp_path / "hsm", signer="pkcs11", pkcs11_module=module, pkcs11_token_label=token_label,
                       pkcs11_key_label=key_label)
    yield ca, key_label
    ca.close()


def test_service_keys_on_the_token_and_the_tsa_verifies_with_openssl(hsm_bridge, softhsm_token, tmp_path):
    import pkcs11

    ca, key_label = hsm_bridge
    module, token_label, _pin = softhsm_token
    keys = ServiceKeys(ca.settings, ca.authority, ca.store)
    try:
        tsa_key = keys.get(TSA)
        receipt_key = keys.get(RECEIPT)
        assert not (ca.settings.home / "tsa-key.p8").exists()  # on the token, not in the home
        session = pkcs11.lib(module).get_token(token_label=token_label).open(rw=False)
        try:
            for purpose in (TSA, RECEIPT):
                private = session.get_key(pkcs11.ObjectClass.PRIVATE_KEY, label=f"{key_label}-{purpose}")
                assert private[pkcs11.Attribute.SENSITIVE] and not private[pkcs11.Attribute.EXTRACTABLE]
        finally:
            session.close()
        assert tsa_key.certificate.public_key() != receipt_key.certificate.public_key() != ca.certificate.public_key()
        actions = [entry.action for entry in ca.store.audit_entries()]
        assert actions.count("service_key.certify") == 2

        # A second process view (another worker) loads the same keys rather than making new ones.
        again = ServiceKeys(ca.settings, ca.authority, ca.store)
        try:
            assert again.get(TSA).certificate == tsa_key.certificate
        finally:
            again.close()

        if shutil.which("openssl") is None:
            pytest.skip("the openssl command-line tool is needed")
        query = tsp.TimeStampReq({"version": "v1", "cert_req": True, "nonce": 99, "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"doc").digest()}}).dump()
        reply = TimeStampAuthority(keys, ca.store, ca.settings.tsa_policy).respond(query)
        (tmp_path / "q.tsq").write_bytes(query)
        (tmp_path / "r.tsr").write_bytes(reply)
        (tmp_path / "bridge.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
        done = subprocess.run(["openssl", "ts", "-verify", "-in", "r.tsr", "-queryfile", "q.tsq", "-CAfile", "bridge.pem"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "Verification: OK" in done.stdout, done.stdout + done.stderr
    finally:
        keys.close()


def test_a_home_without_service_keys_gets_them_on_first_need(tmp_path, monkeypatch):
    """A home made before the service keys existed (here: their files removed) gets them when first
    needed, certified by its bridge and audited; the next process loads them."""
    from tests.api.conftest import PASSPHRASE

    monkeypatch.setenv("BRIDGECA_KEY_PASSPHRASE", PASSPHRASE)
    home = tmp_path / "old"
    BridgeCA.init(home, base_url="https://bridge.example").close()
    for name in ("tsa-key.p8", "tsa-cert.pem", "receipt-key.p8", "receipt-cert.pem"):
        (home / name).unlink()
    with BridgeCA.open(home) as ca:
        keys = ServiceKeys(ca.settings, ca.authority, ca.store)
        try:
            tsa = keys.get(TSA)
            assert tsa.certificate.issuer == ca.certificate.subject
            assert (home / "tsa-key.p8").exists() and not (home / "receipt-key.p8").exists()  # only what was needed
        finally:
            keys.close()
        certified = [e for e in ca.store.audit_entries() if e.action == "service_key.certify"]
        assert [e.actor for e in certified] == ["bridgeca-init", "bridgeca-init", "bridgeca"]
        again = ServiceKeys(ca.settings, ca.authority, ca.store)
        try:
            assert again.get(TSA).certificate == tsa.certificate
        finally:
            again.close()
