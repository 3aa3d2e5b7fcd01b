"""Validating a 4-certificate bridge path (leaf <- issuing CA <-
cross-certificate <- bridge anchor; ECDSA P-256) through ``pki.Verifier``,
beside the raw cost of the signature checks that path performs, in the same
run. One operation per benchmark function.

    .venv/bin/pytest -q benchmarks/bench_paths.py --benchmark-only
"""
from __future__ import annotations

import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pki import Verifier
from tests import pkibuilder as pb
from tests.pkibuilder import AT, der

LEAVES = 3000
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@pytest.fixture(scope="module")
def bridge_path():
    fed = pb.federation(members=(("A", "Guangdong"),))
    a = fed.members["A"]
    anchors = [fed.bridge.der]
    untrusted = [der(fed.cross["A"]), a.issuing.der]
    leaves = [der(pb.leaf(a.issuing, f"A person {i}", policies=(a.policies[0],))) for i in range(LEAVES)]
    return fed, a, anchors, untrusted, leaves


def _check(result) -> None:
    assert result.valid, result.to_dict()["error"]
    assert len(result.path) == 4


def test_verify_reused_verifier_new_leaf(benchmark, bridge_path):
    """The platform case: one Verifier, a different leaf every call (the
    leaf's signature is a real check; the two CA signatures are cached)."""
    fed, a, anchors, untrusted, leaves = bridge_path
    v = Verifier(anchors=anchors, untrusted=untrusted)
    _check(v.verify(leaves[0], at=AT))  # warm: the CA signatures
    it = iter(leaves[1:])
    result = benchmark.pedantic(v.verify, setup=lambda: ((next(it),), {"at": AT}), rounds=LEAVES - 200, iterations=1, warmup_rounds=10)
    _check(result)


def test_verify_reused_verifier_same_leaf(benchmark, bridge_path):
    fed, a, anchors, untrusted, leaves = bridge_path
    v = Verifier(anchors=anchors, untrusted=untrusted)
    _check(benchmark(v.verify, leaves[0], at=AT))


def test_verify_cold(benchmark, bridge_path):
    """A new Verifier each time: parse anchor and intermediates, 3 real
    signature checks."""
    fed, a, anchors, untrusted, leaves = bridge_path
    _check(benchmark(lambda: Verifier(anchors=anchors, untrusted=untrusted).verify(leaves[0], at=AT)))


def test_raw_three_signature_checks(benchmark, bridge_path):
    """The signatures the path carries, checked with cryptography, keys and
    signed bytes preloaded: leaf by issuing CA, issuing CA by A's key (the
    cross-certificate's), cross-certificate by the bridge."""
    fed, a, anchors, untrusted, leaves = bridge_path
    leaf = x509.load_der_x509_certificate(leaves[0])
    checks = [
        (a.issuing.public_key, leaf.signature, leaf.tbs_certificate_bytes),
        (a.root.public_key, a.issuing.cert.signature, a.issuing.cert.tbs_certificate_bytes),
        (fed.bridge.public_key, fed.cross["A"].signature, fed.cross["A"].tbs_certificate_bytes),
    ]

    def three():
        for key, sig, tbs in checks:
            key.verify(sig, tbs, ECDSA_SHA256)

    benchmark(three)


def test_raw_parse_leaf_and_verify_one_signature(benchmark, bridge_path):
    """Issue 6's "raw" reference: parse a leaf with cryptography and verify
    its one signature (the marginal work of a new leaf on a warm path)."""
    fed, a, anchors, untrusted, leaves = bridge_path
    key = a.issuing.public_key
    it = itertools.cycle(leaves)

    def parse_and_verify(data):
        cert = x509.load_der_x509_certificate(data)
        key.verify(cert.signature, cert.tbs_certificate_bytes, ECDSA_SHA256)
        return cert

    benchmark.pedantic(parse_and_verify, setup=lambda: ((next(it),), {}), rounds=LEAVES - 200, iterations=1, warmup_rounds=10)
