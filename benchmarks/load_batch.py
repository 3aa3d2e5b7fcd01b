"""POST /v1/verify/batch against in-process Verifier.verify, in one run
(issue 17: a batch of 100 new leaves over HTTP should cost per leaf at most
1.3x the in-process Verifier.verify).

Not a pytest test. What it does, all on 127.0.0.1:

1. ``bridgeca init`` into a temporary home, tokens by ``bridgeca token
   create``, ``bridgeca serve --workers N`` (default 1: one process answers,
   so its CPU per leaf is the cost of a leaf); a member enrolled, approved
   and its reverse certificate registered through the HTTP API (as
   benchmarks/load_http.py does);
2. the in-process reference: a ``pki.Verifier`` built from what the bridge
   publishes (its certificate, the cross- and reverse certificates, its CRL),
   as a platform would build one, given new leaves of the same member with
   the issuing CA as ``intermediates`` and the service's revocation
   provider, as the server's Verifier is;
3. rounds, interleaved so that both sides see the same machine load: a batch
   of ``--batch`` leaves the server has never seen (each item carrying the
   issuing CA as ``intermediates``, as a relying platform sends a chain),
   the same with the issuing CA once in the shared ``options``, and
   ``--batch`` new leaves through the in-process Verifier. One keep-alive
   connection, one request at a time; bodies are serialised before the clock
   starts; every answer is checked (200, every item valid) after it stops;
4. the server is stopped at the end, always (its process group).

Per-leaf figures, per round: the server's CPU time for a batch (every
thread of its processes, nanoseconds from /proc/PID/task/TID/schedstat) /
items, against the verifying thread's CPU time for an in-process block /
leaves; and wall-clock time (send to last byte read / items, against the
block's time / leaves). Each round's ratio is taken against the in-process
figure of the same round, so load from elsewhere on the machine falls on
both sides; the median of those is printed, and the ratio of the minima.

    .venv/bin/python benchmarks/load_batch.py                 # 30 rounds of 100
    .venv/bin/python benchmarks/load_batch.py --rounds 60 --batch 100 --workers 1
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7  # noqa: E402
from load_http import HOST, Server, bridgeca, call, call_json, free_port  # noqa: E402

from bridge.verification import BridgeRevocationProvider  # noqa: E402
from pki import Verifier  # noqa: E402
from pki.crl import parse_crl  # noqa: E402
from pki.loading import load_certificate  # noqa: E402
from tests.bridge.members import BRIDGE_MEDIUM, ec_key, issue, make_member, name, pem  # noqa: E402


def enroll_member(port: int, tokens: dict[str, str]):
    member = make_member("HK")
    view = call_json(port, "POST", "/v1/issuers", tokens["issuer"], {
        "name": member.display, "jurisdiction": member.code,
        "root_certificate": pem(member.root).decode(), "policy_mappings": member.mappings()})
    call_json(port, "POST", f"/v1/issuers/{view['id']}/approve", tokens["admin"])
    status, bridge_pem = call(port, "GET", "/v1/ca/certificate")
    assert status == 200, status
    bridge = x509.load_pem_x509_certificate(bridge_pem)
    call_json(port, "POST", f"/v1/issuers/{view['id']}/reverse-certificate", tokens["issuer"],
              {"certificate": pem(member.reverse_certificate(bridge, BRIDGE_MEDIUM)).decode()})
    return member, bridge


def published_verifier(port: int, bridge: x509.Certificate) -> tuple[Verifier, BridgeRevocationProvider]:
    """A Verifier from the bridge's publications only, and the revocation
    provider the service gives its own (bridge records for the cross- and
    reverse certificates; a certificate naming no CRL or OCSP source, as
    these leaves and CAs, is not checked), so both sides do the same checks."""
    published = {}
    for path in ("/v1/ca/issued-by-bridge.p7c", "/v1/ca/issued-to-bridge.p7c"):
        status, body = call(port, "GET", path)
        assert status == 200, (path, status)
        published[path] = [c.public_bytes(Encoding.DER) for c in pkcs7.load_der_pkcs7_certificates(body)]
    status, crl = call(port, "GET", "/v1/crl")
    assert status == 200, status
    anchor = bridge.public_bytes(Encoding.DER)
    verifier = Verifier(anchors=[anchor], untrusted=[d for ders in published.values() for d in ders], crls=[crl])
    provider = BridgeRevocationProvider(frozenset({load_certificate(anchor).spki}), (parse_crl(crl),),
                                        frozenset(hashlib.sha256(d).digest() for d in published["/v1/ca/issued-to-bridge.p7c"]),
                                        None)
    return verifier, provider


def new_leaves(member, count: int, tag: str) -> list[str]:
    return [pem(issue(member.issuing, member.issuing_key, name("HK", "Hong Kong Example Org", f"{tag}{i}.hk.example"),
                      ec_key().public_key(), ca=False, policies=[member.policy], days=365)).decode()
            for i in range(count)]


class Client:
    """One keep-alive connection; ``post`` times the exchange only."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[float, int, bytes]:
        start = time.perf_counter()
        self.conn.request("POST", path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        return time.perf_counter() - start, response.status, data


def check_batch(status: int, data: bytes, size: int) -> None:
    if status != 200:
        raise SystemExit(f"batch answered {status}: {data[:300]!r}")
    results = json.loads(data)["results"]
    bad = [r for r in results if not r.get("result", {}).get("valid")]
    if len(results) != size or bad:
        raise SystemExit(f"batch: {len(results)} results, {len(bad)} not valid: {json.dumps(bad[:1])[:400]}")


def server_cpu_ns(server: Server) -> dict[tuple[int, int], int]:
    """CPU nanoseconds of every thread of the server's processes
    (/proc/PID/task/TID/schedstat, first field): a batch costs tens of
    milliseconds, which clock ticks (10 ms) would not resolve."""
    out = {}
    for pid in server.processes():
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                out[(pid, int(tid))] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return out


def cpu_delta(before: dict, after: dict) -> float:
    """Seconds; a thread that ended between the readings took its time with
    it, so its last reading counts as its share (the threadpool's threads
    outlive a request by far, so this is rare)."""
    return sum(after[k] - before.get(k, 0) for k in after) / 1e9


def report(args, wall: dict, cpu: dict, request_bytes: dict) -> None:
    n = args.batch
    ref_cpu, ref_wall = cpu["in-process"], wall["in-process"]
    print(f"\n{args.rounds} rounds, each: a batch of {n} new leaves with intermediates per item, one with them in the "
          f"shared options, {n} new leaves in process (batch order alternating). µs per leaf. CPU: every thread of the "
          f"server's processes (HTTP) or the verifying thread (in-process), per round; wall: one request or block / {n}. "
          f"Ratio: per round, to the in-process figure of the same round (paired), median over rounds; and min ÷ min")
    print(f"{'':24} {'CPU min':>8} {'median':>8} {'ratio median':>13} {'min÷min':>8}   {'wall min':>8} {'median':>8} "
          f"{'ratio median':>13}   request bytes")
    for label in cpu:
        c, w = cpu[label], wall[label]
        paired = [a / b for a, b in zip(c, ref_cpu, strict=True)]
        paired_wall = [a / b for a, b in zip(w, ref_wall, strict=True)]
        print(f"{label:24} {min(c) * 1e6:8.1f} {statistics.median(c) * 1e6:8.1f} {statistics.median(paired):12.2f}× "
              f"{min(c) / min(ref_cpu):7.2f}×   {min(w) * 1e6:8.1f} {statistics.median(w) * 1e6:8.1f} "
              f"{statistics.median(paired_wall):12.2f}×   {request_bytes.get(label, '')}")
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end "
          f"(other work on the machine inflates both sides; the paired ratio is the figure)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=100, help="leaves per batch (and per in-process block)")
    p.add_argument("--rounds", type=int, default=30, help="rounds of (batch, batch with shared options, in-process block)")
    p.add_argument("--keep-home", action="store_true")
    args = p.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="bridgeca-batch-"))
    home = workdir / "home"
    env = dict(os.environ, BRIDGECA_KEY_PASSPHRASE=secrets.token_urlsafe(16), BRIDGECA_BATCH_MAX_ITEMS=str(max(100, args.batch)))
    env.pop("BRIDGECA_DATABASE_URL", None)
    env["BRIDGECA_ACCESS_LOG"] = "false"
    server = None
    try:
        bridgeca("init", "--home", str(home), "--base-url", "https://bridge.bench.example", env=env)
        tokens = {role: bridgeca("token", "create", "--home", str(home), "--role", role, env=env).split()[-1]
                  for role in ("admin", "issuer", "platform")}
        server = Server(home, free_port(), args.workers, env, workdir / "server.log")
        server.wait_ready()
        member, bridge = enroll_member(server.port, tokens)
        issuing = pem(member.issuing).decode()
        verifier, provider = published_verifier(server.port, bridge)
        n = args.batch
        start = time.perf_counter()
        warm = new_leaves(member, 2 * n, "warm")
        http_leaves = new_leaves(member, args.rounds * n, "http")
        shared_leaves = new_leaves(member, args.rounds * n, "shared")
        local_leaves = new_leaves(member, args.rounds * n, "local")
        print(f"server: {args.workers} worker(s), SQLite, http://{HOST}:{server.port}; "
              f"{len(warm) + 3 * args.rounds * n} leaves made in {time.perf_counter() - start:.1f} s", flush=True)

        def per_item(leaves):
            return json.dumps({"items": [{"kind": "chain", "certificate": leaf, "intermediates": [issuing]} for leaf in leaves]}).encode()

        def shared(leaves):
            return json.dumps({"items": [{"kind": "chain", "certificate": leaf} for leaf in leaves],
                               "options": {"intermediates": [issuing]}}).encode()

        client = Client(server.port, tokens["platform"])
        # Warm-up, outside the figures: the server learns the CA chain, the in-process Verifier too.
        for body in (per_item(warm[:n]), shared(warm[n:])):
            _, status, data = client.post("/v1/verify/batch", body)
            check_batch(status, data, n)
        for leaf in warm[:n]:
            result = verifier.verify(leaf, intermediates=[issuing], revocation_provider=provider)
            if not result.valid:
                raise SystemExit(f"in-process: not valid: {result.to_dict()['error']}")

        bodies = [(per_item(http_leaves[i * n:(i + 1) * n]), shared(shared_leaves[i * n:(i + 1) * n])) for i in range(args.rounds)]
        labels = ("batch", "batch, shared options", "in-process")
        wall = {label: [] for label in labels}  # seconds per leaf, per round
        cpu = {label: [] for label in labels}
        request_bytes = {"batch": len(bodies[0][0]), "batch, shared options": len(bodies[0][1])}
        answers = []
        for i in range(args.rounds):
            order = [("batch", bodies[i][0]), ("batch, shared options", bodies[i][1])]
            for label, body in (order if i % 2 == 0 else order[::-1]):
                before = server_cpu_ns(server)
                seconds, status, data = client.post("/v1/verify/batch", body)
                cpu[label].append(cpu_delta(before, server_cpu_ns(server)) / n)
                wall[label].append(seconds / n)
                answers.append((status, data))
            block = local_leaves[i * n:(i + 1) * n]
            results = []
            cpu_start, start = time.thread_time_ns(), time.perf_counter()
            for leaf in block:
                results.append(verifier.verify(leaf, intermediates=[issuing], revocation_provider=provider))
            wall["in-process"].append((time.perf_counter() - start) / n)
            cpu["in-process"].append((time.thread_time_ns() - cpu_start) / 1e9 / n)
            if not all(r.valid for r in results):
                raise SystemExit("an in-process leaf is not valid")
        for status, data in answers:
            check_batch(status, data, n)
        report(args, wall, cpu, request_bytes)
    finally:
        if server is not None:
            server.stop()
        if not args.keep_home:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"home kept: {home}")


if __name__ == "__main__":
    main()
