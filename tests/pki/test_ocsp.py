"""OCSP client side (RFC 6960): responses made with cryptography's
OCSPResponseBuilder, checked through the public Verifier and the CLI."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from api.cli import main as cli_main
from pki import Verifier
from pki.errors import InputError
from pki.ocsp import parse_ocsp_response

from .test_revocation import NOW, Ca, der

DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def world():
    root = Ca("OCSP Root")
    sub = Ca("OCSP Sub", root)
    leaf = sub.issue(cn="ocsp leaf")
    return root, sub, leaf


SHA1 = hashes.SHA1()  # the default CertID hash (RFC 6960 clients mostly send SHA-1)


def response(issuer: Ca, cert: x509.Certificate, status=ocsp.OCSPCertStatus.GOOD, *, signer_key=None, signer_cert=None,
             responder_certs=(), this_update=None, next_update=..., algorithm=SHA1, nonce=None, by_key_hash=False,
             revocation_time=None, reason=None, cert_id_issuer=None) -> bytes:
    this_update = this_update or NOW - dt.timedelta(hours=1)
    next_update = NOW + dt.timedelta(hours=12) if next_update is ... else next_update
    b = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=cert_id_issuer or issuer.cert,
        algorithm=algorithm,
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=revocation_time,
        revocation_reason=reason,
    )
    responder = signer_cert or issuer.cert
    b = b.responder_id(ocsp.OCSPResponderEncoding.HASH if by_key_hash else ocsp.OCSPResponderEncoding.NAME, responder)
    if responder_certs:
        b = b.certificates(list(responder_certs))
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.sign(signer_key or issuer.key, hashes.SHA256()).public_bytes(DER)


def check(world, responses, leaf=None, *, crls=(), revocation="require", at=NOW):
    root, sub, default_leaf = world
    leaf = leaf or default_leaf
    # The sub-CA's own status comes from the root's CRL.
    v = Verifier([der(root.cert)], [der(sub.cert)], [root.crl(), *crls], ocsp_responses=responses)
    return v.verify(der(leaf), at=at, revocation=revocation)


def test_good(world):
    root, sub, leaf = world
    r = check(world, [response(sub, leaf)])
    assert r.valid, r.to_dict()
    entry = r.to_dict()["path"][0]
    assert entry["revocation"] == "good"
    assert entry["revocation_source"].startswith("OCSP response from CN=OCSP Sub")


def test_good_with_sha256_cert_id_and_key_hash_responder_id(world):
    _, sub, leaf = world
    r = check(world, [response(sub, leaf, algorithm=hashes.SHA256(), by_key_hash=True)])
    assert r.valid, r.to_dict()
    assert "OCSP response from key" in r.to_dict()["path"][0]["revocation_source"]


def test_revoked(world):
    _, sub, leaf = world
    when = NOW - dt.timedelta(days=3)
    r = check(world, [response(sub, leaf, ocsp.OCSPCertStatus.REVOKED, revocation_time=when, reason=x509.ReasonFlags.key_compromise)])
    assert not r.valid
    assert r.error.code == "revoked"
    assert "keyCompromise" in r.error.message and "OCSP response" in r.error.message


def test_unknown(world):
    _, sub, leaf = world
    r = check(world, [response(sub, leaf, ocsp.OCSPCertStatus.UNKNOWN)])
    assert r.error.code == "revocation_unknown"
    assert "does not know the certificate" in r.error.message


def test_bad_signature(world):
    _, sub, leaf = world
    forger = Ca("OCSP Sub")  # same name, another key
    r = check(world, [response(sub, leaf, signer_key=forger.key, signer_cert=forger.cert)])
    assert r.error.code == "revocation_unknown"
    assert "signature does not verify" in r.error.message


def test_response_for_another_certificate(world):
    _, sub, leaf = world
    other = sub.issue(cn="someone else")
    r = check(world, [response(sub, other)])
    assert r.error.code == "revocation_unknown"
    assert "no OCSP response for serial" in r.error.message


def test_wrong_cert_id_issuer(world):
    root, sub, leaf = world
    # Same serial, but the CertID hashes another issuer's name and key.
    impostor = Ca("Impostor")
    r = check(world, [response(sub, leaf, cert_id_issuer=impostor.cert)])
    assert r.error.code == "revocation_unknown"
    assert "CertID names another certificate or issuer" in r.error.message


def test_stale_response(world):
    _, sub, leaf = world
    old = response(sub, leaf, this_update=NOW - dt.timedelta(days=3), next_update=NOW - dt.timedelta(days=1))
    r = check(world, [old])
    assert r.error.code == "revocation_unknown"
    assert "out of date" in r.error.message


def test_clock_skew_tolerates_a_response_from_just_ahead(world):
    _, sub, leaf = world
    ahead = response(sub, leaf, this_update=NOW + dt.timedelta(minutes=2))
    assert check(world, [ahead]).valid
    # Ahead of the real clock: one merely after a past validation time is fresh information (pki/revocation.py).
    too_far = response(sub, leaf, this_update=max(NOW, dt.datetime.now(dt.timezone.utc)) + dt.timedelta(hours=2))
    r = check(world, [too_far])
    assert r.error.code == "revocation_unknown" and "in the future" in r.error.message


def test_no_next_update_is_bounded_by_max_age(world):
    _, sub, leaf = world
    assert check(world, [response(sub, leaf, next_update=None)]).valid
    old = response(sub, leaf, this_update=NOW - dt.timedelta(days=3), next_update=None)
    assert check(world, [old]).error.code == "revocation_unknown"


def _responder(sub: Ca, *, eku=True, nocheck=True, issuer: Ca | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (issuer or sub).issue(cn="OCSP Responder", key=key, eku=[ExtendedKeyUsageOID.OCSP_SIGNING] if eku else None, nocheck=nocheck)
    return key, cert


def test_delegated_responder(world):
    _, sub, leaf = world
    key, cert = _responder(sub)
    r = check(world, [response(sub, leaf, signer_key=key, signer_cert=cert, responder_certs=[cert])])
    assert r.valid, r.to_dict()
    assert r.to_dict()["path"][0]["revocation_source"].startswith("OCSP response from CN=OCSP Responder")


def test_delegated_responder_without_ocsp_signing_is_refused(world):
    _, sub, leaf = world
    key, cert = _responder(sub, eku=False)
    r = check(world, [response(sub, leaf, signer_key=key, signer_cert=cert, responder_certs=[cert])])
    assert r.error.code == "revocation_unknown"
    assert "lacks id-kp-OCSPSigning" in r.error.message


def test_delegated_responder_of_another_ca_is_refused(world):
    root, sub, leaf = world
    key, cert = _responder(sub, issuer=root)
    r = check(world, [response(sub, leaf, signer_key=key, signer_cert=cert, responder_certs=[cert])])
    assert r.error.code == "revocation_unknown"
    assert "was not issued by" in r.error.message


def test_delegated_responder_without_nocheck_needs_a_crl(world):
    root, sub, leaf = world
    key, cert = _responder(sub, nocheck=False)
    resp = response(sub, leaf, signer_key=key, signer_cert=cert, responder_certs=[cert])
    r = check(world, [resp])
    assert r.error.code == "revocation_unknown"
    assert "CN=OCSP Responder" in r.error.message and "its own status is unknown" in r.error.message
    # With the sub-CA's CRL saying the responder is fine, the response counts.
    ok = check(world, [resp], crls=[sub.crl([])])
    assert ok.valid, ok.to_dict()
    assert ok.to_dict()["path"][0]["revocation_source"].startswith("OCSP response")
    # and a revoked responder does not
    revoked = check(world, [resp], crls=[sub.crl([cert.serial_number])])
    assert revoked.to_dict()["path"][0].get("revocation_source", "").startswith("CRL number")


def test_nonce_must_be_echoed(world):
    from pki.algorithms import AlgorithmRegistry
    from pki.budget import Budget
    from pki.certificate import parse_certificate
    from pki.ocsp import OcspChecker
    from pki.revocation import RevocationRequest
    from pki.signatures import SignatureVerifier

    _, sub, leaf = world
    path = (parse_certificate(der(leaf)), parse_certificate(der(sub.cert)))
    request = RevocationRequest(path, 0, path[1].spki, None, NOW, Budget())
    sigs = SignatureVerifier(AlgorithmRegistry())
    echoed = parse_ocsp_response(response(sub, leaf, nonce=b"0123456789abcdef"))
    assert OcspChecker([(echoed, b"0123456789abcdef")], sigs).check(request).state == "good"
    wrong = OcspChecker([(echoed, b"fedcba9876543210")], sigs).check(request)
    assert wrong.state == "unknown" and "nonce does not match" in wrong.detail
    missing = parse_ocsp_response(response(sub, leaf))
    absent = OcspChecker([(missing, b"0123456789abcdef")], sigs).check(request)
    assert absent.state == "unknown" and "not echoed" in absent.detail


def test_unsuccessful_response_status(world):
    resp = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(DER)
    assert parse_ocsp_response(resp).status == "tryLater"
    r = check(world, [resp])
    assert r.error.code == "revocation_unknown"
    assert "tryLater" in r.error.message


def test_crl_decides_when_ocsp_cannot(world):
    _, sub, leaf = world
    r = check(world, [response(sub, leaf, ocsp.OCSPCertStatus.UNKNOWN)], crls=[sub.crl([])])
    assert r.valid
    assert r.to_dict()["path"][0]["revocation_source"].startswith("CRL number 1")


def test_malformed_response_is_an_input_error(world):
    with pytest.raises(InputError):
        parse_ocsp_response(b"\x30\x03\x0a\x01\x00garbage")
    with pytest.raises(InputError):
        check(world, [b"not der"])


def test_cli_accepts_ocsp_files(world, tmp_path, capsys):
    root, sub, leaf = world
    files = {
        "root.der": der(root.cert), "sub.der": der(sub.cert), "leaf.der": der(leaf),
        "root.crl": root.crl(), "leaf.ocsp": response(sub, leaf),
    }
    for n, data in files.items():
        (tmp_path / n).write_bytes(data)
    p = lambda n: os.fspath(tmp_path / n)  # noqa: E731
    code = cli_main(["verify", p("leaf.der"), "--anchor", p("root.der"), "--untrusted", p("sub.der"), "--crl", p("root.crl"),
                     "--ocsp", p("leaf.ocsp"), "--at", NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "--revocation", "require", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["path"][0]["revocation_source"].startswith("OCSP response")
    (tmp_path / "bad.ocsp").write_bytes(b"junk")
    code = cli_main(["verify", p("leaf.der"), "--anchor", p("root.der"), "--ocsp", p("bad.ocsp")])
    assert code == 2
