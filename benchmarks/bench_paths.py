"""Issue 6's reference chain through ``pki.Verifier`` beside its raw cost,
in the same run. Chain: ECDSA P-256, leaf <- issuing CA <- cross-certificate
(the member root's name and key, signed by the bridge) <- bridge anchor.

One operation per benchmark function:

- raw: parse a leaf with cryptography and verify its one signature (the
  reference every ratio is taken against);
- new leaf under intermediates already seen, through a reused Verifier (a
  different leaf every round: ``LEAVES`` distinct leaves are made up front,
  so no round repeats one);
- the same, with CRLs for every CA and revocation required;
- the same leaf again (the result cache);
- cold: a new Verifier every round, beside the three raw ECDSA checks
  (leaf, issuing CA, cross-certificate) that a cold verification needs.

Results are checked valid once, outside the timed part. No timed assertions.

    .venv/bin/pytest -q benchmarks/bench_paths.py --benchmark-only
    .venv/bin/python benchmarks/bench_paths.py      # interleaved ratios (see main)
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pki import Verifier  # noqa: E402
from tests import pkibuilder as pb  # noqa: E402
from tests.pkibuilder import AT, der  # noqa: E402

# Distinct leaves made up front; the new-leaf benchmarks take NEW_LEAF_ROUNDS
# of them without repeating one.
LEAVES = 22_000
NEW_LEAF_ROUNDS = 20_000
COLD_ROUNDS = 2_000
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class Chain:
    """The reference chain, its CRLs and ``LEAVES`` distinct valid leaves."""

    def __init__(self, leaves: int = LEAVES) -> None:
        self.fed = pb.federation(members=(("A", "Guangdong"),))
        a = self.a = self.fed.members["A"]
        self.anchors = [self.fed.bridge.der]
        self.untrusted = [der(self.fed.cross["A"]), a.issuing.der]
        # One CRL per CA key on the path: the bridge (signs the cross-
        # certificate), A's root key (signs the issuing CA), the issuing CA.
        self.crls = [der(pb.crl(self.fed.bridge)), der(pb.crl(a.root)), der(pb.crl(a.issuing))]
        self.leaves = [der(pb.leaf(a.issuing, f"A person {i}", policies=(a.policies[0],))) for i in range(leaves)]
        self.cross = self.fed.cross["A"]

    def verifier(self, crls: bool = False) -> Verifier:
        return Verifier(anchors=self.anchors, untrusted=self.untrusted, crls=self.crls if crls else ())

    def raw_checks(self):
        """(key, signature, signed bytes) of the three signatures on the path."""
        leaf = x509.load_der_x509_certificate(self.leaves[0])
        return [
            (self.a.issuing.public_key, leaf.signature, leaf.tbs_certificate_bytes),
            (self.a.root.public_key, self.a.issuing.cert.signature, self.a.issuing.cert.tbs_certificate_bytes),
            (self.fed.bridge.public_key, self.cross.signature, self.cross.tbs_certificate_bytes),
        ]


def check(result, revocation: str = "not_checked") -> None:
    assert result.valid, result.to_dict()["error"]
    assert len(result.path) == 4
    assert result.revocation == revocation


def raw_parse_and_verify(key):
    def parse_and_verify(data: bytes):
        cert = x509.load_der_x509_certificate(data)
        key.verify(cert.signature, cert.tbs_certificate_bytes, ECDSA_SHA256)
        return cert

    return parse_and_verify


def three_checks(checks):
    def three():
        for key, sig, tbs in checks:
            key.verify(sig, tbs, ECDSA_SHA256)

    return three


def feeder(leaves):
    """pedantic setup: the next unused leaf (StopIteration if rounds > leaves)."""
    it = iter(leaves)
    return lambda: ((next(it),), {"at": AT})


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain()


def test_raw_parse_leaf_and_verify_one_signature(benchmark, chain):
    """Issue 6's "raw": parse a new leaf with cryptography and verify its one
    signature with the issuing CA's (preloaded) key."""
    fn = raw_parse_and_verify(chain.a.issuing.public_key)
    it = iter(chain.leaves[LEAVES - NEW_LEAF_ROUNDS - 10:])
    cert = benchmark.pedantic(fn, setup=lambda: ((next(it),), {}), rounds=NEW_LEAF_ROUNDS, iterations=1, warmup_rounds=10)
    assert cert.issuer == chain.a.issuing.cert.subject


def test_verify_new_leaf_reused_verifier(benchmark, chain):
    """The platform case: one Verifier, a leaf never seen before each round;
    the CA signatures and the CA chain were validated by an earlier call."""
    v = chain.verifier()
    check(v.verify(chain.leaves[0], at=AT))  # warm: the CA chain
    result = benchmark.pedantic(v.verify, setup=feeder(chain.leaves[1:]), rounds=NEW_LEAF_ROUNDS, iterations=1, warmup_rounds=10)
    check(result)
    assert result.path[0].der == chain.leaves[NEW_LEAF_ROUNDS + 10]


def test_verify_new_leaf_reused_verifier_crls(benchmark, chain):
    """As above with a CRL for every CA and revocation required: each round
    also looks the new leaf up in the issuing CA's CRL."""
    v = chain.verifier(crls=True)
    check(v.verify(chain.leaves[0], at=AT, revocation="require"), "checked")
    feed = feeder(chain.leaves[1:])

    def setup():
        args, kwargs = feed()
        return args, dict(kwargs, revocation="require")

    result = benchmark.pedantic(v.verify, setup=setup, rounds=NEW_LEAF_ROUNDS, iterations=1, warmup_rounds=10)
    check(result, "checked")


