"""HTTP load: POST /v1/verify/chain against GET /v1/health on the same real
server, in the same run (issue 17: new leaf every request >= 0.5 of health, same leaf >= 0.85).

Not a pytest test. What it does, all on 127.0.0.1:

1. ``bridgeca init`` into a temporary home (BRIDGECA_KEY_PASSPHRASE set),
   tokens by ``bridgeca token create`` (admin, issuer, platform);
2. ``bridgeca serve --home H --port P --workers N``;
3. a federation through the HTTP API: one member (tests/bridge/members.py:
   root, issuing CA) enrolled by the issuer token, approved by the admin
   token, its reverse certificate registered; ``--leaves`` distinct leaves
   under its issuing CA, each checked valid through the server once before
   any measurement;
4. measurements, each bounded in time (``--duration``) and, for the Python
   client, in count: GET /v1/health; POST /v1/verify/chain with the same
   leaf every time; with a different leaf every time (rotating through the
   distinct leaves; the run says if it went round). Bodies carry the leaf
   and its issuing CA as ``intermediates``, as a relying platform sends
   them. The three are repeated ``--repeats`` times, order alternating;
5. the server is stopped at the end, always (its process group: the uvicorn
   supervisor and its workers).

Load generator: ``wrk`` (Debian's package; Lua scripts for the POST bodies;
one thread) or a Python asyncio client (raw HTTP/1.1 over asyncio streams,
keep-alive), ``--client wrk|python|both``. The CPU time of the generator and
of the server (sum over its processes, from /proc) is measured for every
measurement and reported as a share of the machine's cores.

    .venv/bin/python benchmarks/load_http.py                  # wrk if installed, else python
    .venv/bin/python benchmarks/load_http.py --client both --workers 2 --duration 10
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from tests.bridge.members import BRIDGE_MEDIUM, ec_key, issue, make_member, name, pem  # noqa: E402

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


# --- the server ---------------------------------------------------------------


def bridgeca(*args: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"bridgeca {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def call(port: int, method: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def call_json(port: int, method: str, path: str, token: str | None = None, body: dict | None = None, expect=(200, 201)) -> dict:
    status, data = call(port, method, path, token, body)
    if status not in expect:
        raise SystemExit(f"{method} {path}: HTTP {status}: {data[:500]!r}")
    return json.loads(data)


# An experiment, never the default: uvicorn (0.54) binds the listening socket
# of --workers N > 1 with proto 0, accepted sockets inherit it, and asyncio
# sets TCP_NODELAY only when proto is IPPROTO_TCP: Nagle's algorithm meets
# the client's delayed ACK and every keep-alive request after the first waits
# ~40 ms (Kludex/uvicorn#3149). This runs ``bridgeca serve`` unchanged but
# with uvicorn's bind_socket giving the socket proto IPPROTO_TCP, to show
# what the fix is worth.
NODELAY_PATCH = """
import socket, sys
import uvicorn.config
_bind = uvicorn.config.Config.bind_socket
def bind_socket(self):
    sock = _bind(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(True)
    return sock
uvicorn.config.Config.bind_socket = bind_socket
from api.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Server:
    """``bridgeca serve`` in its own process group; ``stop()`` ends that
    group (the supervisor and its workers) and nothing else."""

    def __init__(self, home: Path, port: int, workers: int, env: dict, log: Path, nodelay_patch: bool = False) -> None:
        self.port = port
        self._log = open(log, "wb")
        launcher = ["-c", NODELAY_PATCH] if nodelay_patch else ["-m", "api.cli"]
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, "serve", "--home", str(home), "--host", HOST, "--port", str(port),
             "--workers", str(workers)],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {self._log.name}")
            try:
                if call(self.port, "GET", "/v1/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("server did not answer /v1/health in time")

    def processes(self) -> list[int]:
        """The server's pid and its descendants."""
        parent: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parent[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
        tree, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            frontier = [pid for pid, ppid in parent.items() if ppid in frontier]
            tree += frontier
        return tree

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds (user + system) of each of the server's processes."""
        out = {}
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self._log.close()


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, list[float]]:
    """Total server CPU seconds between two readings, and the busiest
    processes' shares (the workers: connections are not spread evenly)."""
    spent = sorted((after[pid] - before.get(pid, 0.0) for pid in after), reverse=True)
    return sum(spent), spent


def private_schema(base_url: str) -> tuple[str, str]:
    """A fresh schema in the given PostgreSQL database, and a URL whose
    search_path is that schema (as tests/bridge/conftest.py does)."""
    import sqlalchemy as sa

    schema = f"bridgeca_load_{secrets.token_hex(6)}"
    engine = sa.create_engine(base_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_schema(base_url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(base_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


# --- the federation -----------------------------------------------------------


@dataclass
class Federation:
    admin: str
    issuer: str
    platform: str
    member_code: str
    leaf_bodies: list[bytes] = field(default_factory=list)


def build_federation(server: Server, tokens: dict[str, str], leaves: int) -> Federation:
    port = server.port
    member = make_member("HK")
    view = call_json(port, "POST", "/v1/issuers", tokens["issuer"], {
        "name": member.display, "jurisdiction": member.code,
        "root_certificate": pem(member.root).decode(), "policy_mappings": member.mappings(),
    })
    call_json(port, "POST", f"/v1/issuers/{view['id']}/approve", tokens["admin"])
    status, bridge_der = call(port, "GET", "/v1/ca/certificate")
    assert status == 200, status
    bridge_cert = x509.load_der_x509_certificate(bridge_der) if not bridge_der.startswith(b"-----") else x509.load_pem_x509_certificate(bridge_der)
    call_json(port, "POST", f"/v1/issuers/{view['id']}/reverse-certificate", tokens["issuer"],
              {"certificate": pem(member.reverse_certificate(bridge_cert, BRIDGE_MEDIUM)).decode()})
    issuing_pem = member.issuing.public_bytes(Encoding.PEM).decode()
    fed = Federation(tokens["admin"], tokens["issuer"], tokens["platform"], member.code)
    for i in range(leaves):
        leaf = issue(member.issuing, member.issuing_key,
                     name("HK", "Hong Kong Example Org", f"signer{i}.hk.example"), ec_key().public_key(),
                     ca=False, policies=[member.policy], days=365)
        fed.leaf_bodies.append(json.dumps({"certificate": pem(leaf).decode(), "intermediates": [issuing_pem]}).encode())
    return fed


def check_leaves(server: Server, fed: Federation, sample: int = 20) -> None:
    """Outside any measurement: the same-leaf body, and ``sample`` leaves
    spread over the rest, valid through the server (each one is then known
    to the server: a handful among thousands). Every response during the
    measurements is checked as well (``"valid":true``)."""
    step = max(1, (len(fed.leaf_bodies) - 1) // sample)
    for body in [fed.leaf_bodies[0]] * (2 * CORES) + fed.leaf_bodies[1::step]:
        result = call_json(server.port, "POST", "/v1/verify/chain", fed.platform, json.loads(body))
        if not result["valid"]:
            raise SystemExit(f"a leaf is not valid through the server: {result['error']}")


# --- load generators ----------------------------------------------------------


@dataclass
class Measurement:
    name: str
    client: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    client_cpu: float
    server_cpu: float
    note: str = ""
    server_split: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def _request_bytes(method: str, path: str, port: int, token: str | None, body: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
VALID = b'"valid":true'


async def _python_load(port: int, requests: list[bytes], connections: int, duration: float, max_count: int,
                       check_valid: bool, stagger: float = 0.0):
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + duration

    async def connection(k: int) -> None:
        nonlocal errors, sent
        # Opened one after another: the workers share one listening socket and
        # asyncio accepts every pending connection at once, so a burst of
        # connections tends to land on a single worker.
        await asyncio.sleep(k * stagger)
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while sent < max_count and time.perf_counter() < deadline:
                request = requests[sent % len(requests)]
                sent += 1
                start = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                match = _CONTENT_LENGTH.search(head)
                body = b""
                if match:
                    body = await reader.readexactly(int(match.group(1)))
                latencies.append(time.perf_counter() - start)
                if head[9:12] != b"200" or (check_valid and VALID not in body):
                    errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection(k) for k in range(connections)))
    return latencies, errors, time.perf_counter() - start


def run_python(server: Server, name: str, requests: list[bytes], connections: int, duration: float, max_count: int,
               check_valid: bool, stagger: float = 0.0, note: str = "") -> Measurement:
    cpu0, srv0 = resource.getrusage(resource.RUSAGE_SELF), server.cpu_seconds()
    latencies, errors, seconds = asyncio.run(_python_load(server.port, requests, connections, duration, max_count, check_valid,
                                                          stagger))
    cpu1, srv1 = resource.getrusage(resource.RUSAGE_SELF), server.cpu_seconds()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    client = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if len(latencies) >= max_count:
        note = (note + "; " if note else "") + f"stopped at the count bound ({max_count})"
    server_total, split = cpu_spent(srv0, srv1)
    return Measurement(name, "python", len(latencies), seconds, errors, q[49] * 1e3, q[98] * 1e3, client, server_total, note, split)


WRK_SCRIPT = r"""
-- POST bodies for wrk: one JSON body per line of the file named by the first
-- script argument; each request takes the next one, going round at the end.
-- Responses that are not 200 with "valid":true are counted (one thread, so
-- one count).
local bodies, i = {}, 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LOAD_TOKEN")
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
function request()
  i = i + 1
  if i > #bodies then i = 1 end
  return wrk.format(nil, "/v1/verify/chain", nil, bodies[i])
end
local invalid = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"valid":true', 1, true) then invalid = invalid + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("LOAD invalid=%d\n", invalid))
end
"""


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(server: Server, name: str, path: str, connections: int, duration: float, workdir: Path,
            bodies: list[bytes] | None = None, token: str | None = None) -> Measurement:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "10s"]
    env = dict(os.environ)
    if bodies is not None:
        script, data = workdir / "post.lua", workdir / "bodies.txt"
        script.write_text(WRK_SCRIPT)
        data.write_bytes(b"\n".join(bodies) + b"\n")
        env["LOAD_TOKEN"] = token or ""
        cmd += ["-s", str(script), f"http://{HOST}:{server.port}{path}", "--", str(data)]
    else:
        cmd.append(f"http://{HOST}:{server.port}{path}")
    cpu0, srv0 = resource.getrusage(resource.RUSAGE_CHILDREN), server.cpu_seconds()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    cpu1, srv1 = resource.getrusage(resource.RUSAGE_CHILDREN), server.cpu_seconds()
    out = proc.stdout
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {proc.stderr or out}")
    total = re.search(r"(\d+) requests in ([\d.]+)(s|ms|m)", out)
    seconds = float(total.group(2)) * {"s": 1, "ms": 1e-3, "m": 60}[total.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(int(g) for g in socket_errors.groups()) if socket_errors else 0)
    invalid = re.search(r"LOAD invalid=(\d+)", out)
    if invalid:
        errors = max(errors, int(invalid.group(1)))
    p50 = _wrk_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _wrk_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    client = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    note = ""
    if bodies is not None and len(bodies) > 1 and int(total.group(1)) > len(bodies):
        note = f"went round the {len(bodies)} leaves ({int(total.group(1)) / len(bodies):.1f} times)"
    server_total, split = cpu_spent(srv0, srv1)
    return Measurement(name, "wrk", int(total.group(1)), seconds, errors, p50, p99, client, server_total, note, split)


# --- the run ------------------------------------------------------------------


def measure(server: Server, fed: Federation, client: str, args, workdir: Path, slices) -> list[Measurement]:
    """``slices``: an iterator of disjoint lists of leaf bodies, one per
    rotating measurement, so no leaf is sent in two of them."""
    port = server.port
    health = [_request_bytes("GET", "/v1/health", port, None, None)]
    same = [_request_bytes("POST", "/v1/verify/chain", port, fed.platform, fed.leaf_bodies[0])]
    kinds = ["health", "verify, same leaf", "verify, rotating leaves"]
    out: list[Measurement] = []
    for r in range(args.repeats):
        for kind in kinds if r % 2 == 0 else list(reversed(kinds)):
            fresh = next(slices) if kind == "verify, rotating leaves" else None
            if client == "python":
                if fresh is not None:
                    requests = [_request_bytes("POST", "/v1/verify/chain", port, fed.platform, b) for b in fresh]
                else:
                    requests = health if kind == "health" else same
                bound = len(fresh) if fresh is not None else args.max_requests
                m = run_python(server, kind, requests, args.connections, args.duration, bound, check_valid=kind != "health",
                               stagger=args.stagger_ms / 1e3)
            elif kind == "health":
                m = run_wrk(server, kind, "/v1/health", args.connections, args.duration, workdir)
            else:
                bodies = fed.leaf_bodies[:1] if fresh is None else fresh
                m = run_wrk(server, kind, "/v1/verify/chain", args.connections, args.duration, workdir, bodies, fed.platform)
            out.append(m)
            print(f"  {m.client:<6} {m.name:<24} {m.rps:>8.0f} req/s  p50 {m.p50_ms:6.2f} ms  p99 {m.p99_ms:6.2f} ms  "
                  f"{m.requests} requests, {m.errors} errors; CPU: client {m.client_cpu / m.seconds / CORES:.0%}, "
                  f"server {m.server_cpu / m.seconds / CORES:.0%} of {CORES} cores "
                  f"(busiest processes: {', '.join(f'{x / m.seconds:.0%}' for x in m.server_split[:3])} of a core)"
                  f"{'; ' + m.note if m.note else ''}",
                  flush=True)
    return out


def summarize(results: list[Measurement]) -> None:
    print("\nsummary (best and median of the repeats; ratios of req/s to health in the same run, and of health's "
          "server CPU per request to this one's)")
    for client in sorted({m.client for m in results}):
        mine = [m for m in results if m.client == client]
        health = [m.rps for m in mine if m.name == "health"]
        health_cpu = statistics.median(m.server_cpu / m.requests for m in mine if m.name == "health")
        for kind in ("health", "verify, same leaf", "verify, rotating leaves"):
            ms = [m for m in mine if m.name == kind]
            rps = [m.rps for m in ms]
            line = (f"  {client:<6} {kind:<24} best {max(rps):>7.0f} req/s, median {statistics.median(rps):>7.0f}; "
                    f"p50 {statistics.median(m.p50_ms for m in ms):.2f} ms, p99 {statistics.median(m.p99_ms for m in ms):.2f} ms; "
                    f"client CPU {statistics.median(m.client_cpu / m.seconds / CORES for m in ms):.0%}, "
                    f"server CPU {statistics.median(m.server_cpu / m.seconds / CORES for m in ms):.0%} of {CORES} cores")
            if kind != "health":
                line += (f"; / health: best {max(rps) / max(health):.2f}, "
                         f"median {statistics.median(rps) / statistics.median(health):.2f}")
                # Server CPU per request, health's over this one's: the same
                # ratio as the request rates when the server is the
                # bottleneck, and steadier when others share the machine.
                per_request = statistics.median(m.server_cpu / m.requests for m in ms)
                line += f"; server CPU per request / health's: {health_cpu / per_request:.2f}"
            print(line)
            went_round = [m for m in ms if m.note.startswith("went round")]
            if kind == "verify, rotating leaves" and went_round:
                # Past one round every leaf is a repeat: the figure is then a mix, not "a new leaf every request".
                print(f"  WARNING: {len(went_round)} of {len(ms)} rotating measurements went round their leaves, so "
                      f"most of their requests repeated a leaf; give --leaves above the request count "
                      f"(about {max(m.requests for m in ms)})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=CORES, help="server worker processes (default: the core count)")
    p.add_argument("--client", choices=("wrk", "python", "both"), default="wrk" if shutil.which("wrk") else "python")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--stagger-ms", type=float, default=25.0,
                   help="python client: open connection k after k times this (spreads them over the workers)")
    p.add_argument("--repeats", type=int, default=2, help="each measurement this many times, order alternating")
    p.add_argument("--leaves", type=int, default=30_000,
                   help="distinct leaves per rotating measurement (each gets its own; python stops when they run out)")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="python client: count bound per measurement")
    p.add_argument("--patch-uvicorn-nodelay", action="store_true",
                   help="experiment: run the server with uvicorn's listening socket fixed (see NODELAY_PATCH)")
    p.add_argument("--database-url", help="PostgreSQL URL (e.g. the tests' BRIDGECA_TEST_POSTGRES_URL): the run uses a "
                   "fresh schema in it, dropped at the end; default: SQLite in the temporary home")
    p.add_argument("--keep-home", action="store_true")
    args = p.parse_args()
    clients = ["wrk", "python"] if args.client == "both" else [args.client]
    if "wrk" in clients and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --client python")

    # SIGTERM (a timeout, a kill) ends the run through the finally below,
    # which stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="bridgeca-load-"))
    home = workdir / "home"
    env = dict(os.environ, BRIDGECA_KEY_PASSPHRASE=secrets.token_urlsafe(16))
    env.pop("BRIDGECA_DATABASE_URL", None)
    server = None
    schema = None
    try:
        if args.database_url:
            schema, env["BRIDGECA_DATABASE_URL"] = private_schema(args.database_url)
        bridgeca("init", "--home", str(home), "--base-url", "https://bridge.bench.example", env=env)
        tokens = {role: bridgeca("token", "create", "--home", str(home), "--role", role, env=env).split()[-1]
                  for role in ("admin", "issuer", "platform")}
        server = Server(home, free_port(), args.workers, env, workdir / "server.log", args.patch_uvicorn_nodelay)
        server.wait_ready()
        patched = " (EXPERIMENT: uvicorn bind_socket patched for TCP_NODELAY)" if args.patch_uvicorn_nodelay else ""
        database = "PostgreSQL (private schema)" if schema else "SQLite"
        print(f"server{patched}: pid {server.proc.pid}, {args.workers} workers, {database}, http://{HOST}:{server.port}; "
              f"{len(server.processes())} processes; log {workdir / 'server.log'}", flush=True)
        start = time.perf_counter()
        fed = build_federation(server, tokens, 1 + args.leaves * args.repeats * len(clients))
        print(f"federation: member {fed.member_code} enrolled, approved, reverse certificate registered; "
              f"{len(fed.leaf_bodies)} leaves made in {time.perf_counter() - start:.1f} s", flush=True)
        start = time.perf_counter()
        check_leaves(server, fed)
        print(f"leaves checked valid through the server ({time.perf_counter() - start:.1f} s)", flush=True)
        print(f"measuring: {args.duration:g} s each, {args.connections} connections, {args.repeats} repeats; "
              f"machine: {CORES} cores", flush=True)
        rest = fed.leaf_bodies[1:]
        slices = iter([rest[i:i + args.leaves] for i in range(0, len(rest), args.leaves)])
        results = []
        for client in clients:
            results += measure(server, fed, client, args, workdir, slices)
        summarize(results)
    finally:
        if server is not None:
            server.stop()
            print(f"server stopped (exit {server.proc.returncode})")
        if schema is not None:
            drop_schema(args.database_url, schema)
        if not args.keep_home:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
