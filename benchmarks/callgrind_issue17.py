"""Issue 17's in-process ratios counted in instructions (valgrind's
callgrind), a measure the load of a shared machine does not disturb.

Each operation runs in its own process under callgrind twice, ``--small``
and ``--large`` times after the same warm-up; the difference of the two
totals over the difference of the counts is the cost of one operation, the
set-up (imports, the chain, the warm-up) cancelling out. The chain and its
leaves are made once, outside valgrind, in ``--data``.

    .venv/bin/python benchmarks/callgrind_issue17.py            # all operations
    .venv/bin/python benchmarks/callgrind_issue17.py --ops raw new_leaf
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

AT = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)  # tests.pkibuilder.AT
OPS = ("raw", "new_leaf", "new_leaf_without_search", "repeated_invalid", "repeated_invalid_without_search")


def prepare(path: Path, leaves: int) -> None:
    sys.path.insert(0, str(HERE))
    from bench_issue17 import expired_leaf
    from bench_paths import Chain
    from cryptography.hazmat.primitives import serialization

    c = Chain(leaves=leaves)
    key = c.a.issuing.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    data = {"anchors": c.anchors, "untrusted": c.untrusted, "leaves": c.leaves, "expired": expired_leaf(c), "key": key}
    path.write_bytes(pickle.dumps(data))


def run(path: Path, op: str, count: int, warm: int) -> None:
    """The measured process: warm up, then ``count`` operations."""
    data = pickle.loads(path.read_bytes())
    leaves = data["leaves"]
    if op == "raw":
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = serialization.load_der_public_key(data["key"])
        algorithm = ec.ECDSA(hashes.SHA256())

        def raw(leaf: bytes) -> None:
            cert = x509.load_der_x509_certificate(leaf)
            key.verify(cert.signature, cert.tbs_certificate_bytes, algorithm)  # type: ignore[union-attr,call-arg]

        for leaf in leaves[1 : 1 + warm + count]:
            raw(leaf)
        return
    from pki import Verifier

    v = Verifier(anchors=data["anchors"], untrusted=data["untrusted"])
    assert v.verify(leaves[0], at=AT).valid
    if op.startswith("new_leaf"):
        call = v.verify if op == "new_leaf" else v.verify_without_search
        for leaf in leaves[1 : 1 + warm + count]:
            result = call(leaf, at=AT)
        assert result is not None and result.valid
    else:
        call = v.verify if op == "repeated_invalid" else v.verify_without_search
        expired = data["expired"]
        assert not v.verify(expired, at=AT).valid
        for _ in range(warm + count):
            result = call(expired, at=AT)
        assert result is not None and result.error.code == "expired"


def instructions(data: Path, op: str, count: int, warm: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                        "--run", str(data), op, str(count), str(warm)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONHASHSEED="0"))
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
        assert match, "no totals in the callgrind output"
        return int(match.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", nargs="*", default=list(OPS), choices=OPS)
    p.add_argument("--small", type=int, default=200)
    p.add_argument("--large", type=int, default=1200)
    p.add_argument("--warm", type=int, default=200)
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bridgeca-issue17-chain.pickle")
    p.add_argument("--run", nargs=4, metavar=("DATA", "OP", "COUNT", "WARM"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.run:
        run(Path(args.run[0]), args.run[1], int(args.run[2]), int(args.run[3]))
        return
    if not args.data.exists():
        prepare(args.data, args.large + args.warm + 2)
    per_op = {}
    for op in args.ops:
        small = instructions(args.data, op, args.small, args.warm)
        large = instructions(args.data, op, args.large, args.warm)
        per_op[op] = (large - small) / (args.large - args.small)
        print(f"{op:<34} {per_op[op]:>12,.0f} instructions per operation", flush=True)
    if "raw" in per_op:
        for op, cost in per_op.items():
            print(f"{op:<34} {cost / per_op['raw']:>6.3f} x raw")


if __name__ == "__main__":
    main()
