"""GET /v1/health answers while every worker thread is busy: here the one
thread allowed is stuck fetching a CRL from a server that does not answer
(released only after health has answered, so the order is the test, not a
clock)."""
from __future__ import annotations

import socket
import threading

import anyio.to_thread
from fastapi.testclient import TestClient

from .conftest import bridge_env, make_federation
from .test_cached_answers import _leaf


class HangingServer:
    """Accepts connections and answers nothing until released."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.release = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conns = []
        try:
            while not self.release.is_set():
                self.sock.settimeout(0.1)
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    continue
                conns.append(conn)
                self.connected.set()
        finally:
            for c in conns:
                c.close()
            self.sock.close()


async def _one_worker_thread() -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = 1


def test_health_answers_while_the_threadpool_is_stuck(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIDGECA_REVOCATION_ALLOW_PRIVATE_ADDRESSES", "true")  # the hanging server is on 127.0.0.1
    fed = make_federation(tmp_path / "home", codes=("HK",))
    hanging = HangingServer()
    stuck_leaf = _leaf(fed, "HK", "leaf whose CRL server hangs", crl_url=f"http://127.0.0.1:{hanging.port}/hk.crl")
    body = dict(fed.chain_body("HK"), certificate=stuck_leaf)
    outcome = {}
    with bridge_env(), TestClient(fed.app, raise_server_exceptions=False) as client:
        client.portal.call(_one_worker_thread)

        def verify() -> None:
            outcome["verify"] = client.post("/v1/verify/chain", headers=fed.h("platform"), json=body).status_code

        worker = threading.Thread(target=verify, daemon=True)
        worker.start()
        try:
            assert hanging.connected.wait(60), "the verification never reached the CRL server"
            health = client.get("/v1/health")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            assert worker.is_alive() and "verify" not in outcome  # the only thread is still stuck
        finally:
            hanging.release.set()
            worker.join(60)
    assert outcome.get("verify") == 200  # and the stuck verification finished once released
