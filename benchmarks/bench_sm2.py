"""SM2-with-SM3 verification through the system libcrypto, next to ECDSA P-256
and RSA-2048 verification by pyca/cryptography, in one run for comparison.

Run: .venv/bin/pytest -q benchmarks/bench_sm2.py --benchmark-only
One operation per benchmark; nothing here asserts on time.
"""
from __future__ import annotations

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
