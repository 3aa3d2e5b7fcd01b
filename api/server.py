"""Running the service under uvicorn (used by ``bridgeca serve``).

With ``--workers N > 1`` each worker process listens on a socket of its own,
all bound to the one port with SO_REUSEPORT, and the kernel spreads new
connections over them by their addresses. uvicorn's own supervisor shares one
listening socket instead, and whichever worker wakes first accepts: relying
platforms keep a few connections alive and send everything over them, so one
worker would often serve all of them while the others idle (measured with
wrk's 16 connections: the whole load on one of two workers in about half the
runs). Where SO_REUSEPORT is missing, uvicorn's supervisor is used.

TLS (``--tls-cert``/``--tls-key``, optionally ``--tls-client-ca``) is
uvicorn's: the file names travel in the Config each worker unpickles, and
each worker builds its own SSLContext when it loads the Config, so the
sockets bound here per worker serve TLS like uvicorn's own. TLS 1.2 is the
oldest version accepted.
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from .observability import logging_config, start_multiprocess_metrics, stop_multiprocess_metrics, worker_exited

logger = logging.getLogger("uvicorn.error")


class Config(uvicorn.Config):
    """uvicorn binds the shared listening socket of ``--workers N > 1`` with
    protocol 0; accepted sockets inherit it and asyncio then leaves Nagle's
    algorithm on, so every kept-alive request waits ~40 ms for a delayed ACK
    (uvicorn issue 3149). The socket is re-wrapped as IPPROTO_TCP. A module
    level class: the worker processes are spawned and unpickle the config."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.set_inheritable(True)
        return sock

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        settle_gc()  # every worker loads the config, then serves


# The collector's thresholds for a serving worker: gen0 and gen1 as Python's
# defaults, a full collection ten times rarer (its third threshold 100, not 10).
GC_THRESHOLDS = (700, 10, 100)


def settle_gc() -> None:
    """The garbage collector of a worker that has loaded the app. What the
    verifier's caches keep for each new leaf (its parsed certificate, the
    answer, the signature) lives on in the oldest generation, so Python's
    full collections came every few thousand new leaves and walked every
    object, the app's ~150,000 startup objects included: 100-230 ms each,
    the requests behind them waiting (p99 120-140 ms over HTTP with new
    leaves, benchmarks/README.md). The startup objects are frozen out of
    collection (they live as long as the process) and full collections
    come ten times less often; cyclic garbage is still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class TlsSetupError(Exception):
    """The TLS files cannot be used (one line, for the command)."""


@dataclass(frozen=True)
class TlsOptions:
    cert_file: str
    key_file: str | None = None  # None: the key is in cert_file
    client_ca_file: str | None = None  # client certificates required, issued by these CAs

    def uvicorn_kwargs(self) -> dict:
        kwargs: dict = {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file}
        if self.client_ca_file:
            kwargs.update(ssl_ca_certs=self.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
        return kwargs

    def context(self) -> ssl.SSLContext:
        """The context the workers will build, built once here to check the files."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except FileNotFoundError as exc:
            raise TlsSetupError(f"TLS: no such file: {exc.filename or self.cert_file}") from None
        except ssl.SSLError as exc:
            raise TlsSetupError(f"TLS: the certificate ({self.cert_file}) and key ({self.key_file or 'in the same file'}) "
                                f"cannot be used together: {exc.reason or exc}") from None
        except OSError as exc:
            raise TlsSetupError(f"TLS: cannot read {self.cert_file} or {self.key_file}: {exc.strerror or exc}") from None
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise TlsSetupError(f"TLS: cannot load the client CA certificates {self.client_ca_file}: "
                                    f"{getattr(exc, 'strerror', None) or exc}") from None
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


@dataclass(frozen=True)
class ProxyOptions:
    # uvicorn's forwarded_allow_ips: addresses or networks whose
    # X-Forwarded-For / X-Forwarded-Proto are believed ("*" for any).
    forwarded_allow_ips: str = "127.0.0.1"


