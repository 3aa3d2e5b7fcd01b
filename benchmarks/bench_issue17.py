"""Issue 17, in process: a new leaf under a known CA chain, and a repeated
invalid question, beside "raw" (parse the leaf with cryptography and verify
its one signature), in the same run. Chain: issue 6's reference chain
(bench_paths.py: ECDSA P-256, leaf <- issuing CA <- cross-certificate <-
bridge anchor).

One operation per benchmark function:

- raw: parse a new leaf with cryptography, verify its signature;
- a new leaf under the known chain, ``Verifier.verify`` (a different leaf
  every round);
- the same through ``verify_without_search`` (what the service asks first);
- a repeated invalid question: a leaf that expired before the validation
  time, asked again (``verify``, and ``verify_without_search``).

Results are checked outside the timed part. No timed assertions.

    .venv/bin/pytest -q benchmarks/bench_issue17.py --benchmark-only
    .venv/bin/python benchmarks/bench_issue17.py     # interleaved ratios, by CPU time (--wall: wall clock)
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_paths import Chain, check, feeder, raw_parse_and_verify, report  # noqa: E402

from tests import pkibuilder as pb  # noqa: E402
from tests.pkibuilder import AT, der  # noqa: E402

ROUNDS = 10_000
LEAVES = 2 * ROUNDS + 40


def expired_leaf(c: Chain) -> bytes:
    return der(pb.leaf(c.a.issuing, "A person whose certificate expired", policies=(c.a.policies[0],),
                       not_before=AT - dt.timedelta(days=30), not_after=AT - dt.timedelta(days=1)))


def check_expired(result) -> None:
    assert result is not None and not result.valid and result.error.code == "expired" and result.error.index == 0


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain(leaves=LEAVES)


def test_raw_parse_leaf_and_verify_one_signature(benchmark, chain):
    fn = raw_parse_and_verify(chain.a.issuing.public_key)
    it = iter(chain.leaves[1:])
    cert = benchmark.pedantic(fn, setup=lambda: ((next(it),), {}), rounds=ROUNDS, iterations=1, warmup_rounds=10)
    assert cert.issuer == chain.a.issuing.cert.subject


def test_new_leaf_under_a_known_chain_verify(benchmark, chain):
    v = chain.verifier()
    check(v.verify(chain.leaves[0], at=AT))
    result = benchmark.pedantic(v.verify, setup=feeder(chain.leaves[1:]), rounds=ROUNDS, iterations=1, warmup_rounds=10)
    check(result)


def test_new_leaf_under_a_known_chain_verify_without_search(benchmark, chain):
    v = chain.verifier()
    check(v.verify(chain.leaves[0], at=AT))
    result = benchmark.pedantic(v.verify_without_search, setup=feeder(chain.leaves[ROUNDS + 20:]), rounds=ROUNDS,
                                iterations=1, warmup_rounds=10)
    check(result)


@pytest.mark.parametrize("call", ["verify", "verify_without_search"])
def test_repeated_invalid_question(benchmark, chain, call):
    v = chain.verifier()
    check(v.verify(chain.leaves[0], at=AT))
    leaf = expired_leaf(chain)
    check_expired(v.verify(leaf, at=AT))
    result = benchmark.pedantic(getattr(v, call), args=(leaf,), kwargs={"at": AT}, rounds=ROUNDS, iterations=1,
                                warmup_rounds=10)
    check_expired(result)


def interleaved(ops: dict[str, tuple], blocks: int, per_block: int, clock=time.thread_time) -> dict[str, list[float]]:
    """bench_paths.interleaved, timed by ``clock``: the thread's CPU time by
    default, which the other processes of a loaded machine disturb far less
    than the wall clock."""
    out: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(blocks):
        for name, (fn, next_arg) in ops.items():
            args = [next_arg() for _ in range(per_block)]
            start = clock()
            for a in args:
                fn(a)
            out[name].append((clock() - start) / per_block)
    return out


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="issue 17 in-process ratios, interleaved in one process")
    p.add_argument("--blocks", type=int, default=40)
    p.add_argument("--per-block", type=int, default=200)
    p.add_argument("--wall", action="store_true", help="time by the wall clock, not the thread's CPU time")
    args = p.parse_args()
    need = 2 * args.blocks * args.per_block + 1
    print(f"making {need} leaves ...", flush=True)
    c = Chain(leaves=need)
    warm = c.verifier()
    check(warm.verify(c.leaves[0], at=AT))
    expired = expired_leaf(c)
    check_expired(warm.verify(expired, at=AT))
    new = iter(c.leaves[1:])
    new_quick = iter(c.leaves[1 + args.blocks * args.per_block:])
    raw_leaves = iter(c.leaves[1:])
    raw = raw_parse_and_verify(c.a.issuing.public_key)
    ops = {
        "raw: parse leaf + 1 ECDSA verify": (raw, lambda: next(raw_leaves)),
        "new leaf, known chain: verify": (lambda leaf: warm.verify(leaf, at=AT), lambda: next(new)),
        "new leaf, known chain: verify_without_search": (lambda leaf: warm.verify_without_search(leaf, at=AT),
                                                         lambda: next(new_quick)),
        "repeated invalid question: verify": (lambda leaf: warm.verify(leaf, at=AT), lambda: expired),
        "repeated invalid question: verify_without_search": (lambda leaf: warm.verify_without_search(leaf, at=AT),
                                                             lambda: expired),
    }
    times = interleaved(ops, args.blocks, args.per_block, time.perf_counter if args.wall else time.thread_time)
    print(f"\n{args.blocks} blocks x {args.per_block} calls per op, interleaved; per-call "
          f"{'wall' if args.wall else 'CPU'} times")
    report(times, "raw: parse leaf + 1 ECDSA verify")
    check(warm.verify(c.leaves[-1], at=AT))
    check_expired(warm.verify_without_search(expired, at=AT))


if __name__ == "__main__":
    main()
