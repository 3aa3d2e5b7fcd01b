"""The bridge key on a PKCS#11 token (SoftHSM2): generated there, non-extractable, never leaving it."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from bridge.errors import BridgeError
from bridge.service import BridgeCA

from .conftest import REPO
from .lint import certificate_errors, crl_errors
from .members import BRIDGE_MEDIUM, der, make_member


@pytest.fixture
def hsm_bridge(softhsm_token, tmp_path, monkeypatch):
    module, token_label, pin = softhsm_token
    monkeypatch.setenv("BRIDGECA_PKCS11_PIN", pin)
    monkeypatch.delenv("BRIDGECA_KEY_PASSPHRASE")  # the token needs no passphrase
    key_label = f"bridge-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "hsm-bridge"
    ca = BridgeCA.init(home, signer="pkcs11", pkcs11_module=module, pkcs11_token_label=token_label, pkcs11_key_label=key_label)
    yield ca, home, key_label
    ca.close()


def _private_key_object(module, token_label, pin, key_label):
    import pkcs11

    token = pkcs11.lib(module).get_token(token_label=token_label)
    session = token.open(rw=False)  # this process is logged in already (login is per process)
    return session, session.get_key(pkcs11.ObjectClass.PRIVATE_KEY, label=key_label)


def test_a_cross_certificate_signed_by_a_key_that_never_leaves_the_token(hsm_bridge, softhsm_token):
    from pkcs11 import Attribute
    from pkcs11.exceptions import AttributeSensitive

    ca, home, key_label = hsm_bridge
    module, token_label, pin = softhsm_token
    assert not (home / "bridge-key.p8").exists()
    assert "pkcs11" == ca.settings.signer

    session, private = _private_key_object(module, token_label, pin, key_label)
    try:
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        with pytest.raises(AttributeSensitive):
            private[Attribute.VALUE]
    finally:
        session.close()

    gd = make_member("GD")
    view = ca.approve(ca.enroll(name="Guangdong CA", jurisdiction="GD", root_certificate=der(gd.root), policy_mappings=gd.mappings())["id"])
    cross = x509.load_pem_x509_certificate(view["cross_certificate"].encode())
    cross.verify_directly_issued_by(ca.certificate)
    ca.certificate.verify_directly_issued_by(ca.certificate)
    assert certificate_errors(der(cross)) == []

    from pki import Verifier

    result = Verifier(anchors=[der(ca.certificate)], untrusted=[der(cross), der(gd.issuing)]).verify(
        der(gd.leaf), policies=[BRIDGE_MEDIUM], explicit_policy=True
    )
    assert result.valid, result.to_dict()["error"]

    ca.revoke(view["serial"], "keyCompromise")
    crl_der = ca.current_crl()
    assert crl_errors(crl_der) == []
    crl = x509.load_der_x509_crl(crl_der)
    assert crl.is_signature_valid(ca.certificate.public_key())
    assert crl.get_revoked_certificate_by_serial_number(cross.serial_number) is not None

    request = ocsp.OCSPRequestBuilder().add_certificate(cross, ca.certificate, hashes.SHA1()).build()
    response = ocsp.load_der_ocsp_response(ca.ocsp_response(request.public_bytes(serialization.Encoding.DER)))
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(ca.certificate.public_key()).digest
    from cryptography.hazmat.primitives.asymmetric import ec

    ca.certificate.public_key().verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))

    # Reopening finds the key on the token by its label and checks it against the certificate.
    with BridgeCA.open(home) as again:
        assert again.certificate == ca.certificate
        assert again.current_crl() == crl_der


def test_missing_token_and_missing_module_are_clear_errors(hsm_bridge, monkeypatch):
    _ca, home, _label = hsm_bridge
    monkeypatch.setenv("BRIDGECA_PKCS11_TOKEN_LABEL", "no-such-token")
    with pytest.raises(BridgeError) as missing:
        BridgeCA.open(home)
    assert missing.value.code == "signer_unavailable" and "not found" in missing.value.message
    monkeypatch.delenv("BRIDGECA_PKCS11_TOKEN_LABEL")
    monkeypatch.setenv("BRIDGECA_PKCS11_MODULE", "/nonexistent/libpkcs11.so")
    with pytest.raises(BridgeError) as no_module:
        BridgeCA.open(home)
    assert "does not exist" in no_module.value.message
    monkeypatch.delenv("BRIDGECA_PKCS11_MODULE")
    monkeypatch.setenv("BRIDGECA_PKCS11_KEY_LABEL", "no-such-key")
    with pytest.raises(BridgeError) as no_key:
        BridgeCA.open(home)
    assert "no single key pair" in no_key.value.message


def test_a_wrong_pin_is_refused(hsm_bridge, monkeypatch):
    _ca, home, _label = hsm_bridge
    monkeypatch.setenv("BRIDGECA_PKCS11_PIN", "00000000")
    # In this process (already logged in with the right PIN) ...
    with pytest.raises(BridgeError) as here:
        BridgeCA.open(home)
    assert "refused the PIN" in here.value.message
    # ... and in a fresh one, where the token itself checks it.
    env = {**os.environ, "BRIDGECA_PKCS11_PIN": "00000000"}
    code = (
        "import sys\nfrom bridge.errors import BridgeError\nfrom bridge.service import BridgeCA\n"
        f"try:\n    BridgeCA.open({str(home)!r})\nexcept BridgeError as e:\n    print(e.code, e.message); sys.exit(7)\n"
    )
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert fresh.returncode == 7, fresh.stderr
    assert "signer_unavailable" in fresh.stdout and "refused the PIN" in fresh.stdout
