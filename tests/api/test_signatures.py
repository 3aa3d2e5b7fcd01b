"""POST /v1/verify/signature: CMS SignedData made by cryptography's
PKCS7SignatureBuilder and by the system ``openssl cms -sign``, attached and
detached, verify; tampered content, a wrong signer key and a wrong detached
content do not; raw signatures (certificate + signature + data) likewise.
The signer is a leaf issued by a member's issuing CA, validated through the
bridge."""
from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from api import schemas
from tests.bridge.members import BRIDGE_MEDIUM, pem

from .conftest import assert_problem

DOCUMENT = b"Cross-border e-invoice no. 2026-0042\r\nAmount: 1000 HKD\x00\xff\n"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")


@pytest.fixture(scope="module")
def signer(federation):
    return federation.signer("HK")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def verify(fed, role="platform", **body) -> dict:
    r = fed.client.post("/v1/verify/signature", headers=fed.h(role), json=body)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"] == "application/json"
    result = r.json()
    schemas.SignatureResultModel.model_validate(result)
    return result


def sign_with_cryptography(signer, data: bytes, *, detached: bool, key=None) -> bytes:
    # Binary: sign the bytes as they are (without it, the builder converts line ends to CRLF, as S/MIME text)
    options = [pkcs7.PKCS7Options.Binary] + ([pkcs7.PKCS7Options.DetachedSignature] if detached else [])
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(data)
        .add_signer(signer.certificate, key or signer.key, hashes.SHA256())
        .add_certificate(signer.member.issuing)
        .sign(serialization.Encoding.DER, options)
    )


def sign_with_openssl(tmp_path, signer, data: bytes, *, detached: bool) -> bytes:
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "signer.pem").write_bytes(pem(signer.certificate))
    (tmp_path / "signer.key").write_bytes(signer.key_pem())
    (tmp_path / "chain.pem").write_bytes(pem(signer.member.issuing))
    cmd = [OPENSSL, "cms", "-sign", "-binary", "-md", "sha256", "-in", str(tmp_path / "data.bin"),
           "-signer", str(tmp_path / "signer.pem"), "-inkey", str(tmp_path / "signer.key"),
           "-certfile", str(tmp_path / "chain.pem"), "-outform", "DER", "-out", str(tmp_path / "out.der")]
    if not detached:
        cmd.append("-nodetach")
    subprocess.run(cmd, check=True, capture_output=True)
    return (tmp_path / "out.der").read_bytes()


def tamper_attached(cms: bytes) -> bytes:
    """Flip one byte of the encapsulated content (same length, so the DER stays well-formed)."""
    at = cms.index(DOCUMENT[:20])
    return cms[:at] + bytes([cms[at] ^ 0x01]) + cms[at + 1:]


def assert_valid(result, signer):
    assert result["valid"] is True, result["error"]
    assert result["error"] is None
    assert result["signer"]["subject"] == signer.certificate.subject.rfc4514_string()
    assert result["signer"]["serial"] == format(signer.certificate.serial_number, "x")
    assert result["signing_time"] is not None and result["signing_time"].endswith("Z")
    assert result["chain"]["valid"] is True
    subjects = [e["subject"] for e in result["chain"]["path"]]
    assert subjects[:3] == [signer.certificate.subject.rfc4514_string(), signer.member.issuing.subject.rfc4514_string(),
                            signer.member.root.subject.rfc4514_string()]


MAKERS = {
    "cryptography": lambda tmp_path, signer, data, detached: sign_with_cryptography(signer, data, detached=detached),
    "openssl": lambda tmp_path, signer, data, detached: sign_with_openssl(tmp_path, signer, data, detached=detached),
}


@pytest.mark.parametrize("maker", [
    "cryptography", pytest.param("openssl", marks=needs_openssl),
])
@pytest.mark.parametrize("detached", [False, True], ids=["attached", "detached"])
def test_cms_verifies_and_tampering_is_caught(federation, signer, tmp_path, maker, detached):
    cms = MAKERS[maker](tmp_path, signer, DOCUMENT, detached)
    if detached:
        assert DOCUMENT not in cms
        good = verify(federation, cms=b64(cms), content=b64(DOCUMENT))
        bad = verify(federation, cms=b64(cms), content=b64(DOCUMENT.replace(b"1000", b"9000")))
    else:
        assert DOCUMENT in cms
        good = verify(federation, cms=b64(cms))
        bad = verify(federation, cms=b64(tamper_attached(cms)))
    assert_valid(good, signer)
    assert bad["valid"] is False
    assert bad["error"]["code"] == "content_mismatch", bad["error"]


