"""Resident size of one ``pki.Verifier`` as it verifies 100,000 distinct
leaves (issue 6: the caches must be bounded).

The chain is bench_paths.py's (ECDSA P-256, leaf <- issuing CA <-
cross-certificate <- bridge anchor). Leaves are made in batches of
``--batch`` just before they are verified and dropped after, so what stays
is what the Verifier keeps. At each checkpoint: VmRSS (now) and VmHWM (peak)
from /proc/self/status, ru_maxrss, and the length of each of the Verifier's
caches (read for the report only). Every result is checked valid.

    .venv/bin/python benchmarks/memory.py                      # 100,000 leaves
    .venv/bin/python benchmarks/memory.py --leaves 150000
    .venv/bin/python benchmarks/memory.py --times 2           # each leaf twice: the result cache fills

A leaf's answer is cached from its first verification (issue 17: a
repeated question costs no validation), so the result cache fills (8,192
entries) with ``--times 1`` already.
"""
from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_paths import Chain  # noqa: E402

from tests import pkibuilder as pb  # noqa: E402
from tests.pkibuilder import AT, der  # noqa: E402


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cache_sizes(v) -> dict[str, int]:
    """Lengths of the Verifier's caches (private attributes; reporting only)."""
    out = {}
    for label, get in (
        ("results", lambda: len(v._results)),
        ("signatures", lambda: len(v.signatures._known)),
        ("known chain states", lambda: v._known.states()),
        ("known chains", lambda: len(v._known)),
        ("parse: names", lambda: len(v._parse_cache._keys)),
        ("rdns", lambda: len(v._parse_cache._rdn_texts) + len(v._parse_cache._good_rdns)),
        ("extensions", lambda: len(v._parse_cache.extensions) + len(v._parse_cache.extension_blocks)),
    ):
        try:
            out[label] = get()
        except (AttributeError, TypeError):
            out[label] = -1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--leaves", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1_000)
    p.add_argument("--times", type=int, default=1, help="verify each leaf this many times in a row")
    p.add_argument("--checkpoints", default="0,10000,25000,50000,75000,100000")
    args = p.parse_args()
    checkpoints = sorted({int(x) for x in args.checkpoints.split(",") if int(x) <= args.leaves} | {args.leaves})

    chain = Chain(leaves=1)
    a = chain.a
    verifier = chain.verifier()
    gc.collect()
    print(f"{'leaves':>8} {'VmRSS MiB':>10} {'VmHWM MiB':>10} {'maxrss MiB':>11}  caches (entries)", flush=True)

    def report(done: int) -> None:
        gc.collect()
        sizes = cache_sizes(verifier)
        print(f"{done:>8} {status_kib('VmRSS') / 1024:>10.1f} {status_kib('VmHWM') / 1024:>10.1f} "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>11.1f}  "
              + ", ".join(f"{k} {v}" for k, v in sizes.items()), flush=True)

    start = time.perf_counter()
    done, invalid = 0, 0
    pending = list(checkpoints)
    if pending and pending[0] == 0:
        report(0)
        pending.pop(0)
    while done < args.leaves:
        n = min(args.batch, args.leaves - done, (pending[0] - done) if pending else args.batch)
        batch = [der(pb.leaf(a.issuing, f"A person {done + i}", policies=(a.policies[0],))) for i in range(n)]
        for leaf in batch:
            for _ in range(args.times):
                result = verifier.verify(leaf, at=AT)
                invalid += not result.valid
        del batch, result
        done += n
        if pending and done == pending[0]:
            report(done)
            pending.pop(0)
    print(f"{done} distinct leaves verified through one Verifier in {time.perf_counter() - start:.0f} s "
          f"(leaf making included); {invalid} invalid")
    if invalid:
        raise SystemExit("some leaves were not valid")


if __name__ == "__main__":
    main()
