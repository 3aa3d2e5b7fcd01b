"""GET /v1/ca/certificates: every certificate of the bridge itself, so a
relying party can anchor on either key of a dual-key (ECDSA + SM2) bridge."""
from __future__ import annotations

import pytest
from cryptography import x509
from fastapi.testclient import TestClient

from api.app import create_app
from bridge.service import BridgeCA
from pki import Verifier
from pki.loading import load_certificates
from pki.sm2 import sm2_available

from .conftest import bridge_env, make_federation


def test_a_single_key_bridge_serves_its_one_certificate(tmp_path):
    fed = make_federation(tmp_path / "home", codes=())
    r = fed.client.get("/v1/ca/certificates")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-pem-file")
    assert x509.load_pem_x509_certificates(r.content) == [fed.ca.certificate]
    assert fed.client.get("/v1/ca/certificate").text == r.text  # the same, for a single key


@pytest.mark.skipif(not sm2_available(), reason="the system libcrypto cannot do SM2/SM3")
def test_a_dual_key_bridge_serves_both_self_signed_certificates_and_the_links(tmp_path):
    with bridge_env():
        ca = BridgeCA.init(tmp_path / "dual", key_type="ec-p256", second_key_type="sm2", base_url="https://bridge.gd.example")
        client = TestClient(create_app(ca), raise_server_exceptions=False)
        pem = client.get("/v1/ca/certificates")
        bundle = client.get("/v1/ca/certificates", headers={"Accept": "application/pkcs7-mime"})
    assert pem.status_code == 200 and bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/pkcs7-mime"
    served = load_certificates(pem.content)
    assert sorted(c.der for c in load_certificates(bundle.content)) == sorted(c.der for c in served)  # a SET OF: DER order
    ecdsa, sm2, *links = served
    assert len(links) == 2 and ecdsa.subject_der == sm2.subject_der == ecdsa.issuer_der == sm2.issuer_der
    assert ecdsa.der == load_certificates(ca.certificate_pem())[0].der and sm2.spki != ecdsa.spki
    # each key's self-signed certificate is a usable anchor: the link it issued to the other key validates from it
    for anchor, other in ((ecdsa, sm2), (sm2, ecdsa)):
        link = next(c for c in links if c.spki == other.spki)
        result = Verifier(anchors=[anchor.der]).verify(link.der)
        assert result.valid and [c.der for c in result.path] == [link.der, anchor.der], result.to_dict()["error"]
    ca.close()
