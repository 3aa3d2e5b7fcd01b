"""SM2-with-SM3 verification through the system libcrypto, next to ECDSA P-256
and RSA-2048 verification by pyca/cryptography, in one run for comparison;
then a 4-certificate path (leaf <- issuing CA <- cross-certificate <- bridge
anchor) all SM2, and the same path all ECDSA P-256, built the same way and
verified through a reused ``pki.Verifier`` with a new leaf every round.

Run: .venv/bin/pytest -q benchmarks/bench_sm2.py --benchmark-only
One operation per benchmark; results are checked outside the timed part;
nothing here asserts on time.
"""
from __future__ import annotations

import datetime as dt
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pki.sm2 import Sm2PublicKey, sm2_available, verify_sm2_sm3

# About the size of a certificate's TBSCertificate.
MESSAGE = os.urandom(1024)

needs_sm2 = pytest.mark.skipif(not sm2_available(), reason="the system libcrypto cannot do SM2/SM3")


@pytest.fixture(scope="module")
def sm2_signed():
    from bridge.sm2_keys import Sm2PrivateKey

    key = Sm2PrivateKey.generate()
    return key, key.public_key_spki_der(), key.sign(MESSAGE)


@needs_sm2
def test_sm2_verify_preloaded_key(benchmark, sm2_signed):
    _, spki_der, signature = sm2_signed
    public_key = Sm2PublicKey(spki_der)
    assert benchmark(public_key.verify, MESSAGE, signature) is True


@needs_sm2
def test_sm2_verify_from_spki_bytes(benchmark, sm2_signed):
    _, spki_der, signature = sm2_signed
    assert benchmark(verify_sm2_sm3, spki_der, MESSAGE, signature) is True


@needs_sm2
def test_sm2_sign(benchmark, sm2_signed):
    key, _, _ = sm2_signed
    assert benchmark(key.sign, MESSAGE).startswith(b"\x30")


def test_ecdsa_p256_verify(benchmark):
    private_key = ec.generate_private_key(ec.SECP256R1())
    signature = private_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    public_key = private_key.public_key()
    # verify() returns None and raises InvalidSignature on failure.
    benchmark(public_key.verify, signature, MESSAGE, ec.ECDSA(hashes.SHA256()))


def test_rsa2048_pkcs1v15_sha256_verify(benchmark):
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = private_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    public_key = private_key.public_key()
    benchmark(public_key.verify, signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


# --- a 4-certificate path through a reused Verifier ------------------------------

PATH_ROUNDS = 2_000
LEAVES = PATH_ROUNDS + 20


class PathPki:
    """bridge anchor -> cross-certificate (a member root's name and key) ->
    issuing CA -> ``LEAVES`` distinct leaves, every certificate signed with
    ``key_type`` (sm2 or ec-p256) through the bridge's own signers."""

    def __init__(self, key_type: str, leaves: int = LEAVES) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import NameOID

        from bridge.signer import Sm2SoftwareSigner, SoftwareSigner, key_identifier

        def new_signer():
            if key_type == "sm2":
                return Sm2SoftwareSigner.generate_key()
            return SoftwareSigner(ec.generate_private_key(ec.SECP256R1()))

        placeholder = ec.generate_private_key(ec.SECP256R1()).public_key()
        now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)

        def named(cn: str):
            return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def certificate(issuer, issuer_name, subject_signer, subject_name, ca: bool):
            spki = subject_signer.public_key_spki()
            builder = (
                x509.CertificateBuilder().subject_name(subject_name).issuer_name(issuer_name).public_key(placeholder)
                .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(not ca, False, False, False, False, ca, ca, False, False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier(key_identifier(spki)), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier(key_identifier(issuer.public_key_spki()), None, None), critical=False)
            )
            return issuer.sign_certificate(builder, subject_public_key_info=spki).public_bytes(serialization.Encoding.DER)

        bridge, root, issuing = new_signer(), new_signer(), new_signer()
        bridge_name, root_name, issuing_name = named("Bridge CA"), named("Member Root CA"), named("Member Issuing CA")
        self.anchor = certificate(bridge, bridge_name, bridge, bridge_name, True)
        self.cross = certificate(bridge, bridge_name, root, root_name, True)
        self.issuing = certificate(root, root_name, issuing, issuing_name, True)
        leaf_key = new_signer()  # one key, distinct certificates: the cost measured is the issuer's signature
        self.leaves = [certificate(issuing, issuing_name, leaf_key, named(f"person {i}"), False) for i in range(leaves)]

    def verifier(self):
        from pki import Verifier

        return Verifier(anchors=[self.anchor], untrusted=[self.cross, self.issuing])


def _check_path(result, key_type: str) -> None:
    from pki.der import split_signed

    assert result.valid, result.to_dict()["error"]
    assert len(result.path) == 4
    algorithm = split_signed(result.path[0].der)[1]
    assert (algorithm == bytes.fromhex("300a06082a811ccf55018375")) is (key_type == "sm2")


@pytest.fixture(scope="module", params=["sm2", "ec-p256"])
def path_pki(request):
    if request.param == "sm2" and not sm2_available():
        pytest.skip("the system libcrypto cannot do SM2/SM3")
    return request.param, PathPki(request.param)


def test_four_certificate_path_new_leaf_reused_verifier(benchmark, path_pki):
    """One Verifier, a leaf it has never seen each round (the CA chain was
    validated by an earlier call): one leaf signature check, the rest cached."""
    key_type, pki_ = path_pki
    verifier = pki_.verifier()
    _check_path(verifier.verify(pki_.leaves[0]), key_type)  # warm: the CA chain
    leaves = iter(pki_.leaves[1:])
    result = benchmark.pedantic(verifier.verify, setup=lambda: ((next(leaves),), {}), rounds=PATH_ROUNDS,
                                iterations=1, warmup_rounds=10)
    _check_path(result, key_type)


def test_four_certificate_path_cold(benchmark, path_pki):
    """A new Verifier each round: parsing plus the path's three signature checks."""
    key_type, pki_ = path_pki
    result = benchmark.pedantic(lambda: pki_.verifier().verify(pki_.leaves[0]), rounds=PATH_ROUNDS // 4,
                                iterations=1, warmup_rounds=5)
    _check_path(result, key_type)