@pytest.mark.parametrize("maker", ["cryptography", pytest.param("openssl", marks=needs_openssl)])
def test_cms_chain_options_apply(federation, signer, tmp_path, maker):
    cms = b64(MAKERS[maker](tmp_path, signer, DOCUMENT, False))
    with_policy = verify(federation, cms=cms, policies=[BRIDGE_MEDIUM], at="signing-time")
    assert_valid(with_policy, signer)
    assert with_policy["chain"]["policies"] == [BRIDGE_MEDIUM]
    gd = federation.members["GD"]
    from_gd = verify(federation, cms=cms, trust_anchor=federation.ids["GD"], policies=[gd.policy])
    assert_valid(from_gd, signer)
    assert from_gd["chain"]["path"][-1]["subject"] == gd.root.subject.rfc4514_string()
    unmapped = verify(federation, cms=cms, policies=["1.3.6.1.4.1.32473.77.9.9"])
    assert unmapped["valid"] is False and unmapped["chain"]["error"]["code"] == "policy_required"


def test_cms_signed_by_the_wrong_key(federation, signer):
    """The certificate in the message is the signer's, the signature is another key's."""
    cms = sign_with_cryptography(signer, DOCUMENT, detached=False, key=ec.generate_private_key(ec.SECP256R1()))
    result = verify(federation, cms=b64(cms))
    assert result["valid"] is False and result["error"]["code"] == "signature_invalid"


def test_cms_signer_certificate_supplied_in_the_request(federation, signer, tmp_path):
    """A CMS without the issuing CA in it: the request's intermediates complete the chain."""
    cms = (
        pkcs7.PKCS7SignatureBuilder().set_data(DOCUMENT).add_signer(signer.certificate, signer.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    without = verify(federation, cms=b64(cms))
    assert without["valid"] is False
    with_intermediate = verify(federation, cms=b64(cms), intermediates=[pem(signer.member.issuing).decode()])
    assert_valid(with_intermediate, signer)


def test_cms_base64_with_line_breaks(federation, signer):
    cms = sign_with_cryptography(signer, DOCUMENT, detached=False)
    wrapped = base64.encodebytes(cms).decode()  # 76-character lines, as base64(1) prints
    assert "\n" in wrapped.strip()
    assert_valid(verify(federation, cms=wrapped), signer)


def test_detached_cms_without_content(federation, signer):
    cms = sign_with_cryptography(signer, DOCUMENT, detached=True)
    r = federation.client.post("/v1/verify/signature", headers=federation.h("platform"), json={"cms": b64(cms)})
    assert "no content" in assert_problem(r, 400, "malformed_input")["detail"]


@pytest.mark.parametrize("algorithm", [None, "ecdsa-with-SHA256", "ES256"])
def test_raw_signature(federation, signer, algorithm):
    signature = signer.key.sign(DOCUMENT, ec.ECDSA(hashes.SHA256()))
    body = {"certificate": signer.pem, "signature": b64(signature), "data": b64(DOCUMENT),
            "intermediates": [pem(signer.member.issuing).decode()]}
    if algorithm:
        body["algorithm"] = algorithm
    result = verify(federation, **body)
    assert result["valid"] is True, result["error"]
    assert result["signer"]["subject"] == signer.certificate.subject.rfc4514_string()
    assert result["chain"]["valid"] is True and result["signing_time"] is None
    tampered = verify(federation, **{**body, "data": b64(DOCUMENT + b" ")})
    assert tampered["valid"] is False and tampered["error"]["code"] == "signature_invalid"
    other_key = ec.generate_private_key(ec.SECP256R1()).sign(DOCUMENT, ec.ECDSA(hashes.SHA256()))
    wrong = verify(federation, **{**body, "signature": b64(other_key)})
    assert wrong["valid"] is False and wrong["error"]["code"] == "signature_invalid"


def test_raw_signature_by_a_revoked_members_leaf(fresh_federation):
    fed = fresh_federation
    signer = fed.signer("GD")
    signature = signer.key.sign(DOCUMENT, ec.ECDSA(hashes.SHA256()))
    body = {"certificate": signer.pem, "signature": b64(signature), "data": b64(DOCUMENT),
            "intermediates": [pem(signer.member.issuing).decode()]}
    assert verify(fed, **body)["valid"] is True
    r = fed.client.post(f"/v1/cross-certificates/{fed.serials['GD']}/revoke", headers=fed.h("admin"), json={"reason": "keyCompromise"})
    assert r.status_code == 200
    after = verify(fed, **body)
    assert after["valid"] is False and after["chain"]["error"]["code"] == "revoked"


@pytest.mark.parametrize("body,code", [
    ({}, "invalid_request"),
    ({"cms": "AAAA", "certificate": "x", "signature": "AAAA", "data": "AAAA"}, "invalid_request"),
    ({"certificate": "x", "signature": "AAAA"}, "invalid_request"),
    ({"cms": "not base64!"}, "invalid_base64"),
    ({"cms": "AAAA"}, "malformed_input"),
    ({"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "signature": "AAAA", "data": "AAAA"}, "malformed_input"),
])
def test_signature_request_errors(federation, body, code):
    r = federation.client.post("/v1/verify/signature", headers=federation.h("platform"), json=body)
    assert_problem(r, 400, code)
