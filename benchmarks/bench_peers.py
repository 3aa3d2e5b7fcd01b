"""bridgeca beside its peers on the same chains, in one run: pyca/
cryptography's verifier (``cryptography.x509.verification``) and
pyhanko-certvalidator. Same chain shape as bench_paths.py (ECDSA P-256,
leaf <- issuing CA <- cross-certificate <- bridge anchor), with what
cryptography's web-PKI profile needs:

- leaves carry a subjectAltName (dNSName) and extendedKeyUsage
  (serverAuth, clientAuth); bench_paths.py's leaves have neither and are
  refused by it;
- the cross-certificate's policyMappings is *non-critical*: cryptography
  refuses a critical policyMappings ("unaccounted-for critical extensions"),
  and its ExtensionPolicy cannot admit it (it takes only the extension types
  cryptography has classes for, and policyMappings has none). RFC 5280
  4.2.1.5 says SHOULD be critical; bridgeca and pyhanko process the mapping
  either way.

CA certificates already carry what the profile asks for (basicConstraints
critical, keyUsage keyCertSign, SKI, AKI). Each verifier gets the leaf as
DER (its parse is part of the operation) and the intermediates parsed once;
none checks revocation here (no CRLs given: bridgeca reports not_checked,
pyhanko soft-fails, cryptography has none). Each keeps what it can between
calls: one bridgeca Verifier, one cryptography ClientVerifier, one pyhanko
ValidationContext. One operation per benchmark function, grouped so the
table shows bridgeca/pyca and bridgeca/pyhanko per group.

    .venv/bin/pytest -q benchmarks/bench_peers.py --benchmark-only
    .venv/bin/python benchmarks/bench_peers.py      # interleaved ratios
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509 import verification as pyca
from cryptography.x509.oid import ExtendedKeyUsageOID

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pyhanko_certvalidator as pyhanko  # noqa: E402
from bench_paths import ECDSA_SHA256, interleaved, raw_parse_and_verify, report  # noqa: E402

from pki import Verifier  # noqa: E402
from tests import pkibuilder as pb  # noqa: E402
from tests.pkibuilder import AT, der  # noqa: E402

LEAVES = 5_200
ROUNDS = 5_000  # bridgeca and cryptography, per function
PYHANKO_ROUNDS = 500  # pyhanko is ~30x slower per call


class PeerChain:
    def __init__(self, leaves: int = LEAVES) -> None:
        self.fed = pb.federation(members=(("A", "Guangdong"),))
        a = self.a = self.fed.members["A"]
        pairs = [(pb.BRIDGE_MEDIUM, a.policies[0]), (pb.BRIDGE_HIGH, a.policies[1])]
        self.cross = pb.cross_certify(self.fed.bridge, a.root, policies=self.fed.bridge_policies,
                                      extra=[(pb.policy_mappings_extension(pairs), False)])
        eku = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        self.leaves = [
            der(pb.leaf(a.issuing, f"A person {i}", policies=(a.policies[0],),
                        san=[x509.DNSName(f"p{i}.a.example")], extra=[eku]))
            for i in range(leaves)
        ]
        self.anchor_der = self.fed.bridge.der
        self.intermediates_der = [der(self.cross), a.issuing.der]

    # --- one verifier each, built once -------------------------------------

    def bridgeca(self):
        v = Verifier(anchors=[self.anchor_der], untrusted=self.intermediates_der)

        def verify(leaf: bytes):
            return v.verify(leaf, at=AT)

        return verify

    def pyca(self):
        store = pyca.Store([self.fed.bridge.cert])
        verifier = pyca.PolicyBuilder().store(store).time(AT).build_client_verifier()
        intermediates = [x509.load_der_x509_certificate(d) for d in self.intermediates_der]

        def verify(leaf: bytes):
            return verifier.verify(x509.load_der_x509_certificate(leaf), intermediates)

        return verify

    def pyhanko(self):
        ctx = pyhanko.ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(self.anchor_der)],
            other_certs=[asn1_x509.Certificate.load(d) for d in self.intermediates_der],
            moment=AT,
        )
        loop = asyncio.new_event_loop()

        def verify(leaf: bytes):
            validator = pyhanko.CertificateValidator(asn1_x509.Certificate.load(leaf), validation_context=ctx)
            return loop.run_until_complete(validator.async_validate_usage(set()))

        return verify


def check_bridgeca(result) -> None:
    assert result.valid, result.to_dict()["error"]
    assert len(result.path) == 4


def check_pyca(verified) -> None:
    assert len(verified.chain) == 4
    assert verified.subjects is not None


def check_pyhanko(path) -> None:
    assert len(path) == 4


CHECKS = {"bridgeca": check_bridgeca, "pyca": check_pyca, "pyhanko": check_pyhanko}


@pytest.fixture(scope="module")
def chain() -> PeerChain:
    return PeerChain()


def _new_leaf(benchmark, chain, who: str, rounds: int) -> None:
    benchmark.group = "new leaf (same chain, bridgeca / cryptography / pyhanko)"
    verify = getattr(chain, who)()
    CHECKS[who](verify(chain.leaves[0]))  # warm
    it = iter(chain.leaves[1:])
    result = benchmark.pedantic(verify, setup=lambda: ((next(it),), {}), rounds=rounds, iterations=1, warmup_rounds=5)
    CHECKS[who](result)


def _same_leaf(benchmark, chain, who: str, rounds: int) -> None:
    benchmark.group = "same leaf again (same chain, bridgeca / cryptography / pyhanko)"
    verify = getattr(chain, who)()
    CHECKS[who](verify(chain.leaves[0]))
    result = benchmark.pedantic(verify, args=(chain.leaves[0],), rounds=rounds, iterations=1, warmup_rounds=5)
    CHECKS[who](result)


def test_raw_parse_leaf_and_verify_one_signature(benchmark, chain):
    """The reference (bench_paths.py), on these leaves, grouped with new leaf."""
    benchmark.group = "new leaf (same chain, bridgeca / cryptography / pyhanko)"
    key = chain.a.issuing.public_key
    it = iter(chain.leaves)

    def parse_and_verify(data: bytes):
        cert = x509.load_der_x509_certificate(data)
        key.verify(cert.signature, cert.tbs_certificate_bytes, ECDSA_SHA256)
        return cert

    benchmark.pedantic(parse_and_verify, setup=lambda: ((next(it),), {}), rounds=ROUNDS, iterations=1, warmup_rounds=5)


def test_new_leaf_bridgeca(benchmark, chain):
    _new_leaf(benchmark, chain, "bridgeca", ROUNDS)


def test_new_leaf_pyca(benchmark, chain):
    _new_leaf(benchmark, chain, "pyca", ROUNDS)


def test_new_leaf_pyhanko(benchmark, chain):
    _new_leaf(benchmark, chain, "pyhanko", PYHANKO_ROUNDS)


def test_same_leaf_bridgeca(benchmark, chain):
    _same_leaf(benchmark, chain, "bridgeca", ROUNDS)


def test_same_leaf_pyca(benchmark, chain):
    _same_leaf(benchmark, chain, "pyca", ROUNDS)


def test_same_leaf_pyhanko(benchmark, chain):
    _same_leaf(benchmark, chain, "pyhanko", PYHANKO_ROUNDS)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="bridgeca / cryptography / pyhanko, interleaved in one process")
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--per-block", type=int, default=100, help="calls per block (pyhanko: a tenth)")
    args = p.parse_args()
    n = args.blocks * args.per_block + 1
    c = PeerChain(leaves=n)
    ops = {}
    for who in ("bridgeca", "pyca", "pyhanko"):
        verify = getattr(c, who)()
        CHECKS[who](verify(c.leaves[0]))
        ops[who] = verify
    slow = max(1, args.per_block // 10)
    print(f"{args.blocks} blocks of {args.per_block} calls per op ({slow} for pyhanko), interleaved; per-call times\n")
    iters = {who: iter(c.leaves[1:]) for who in ops}
    new = interleaved({
        "raw: parse leaf + 1 ECDSA verify": (raw_parse_and_verify(c.a.issuing.public_key), iter(c.leaves[1:]).__next__),
        "new leaf: bridgeca": (ops["bridgeca"], iters["bridgeca"].__next__),
        "new leaf: pyca": (ops["pyca"], iters["pyca"].__next__),
        "new leaf: pyhanko": (ops["pyhanko"], iters["pyhanko"].__next__, slow),
    }, args.blocks, args.per_block)
    report(new, "raw: parse leaf + 1 ECDSA verify",
           (("new leaf: bridgeca", "new leaf: pyca"), ("new leaf: bridgeca", "new leaf: pyhanko")))
    same = c.leaves[0]
    again = interleaved({
        "same leaf: bridgeca": (ops["bridgeca"], lambda: same),
        "same leaf: pyca": (ops["pyca"], lambda: same),
        "same leaf: pyhanko": (ops["pyhanko"], lambda: same, slow),
    }, args.blocks, args.per_block)
    print()
    report(again, "same leaf: bridgeca", (("same leaf: bridgeca", "same leaf: pyca"), ("same leaf: bridgeca", "same leaf: pyhanko")))


if __name__ == "__main__":
    main()
