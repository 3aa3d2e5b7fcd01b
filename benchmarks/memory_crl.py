"""Resident memory of a large CRL fetched through the revocation source,
against the cache's byte budget (BRIDGECA_REVOCATION_CACHE_BYTES).

    .venv/bin/python benchmarks/memory_crl.py [--entries 1000000] [--budget BYTES ...]

Builds a signed CRL with ``--entries`` revoked serials (DER assembled by
hand: cryptography's builder takes minutes for a million entries), serves
it on 127.0.0.1, and for each budget (default: the setting, 256 MiB unless
BRIDGECA_REVOCATION_CACHE_BYTES says otherwise, and 1 GiB) runs a fresh
process that fetches it through ``RevocationSource`` and reports resident
memory (VmRSS) before, with the parsed CRL in hand, and after the request
let go of it (what the cache keeps), beside the source's own count.
Figures, not asserts. Linux only (reads /proc/self/status).
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def _int(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")
    return _tlv(0x02, body)


def make_crl(entries: int) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Memory Benchmark CA")]).public_bytes()
    now = dt.datetime.now(dt.timezone.utc)
    utc = lambda t: _tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())  # noqa: E731
    revoked_at = utc(now - dt.timedelta(days=1))
    alg = _tlv(0x30, _tlv(0x06, bytes.fromhex("2a8648ce3d040302")))  # ecdsa-with-SHA256
    revoked = b"".join(_tlv(0x30, _int(0x10000 + i) + revoked_at) for i in range(entries))
    tbs = _tlv(0x30, _int(1) + alg + issuer + utc(now) + utc(now + dt.timedelta(days=1)) + _tlv(0x30, revoked))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, tbs + alg + _tlv(0x03, b"\x00" + signature))


def serve(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def measure(url: str, budget: int) -> dict:
    """In a fresh process: one fetch through the source, the figures."""
    from bridge.revocation_source import FetchLimits, RevocationSource, resident_size

    gc.collect()
    before = rss()
    source = RevocationSource(FetchLimits(total_timeout=300, max_crl_bytes=64 * MiB, allow_private_addresses=True),
                              max_cached_bytes=budget)
    started = time.perf_counter()
    got = source.crl(url)
    seconds = time.perf_counter() - started
    if got.value is None:
        raise SystemExit(f"fetch failed: {got.error}")
    in_hand = rss()
    estimate = resident_size(got.value)
    der = len(got.value.der)
    entries = len(got.value.entries)
    del got
    gc.collect()
    kept = rss()
    return {"budget": budget, "der": der, "entries": entries, "estimate": estimate, "cached_bytes": source._cached_bytes,
            "cached": len(source._cache), "rss_before": before, "rss_in_hand": in_hand, "rss_after": kept,
            "fetch_and_parse_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--budget", type=int, action="append", help="cache budgets in bytes (repeatable)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.budget[0])))
        return
    setting = int(os.environ.get("BRIDGECA_REVOCATION_CACHE_BYTES", 256 * MiB))
    budgets = args.budget or [setting, 1024 * MiB]
    started = time.perf_counter()
    body = make_crl(args.entries)
    print(f"CRL: {args.entries:,} entries, {len(body) / 1e6:.1f} MB DER (built in {time.perf_counter() - started:.1f} s)")
    httpd = serve(body)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/big.crl"
    print(f"{'budget':>10} {'estimate':>10} {'cached':>8} {'RSS before':>11} {'in hand':>9} {'after':>9} "
          f"{'held by cache':>14} {'parse s':>8}")
    try:
        for budget in budgets:
            out = subprocess.run([sys.executable, __file__, "--measure", url, "--budget", str(budget)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            held = r["rss_after"] - r["rss_before"]
            print(f"{r['budget'] / MiB:>7.0f} MiB {r['estimate'] / MiB:>6.0f} MiB {'yes' if r['cached'] else 'no':>8} "
                  f"{r['rss_before'] / MiB:>7.0f} MiB {(r['rss_in_hand'] - r['rss_before']) / MiB:>+5.0f} MiB "
                  f"{held / MiB:>+5.0f} MiB {'within' if held <= r['budget'] else 'OVER':>9} budget "
                  f"{r['fetch_and_parse_seconds']:>6}")
            print(f"           measured per entry (in hand, beyond DER+TBS): "
                  f"{(r['rss_in_hand'] - r['rss_before'] - 2 * r['der']) / r['entries']:.0f} bytes; "
                  f"the source counts {r['estimate'] / r['entries']:.0f} bytes an entry in all")
    finally:
        httpd.shutdown()


if __name__ == "__main__":
    main()
