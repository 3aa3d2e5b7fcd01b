"""SM2-with-SM3 verification by every backend at hand, interleaved, each as a
ratio to cryptography's ECDSA P-256 verification measured in the same round
(issue 17's target: SM2 <= 2x P-256).

Rows (1 KiB message, about a TBSCertificate; the same SM2 signature, made by
libcrypto with the GM/T 0009 default ID, for every SM2 row):

- ``p256``: the reference, cryptography's ECDSA P-256 SHA-256 verify;
- ``evp``: pki.sm2 through libcrypto's SM2 signature provider (EVP_DigestVerify),
  a loaded key (what every verification cost before issue 17);
- ``ec-table``: pki.sm2's "ec" backend, a key used before (its multiples
  precomputed: a CA key verifying many leaves);
- ``ec-first``: the "ec" backend on a key's first verification (no table yet;
  the generator's table only);
- ``evp-load``, ``ec-load``: ``verify_sm2_sm3`` from SPKI bytes (key loading
  included), per backend;
- ``path-sm2``, ``path-p256`` (with ``--paths``): benchmarks/bench_sm2.py's
  4-certificate path (leaf <- issuing CA <- cross-certificate <- bridge anchor,
  every certificate SM2, or every one P-256), a reused ``pki.Verifier`` given a
  leaf it has never seen each call: one signature check (the issuing CA's key,
  so "ec" with its table) plus parsing and validation;
- ``gmssl-pyx``, ``gmssl-fast``, ``tongsuopy``, ``smcryptopy``: PyPI bindings of
  GmSSL 3 (C extension; Rust extension, static), Tongsuo 8.3 (a cryptography
  fork) and a Rust SM2, each only if importable. They are not dependencies of
  bridgeca; to measure them, install them beside the project:

      .venv/bin/pip install --target /tmp/sm2-candidates gmssl-pyx gmssl-fast tongsuopy smcryptopy
      PYTHONPATH=/tmp/sm2-candidates .venv/bin/python benchmarks/bench_sm2_backends.py

Every row is checked once outside the timing (the valid signature verifies,
a tampered message does not). Each round times every row once, in a shuffled
order, ``CALLS`` calls each, by this thread's CPU time (``--clock wall`` for
elapsed time; CPU time leaves out the time other processes on a shared machine
take the core away); the table gives, per row, the minimum and median
microseconds per call and the median and minimum of the per-round ratios to
``p256``. No assertion on time.

    .venv/bin/python benchmarks/bench_sm2_backends.py [--rounds 40] [--paths]

Instructions per call, which the machine's load does not change: run one row
under callgrind with 0 and with N calls and divide the difference by N:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python benchmarks/bench_sm2_backends.py --only ec-table --rounds 1 --calls 200
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.sm2_keys import Sm2PrivateKey  # noqa: E402
from pki import sm2  # noqa: E402

MESSAGE = os.urandom(1024)
CALLS = 50


def _raw_signature(signature_der: bytes) -> bytes:
    values = sm2._signature_values(signature_der)
    assert values is not None
    return values[0].to_bytes(32, "big") + values[1].to_bytes(32, "big")


def path_rows(leaves: int) -> dict[str, Callable[[bytes], object]]:
    """A reused Verifier, a new leaf each call, for the all-SM2 and the all-P-256 path."""
    from benchmarks.bench_sm2 import PathPki

    rows: dict[str, Callable[[bytes], object]] = {}
    for key_type, name in (("sm2", "path-sm2"), ("ec-p256", "path-p256")):
        pki_ = PathPki(key_type, leaves=leaves + 2)
        verifier = pki_.verifier()
        assert verifier.verify(pki_.leaves[0]).valid  # the CA chain, validated once
        assert verifier.verify(pki_.leaves[1]).valid  # the issuing CA key's second use: its table
        rows[name] = _new_leaf_row(verifier, iter(pki_.leaves[2:]), name)
    return rows


def _new_leaf_row(verifier, fresh, name: str) -> Callable[[bytes], object]:
    def verify_new_leaf(_message: bytes) -> bool:
        if not verifier.verify(next(fresh)).valid:
            raise AssertionError(f"{name}: a leaf of the path did not verify")
        return True

    return verify_new_leaf


def candidates() -> tuple[dict[str, Callable[[bytes], object]], list[str]]:
    """name -> verify(message) returning truthy when valid; and the rows left out, with why."""
    private = ec.generate_private_key(ec.SECP256R1())
    p256_signature = private.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    p256_key = private.public_key()

    def p256(message: bytes) -> bool:
        try:
            p256_key.verify(p256_signature, message, ec.ECDSA(hashes.SHA256()))
        except Exception:
            return False
        return True

    key = Sm2PrivateKey.generate()
    spki = key.public_key_spki_der()
    signature = key.sign(MESSAGE)
    point = spki[-64:]  # x || y of the uncompressed point
    rows: dict[str, Callable[[bytes], object]] = {"p256": p256}
    skipped: list[str] = []

    evp = sm2.Sm2PublicKey(spki, backend="evp")
    rows["evp"] = lambda message: evp.verify(message, signature)
    rows["evp-load"] = lambda message: sm2.Sm2PublicKey(spki, backend="evp").verify(message, signature)
    if sm2.ec_curve() is None:
        skipped.append(f"ec: {sm2._curve_failure}")
    else:
        tabled = sm2.Sm2PublicKey(spki, backend="ec")
        tabled.verify(MESSAGE, signature)
        tabled.verify(MESSAGE, signature)  # the second use builds its table
        assert tabled._table is not None
        rows["ec-table"] = lambda message: tabled.verify(message, signature)
        first = sm2.Sm2PublicKey(spki, backend="ec")

        def ec_first(message: bytes) -> bool:
            first._uses = 0  # always its first verification: no table
            return first.verify(message, signature)

        rows["ec-first"] = ec_first
        rows["ec-load"] = lambda message: sm2.Sm2PublicKey(spki, backend="ec").verify(message, signature)

    try:
        import gmssl_pyx

        rows["gmssl-pyx"] = lambda message: gmssl_pyx.sm2_verify(point, message, signature, sm2.DEFAULT_DISTID)
    except ImportError as exc:
        skipped.append(f"gmssl-pyx: {exc}")
    try:
        import gmssl_fast

        handle = gmssl_fast._core.Sm2KeyHandle(None, "04" + point.hex())
        raw = _raw_signature(signature)
        rows["gmssl-fast"] = lambda message: handle.verify(message, raw)  # its default ID only
    except ImportError as exc:
        skipped.append(f"gmssl-fast: {exc}")
    try:
        from tongsuopy.crypto import hashes as tongsuo_hashes
        from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

        tongsuo_key = tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(tongsuo_ec.SM2(), b"\x04" + point)

        def tongsuo(message: bytes) -> bool:
            try:
                tongsuo_key.verify(signature, message, tongsuo_ec.ECDSA(tongsuo_hashes.SM3()))
            except Exception:
                return False
            return True

        rows["tongsuopy"] = tongsuo
    except ImportError as exc:
        skipped.append(f"tongsuopy: {exc}")
    try:
        import smcryptopy.sm2 as smcrypto

        rows["smcryptopy"] = lambda message: smcrypto.verify(sm2.DEFAULT_DISTID, message, signature, point.hex()) == 1
    except ImportError as exc:
        skipped.append(f"smcryptopy: {exc}")

    tampered = MESSAGE[:-1] + bytes([MESSAGE[-1] ^ 1])
    for name, verify in rows.items():
        assert verify(MESSAGE), f"{name} refuses a valid signature"
        assert not verify(tampered), f"{name} accepts a tampered message"
    return rows, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--paths", action="store_true", help="add the 4-certificate path rows")
    parser.add_argument("--only", help="time this row alone (p256 is always set up)")
    parser.add_argument("--calls", type=int, default=CALLS, help="calls per row per round")
    args = parser.parse_args()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    rows, skipped = candidates()
    if args.paths:
        rows.update(path_rows(args.rounds * CALLS))
    if args.only:
        rows = {name: verify for name, verify in rows.items() if name in (args.only, "p256")}
    # smcryptopy takes ~50 ms a call: fewer calls, or it would dominate the run.
    calls = {name: (2 if name == "smcryptopy" else args.calls) for name in rows}
    if args.only and args.only != "p256":
        calls["p256"] = 0
    times: dict[str, list[float]] = {name: [] for name in rows}
    ratios: dict[str, list[float]] = {name: [] for name in rows}
    order = list(rows)
    for _ in range(args.rounds):
        random.shuffle(order)
        this_round = {}
        for name in order:
            verify, count = rows[name], calls[name]
            start = clock()
            for _ in range(count):
                verify(MESSAGE)
            this_round[name] = (clock() - start) / max(count, 1) * 1e6
        for name, micros in this_round.items():
            times[name].append(micros)
            ratios[name].append(micros / (this_round["p256"] or float("nan")))
    print(f"{args.rounds} rounds, {args.calls} calls per row per round, {args.clock} time; µs per call; "
          "ratio = row / p256 in the same round")
    print(f"{'row':<12} {'min µs':>9} {'median µs':>10} {'median ratio':>13} {'min ratio':>10}")
    for name in sorted(rows, key=lambda n: statistics.median(times[n])):
        print(f"{name:<12} {min(times[name]):9.1f} {statistics.median(times[name]):10.1f} "
              f"{statistics.median(ratios[name]):13.2f} {min(ratios[name]):10.2f}")
    if "ec-table" in times and min(times["p256"]) > 0:
        print(f"ec-table / p256, ratio of the rows' minimums: {min(times['ec-table']) / min(times['p256']):.2f}")
    if args.paths:
        print(f"path-sm2 / path-p256, median of the rounds' ratios: "
              f"{statistics.median(a / b for a, b in zip(times['path-sm2'], times['path-p256'], strict=True)):.2f}")
    for line in skipped:
        print("not measured:", line)


if __name__ == "__main__":
    main()