def _port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, not listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(config: Config, host: str, port: int) -> None:  # pragma: no cover - runs in the worker process
    config.configure_logging()  # spawned: the parent's logging setup is not inherited
    try:
        sock = _port_socket(host, port)
    except OSError as exc:
        logger.error("worker cannot bind %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    uvicorn.Server(config).run(sockets=[sock])


class ReusePortSupervisor:
    """Starts ``workers`` processes, each listening on its own SO_REUSEPORT
    socket; restarts one that dies; stops them all on SIGINT or SIGTERM. A
    worker that fails to start stops the service (exit 3, as uvicorn)."""

    RESTART_CHECK_SECONDS = 0.5
    STOP_GRACE_SECONDS = 10.0

    def __init__(self, config: Config, workers: int) -> None:
        self.config = config
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[SpawnProcess] = []
        self.should_exit = threading.Event()
        self.exit_code = 0

    def _start(self, port: int) -> SpawnProcess:
        process = self.context.Process(target=_worker, args=(self.config, self.config.host, port), daemon=False)
        process.start()
        return process

    def run(self) -> int:
        # Bound here, and kept (never listening, so it takes no connections):
        # a port already in use fails at once, with one message, and the port
        # stays ours while workers come and go. Port 0 picks a free port.
        try:
            # Without SO_REUSEPORT first: a port that another service (another
            # bridgeca included) listens on must fail here, not be shared.
            family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self.config.host, self.config.port))
                port = probe.getsockname()[1]
            holder = _port_socket(self.config.host, port)
        except OSError as exc:
            logger.error("cannot bind %s:%d: %s", self.config.host, self.config.port, exc)
            return STARTUP_FAILURE
        port = holder.getsockname()[1]
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.should_exit.set())
        scheme = "https" if self.config.is_ssl else "http"
        logger.info("bridgeca running on %s://%s:%d with %d workers (SO_REUSEPORT)", scheme, self.config.host, port, self.workers)
        try:
            self.processes = [self._start(port) for _ in range(self.workers)]
            while not self.should_exit.wait(self.RESTART_CHECK_SECONDS):
                for i, process in enumerate(self.processes):
                    if process.is_alive():
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        logger.error("worker %d failed to start; stopping", process.pid)
                        self.exit_code = STARTUP_FAILURE
                        self.should_exit.set()
                        break
                    assert process.pid is not None  # started by _start
                    worker_exited(process.pid)  # it no longer counts as a live worker in /metrics
                    logger.warning("worker %d exited with %s; starting another", process.pid, process.exitcode)
                    self.processes[i] = self._start(port)
        finally:
            self._stop()
            holder.close()
        return self.exit_code

    def _stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        deadline = time.monotonic() + self.STOP_GRACE_SECONDS
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve(host: str, port: int, workers: int, *, tls: TlsOptions | None = None, proxy: ProxyOptions | None = None,
          log_format: str = "json") -> int:
    # uvicorn's access log is off: api/observability.py writes one line per
    # request itself, with the request id and the duration.
    # Without proxy options, X-Forwarded-* are ignored: the client address
    # (which the failed-authentication limit counts by) is the connection's.
    config = Config("api.asgi:app", host=host, port=port, workers=workers, log_level="info",
                    access_log=False, server_header=False, log_config=logging_config(log_format),
                    proxy_headers=proxy is not None,
                    forwarded_allow_ips=proxy.forwarded_allow_ips if proxy is not None else None,
                    **(tls.uvicorn_kwargs() if tls is not None else {}))
    metrics_dir = start_multiprocess_metrics(config.workers)  # /metrics sums the workers' files
    try:
        if config.workers > 1 and hasattr(socket, "SO_REUSEPORT") and not config.uds and config.fd is None:
            return ReusePortSupervisor(config, config.workers).run()
        if config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            uvicorn.Server(config).run()
        return 0
    finally:
        stop_multiprocess_metrics(metrics_dir)
