"""``bridgeca serve --workers 2``: each worker listens on its own
SO_REUSEPORT socket, so kept-alive connections spread over all workers; a
worker that dies is replaced; a port someone else listens on is refused;
SIGINT stops everything. Linux only (reads /proc)."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .test_server import READY_WITHIN, REPO, bridgeca, env, free_port, run, stop

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists() or not hasattr(socket, "SO_REUSEPORT"),
                                reason="needs Linux /proc and SO_REUSEPORT")

LISTEN, ESTABLISHED = "0A", "01"


def _sockets(port: int) -> dict[str, str]:
    """inode -> TCP state of the IPv4 sockets whose local port is ``port``."""
    out = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if int(local.split(":")[1], 16) == port:
            out[inode] = state
    return out


def _inodes(pid: int) -> set[str]:
    found = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(target[8:-1])
    except OSError:
        pass
    return found


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def workers(server_pid: int, port: int) -> dict[int, dict[str, int]]:
    """Worker pid -> counts of its listening and established sockets on ``port``."""
    states = _sockets(port)
    out = {}
    for pid in _children(server_pid):
        mine = [states[i] for i in _inodes(pid) if i in states]
        if LISTEN in mine:
            out[pid] = {"listening": mine.count(LISTEN), "established": mine.count(ESTABLISHED)}
    return out


def _wait(condition, what: str):
    deadline = time.monotonic() + READY_WITHIN
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)


def _health(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/v1/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _serve(home: Path, port: int, log) -> subprocess.Popen:
    return subprocess.Popen(
        bridgeca() + ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("workers") / "home"
    run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
    port = free_port()
    log = open(home.parent / "server.log", "w+b")
    process = _serve(home, port, log)
    try:
        _wait(lambda: process.poll() is not None or (_health(port) and len(workers(process.pid, port)) == 2),
              "two workers answering")
        assert process.poll() is None, (log.seek(0), log.read())
        yield {"process": process, "port": port, "home": home, "log": log}
    finally:
        stop(process)
        log.close()


def test_kept_alive_connections_spread_over_both_workers(served):
    port, pid = served["port"], served["process"].pid
    connections = []
    try:
        # All connected at once, as a load generator or a connection pool
        # does, then one request on each; kept alive, each held by whichever
        # worker accepted it.
        for _ in range(32):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.connect()
            connections.append(conn)
        for conn in connections:
            conn.request("GET", "/v1/health")
            response = conn.getresponse()
            assert response.status == 200
            response.read()
        held = _wait(lambda: (lambda w: w if sum(c["established"] for c in w.values()) == 32 else None)(workers(pid, port)),
                     "the 32 connections to show up in /proc")
        assert len(held) == 2
        # With one shared listening socket, one worker often holds them all.
        # With a socket per worker the kernel hashes connections over both:
        # all 32 on one side has probability 2**-31.
        assert all(c["established"] > 0 for c in held.values()), held
        assert all(c["listening"] == 1 for c in held.values()), held
    finally:
        for conn in connections:
            conn.close()


def test_a_worker_that_dies_is_replaced(served):
    port, pid = served["port"], served["process"].pid
    before = workers(pid, port)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    after = _wait(lambda: (lambda w: w if len(w) == 2 and victim not in w else None)(workers(pid, port)),
                  "a replacement worker")
    assert victim not in after and set(before) - {victim} <= set(after)
    assert _health(port)


def test_a_port_in_use_is_refused_with_one_message(served, tmp_path):
    log = open(tmp_path / "second.log", "w+b")
    second = _serve(served["home"], served["port"], log)
    try:
        code = second.wait(timeout=READY_WITHIN)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    log.seek(0)
    text = log.read().decode(errors="replace")
    assert code == 3, text
    assert "cannot bind" in text and "Traceback" not in text
    assert _health(served["port"])  # the first server is untouched


def test_sigint_stops_the_supervisor_and_its_workers(tmp_path):
    home = tmp_path / "home"
    run("init", "--home", str(home), "--base-url", "http://127.0.0.1:1", "--allow-loopback-url")
    port = free_port()
    with open(tmp_path / "server.log", "w+b") as log:
        process = _serve(home, port, log)
        try:
            pids = _wait(lambda: process.poll() is not None or (lambda w: list(w) if len(w) == 2 else None)(workers(process.pid, port)),
                         "two workers")
            assert process.poll() is None
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=READY_WITHIN) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    for worker in pids:
        assert not Path(f"/proc/{worker}").exists() or "Z" in Path(f"/proc/{worker}/stat").read_text().split()[2]
    assert not _health(port)