def test_verify_same_leaf_again(benchmark, chain):
    """A leaf already seen, same parameters, nothing revoked since."""
    v = chain.verifier()
    check(v.verify(chain.leaves[0], at=AT))
    result = benchmark.pedantic(v.verify, args=(chain.leaves[0],), kwargs={"at": AT}, rounds=NEW_LEAF_ROUNDS, iterations=1, warmup_rounds=10)
    check(result)


def test_verify_cold(benchmark, chain):
    """A new Verifier each round (anchor and intermediates parsed, nothing
    cached): three real signature checks plus all the parsing."""
    leaf = chain.leaves[0]
    result = benchmark.pedantic(lambda: chain.verifier().verify(leaf, at=AT), rounds=COLD_ROUNDS, iterations=1, warmup_rounds=10)
    check(result)


def test_raw_three_signature_checks(benchmark, chain):
    """What cold needs at least: the path's three ECDSA verifications, keys
    and signed bytes preloaded (leaf by the issuing CA, issuing CA by A's
    root key, cross-certificate by the bridge)."""
    benchmark.pedantic(three_checks(chain.raw_checks()), rounds=COLD_ROUNDS, iterations=1, warmup_rounds=10)


# --- interleaved comparison ---------------------------------------------------


def interleaved(ops: dict[str, tuple], blocks: int, per_block: int) -> dict[str, list[float]]:
    """Run each op ``per_block`` times, op after op, ``blocks`` times; return
    the per-call time of every block, per op. ``ops[name] = (fn, next_arg)``
    or ``(fn, next_arg, calls_per_block)``, where ``next_arg()`` gives the
    argument of the next call (made outside the timed part). Interleaving
    puts each op under the same background load."""
    out: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(blocks):
        for name, (fn, next_arg, *count) in ops.items():
            calls = count[0] if count else per_block
            args = [next_arg() for _ in range(calls)]
            start = time.perf_counter()
            for a in args:
                fn(a)
            out[name].append((time.perf_counter() - start) / calls)
    return out


def report(times: dict[str, list[float]], reference: str, pairs: tuple[tuple[str, str], ...] = ()) -> None:
    ref_min, ref_med = min(times[reference]), statistics.median(times[reference])
    print(f"{'operation':<42} {'min us':>9} {'median us':>10} {'x ref (min)':>12} {'x ref (median)':>15}")
    for name, values in times.items():
        lo, med = min(values), statistics.median(values)
        print(f"{name:<42} {lo * 1e6:>9.1f} {med * 1e6:>10.1f} {lo / ref_min:>12.2f} {med / ref_med:>15.2f}")
    for name, against in pairs:
        print(f"{name} / {against}: min {min(times[name]) / min(times[against]):.2f}, "
              f"median {statistics.median(times[name]) / statistics.median(times[against]):.2f}")


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="issue 6 ratios, interleaved in one process")
    p.add_argument("--blocks", type=int, default=40)
    p.add_argument("--per-block", type=int, default=200)
    args = p.parse_args()
    need = args.blocks * args.per_block * 2 + 1
    print(f"making {need} leaves ...", flush=True)
    c = Chain(leaves=need)
    warm, warm_crl = c.verifier(), c.verifier(crls=True)
    check(warm.verify(c.leaves[0], at=AT))
    check(warm_crl.verify(c.leaves[0], at=AT, revocation="require"), "checked")
    new = iter(c.leaves[1:])
    new_raw = iter(c.leaves[1:])  # raw parses the same leaves (in its own order)
    new_crl = iter(c.leaves[1 + args.blocks * args.per_block:])
    # The default is the strict profile; the same leaves under 6.1 alone show what it costs.
    warm_rfc = c.verifier()
    check(warm_rfc.verify(c.leaves[0], at=AT, profile="rfc5280"))
    new_rfc = iter(c.leaves[1:])
    raw = raw_parse_and_verify(c.a.issuing.public_key)
    three = three_checks(c.raw_checks())
    same = c.leaves[0]
    ops = {
        "raw: parse leaf + 1 ECDSA verify": (raw, lambda: next(new_raw)),
        "new leaf, reused Verifier": (lambda leaf: warm.verify(leaf, at=AT), lambda: next(new)),
        "new leaf, reused Verifier, profile rfc5280": (lambda leaf: warm_rfc.verify(leaf, at=AT, profile="rfc5280"), lambda: next(new_rfc)),
        "new leaf, reused Verifier, CRLs required": (lambda leaf: warm_crl.verify(leaf, at=AT, revocation="require"), lambda: next(new_crl)),
        "same leaf again": (lambda leaf: warm.verify(leaf, at=AT), lambda: same),
    }
    times = interleaved(ops, args.blocks, args.per_block)
    print(f"\n{args.blocks} blocks x {args.per_block} calls per op, interleaved; per-call times")
    report(times, "raw: parse leaf + 1 ECDSA verify")
    cold = {
        "raw: 3 ECDSA verifies": (lambda _: three(), lambda: None),
        "cold: new Verifier + verify": (lambda leaf: c.verifier().verify(leaf, at=AT), lambda: same),
    }
    times = interleaved(cold, args.blocks, max(1, args.per_block // 4))
    print()
    report(times, "raw: 3 ECDSA verifies")
    check(warm.verify(c.leaves[-1], at=AT))


if __name__ == "__main__":
    main()
