"""Running the service under uvicorn (used by ``bridgeca serve``)."""
from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess


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


def serve(host: str, port: int, workers: int) -> None:
    # No per-request access log: it costs more than a cached verification.
    config = Config("api.asgi:app", host=host, port=port, workers=workers, log_level="info",
                    access_log=False, proxy_headers=False, server_header=False)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
