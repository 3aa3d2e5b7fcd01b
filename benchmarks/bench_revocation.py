"""Revocation cost: a status check against a CRL of 1,000 and of 100,000
entries (the two should be about equal: a CRL is indexed once, when it is
loaded, and a check is a dictionary lookup), and the one-off cost of loading
(parsing, indexing) each. One operation per benchmark function.

    .venv/bin/pytest -q benchmarks/bench_revocation.py --benchmark-only
"""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki.algorithms import AlgorithmRegistry
from pki.budget import Budget
from pki.certificate import parse_certificate
from pki.crl import parse_crl
from pki.revocation import CrlChecker, RevocationRequest
from pki.signatures import SignatureVerifier

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def ca():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("Bench CA")).issuer_name(_name("Bench CA"))
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=30)).not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name("Bench leaf")).issuer_name(_name("Bench CA"))
        .public_key(leaf_key.public_key()).serial_number(10**9)
        .not_valid_before(NOW - dt.timedelta(days=30)).not_valid_after(NOW + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, parse_certificate(cert.public_bytes(serialization.Encoding.DER)), parse_certificate(leaf.public_bytes(serialization.Encoding.DER))


def _crl(key, entries: int) -> bytes:
    b = (
        x509.CertificateRevocationListBuilder().issuer_name(_name("Bench CA"))
        .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    when = NOW - dt.timedelta(days=1)
    for serial in range(1, entries + 1):
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def crl_1k(ca):
    return _crl(ca[0], 1_000)


@pytest.fixture(scope="module")
def crl_100k(ca):
    return _crl(ca[0], 100_000)


def _checker_and_request(ca, crl_der):
    _, cert, leaf = ca
    checker = CrlChecker([parse_crl(crl_der)], SignatureVerifier(AlgorithmRegistry()))
    request = RevocationRequest((leaf, cert), 0, cert.spki, None, NOW, Budget())
    assert checker.check(request).state == "good"  # warms the signature cache
    return checker, request


def _check(checker, request):
    # A fresh budget per check, as each verification has its own.
    return checker.check(RevocationRequest(request.path, 0, request.issuer_spki, None, request.at, Budget()))


def test_status_check_crl_1k(benchmark, ca, crl_1k):
    checker, request = _checker_and_request(ca, crl_1k)
    assert benchmark(_check, checker, request).state == "good"


def test_status_check_crl_100k(benchmark, ca, crl_100k):
    checker, request = _checker_and_request(ca, crl_100k)
    assert benchmark(_check, checker, request).state == "good"


def test_load_crl_1k(benchmark, crl_1k):
    crl = benchmark(parse_crl, crl_1k)
    assert len(crl.entries) == 1_000


def test_load_crl_100k(benchmark, crl_100k):
    crl = benchmark.pedantic(parse_crl, args=(crl_100k,), rounds=3, iterations=1)
    assert len(crl.entries) == 100_000
