"""A request-body limit enforced before the body is read whole.

Pure ASGI so it sees the stream: a declared Content-Length over the limit is
refused without being read; a chunked body is counted as it arrives and
refused as soon as it passes the limit.

The 413 is sent by this middleware itself, not raised through the
application: FastAPI turns any exception raised while it reads a JSON body
into "400 There was an error parsing the body", which would hide the limit.
Once the limit is passed the application is told the client went away
(``http.disconnect``), so it stops reading, and whatever it still tries to
send or raise is dropped.

Many clients (Python's urllib, many Java clients) send the whole body before
they read anything. Closing the connection while part of their body is still
unread makes the kernel answer with a reset, which throws away the 413 on
the client's side before it reads it. So before refusing, the rest of the
body is read and discarded, up to ``DRAIN_BYTES`` and ``DRAIN_SECONDS``:
a body larger than that (or slower) is cut off as before, the cost of
refusing it stays bounded. A client that asked ``Expect: 100-continue`` has
sent nothing yet and is refused at once.
"""
from __future__ import annotations

import asyncio
import json

PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]
# Past the limit, at most this much more is read to let the 413 through.
# The kernels' buffers absorb the first few MiB of a body (about 3 MiB over
# loopback, measured: a body up to that size got its 413 without draining,
# 4 MB got a reset), so the drain matters beyond that; 16 MiB covers the
# usual mistake (a document somewhat over the limit) while a huge upload is
# still cut off, at a bounded cost (reading 16 MiB: milliseconds).
DRAIN_BYTES = 16 << 20
DRAIN_SECONDS = 5.0
# A client that sends first sends without pausing; one that stops mid-body
# (a chunked body with no end) is waiting for us, and is answered after this.
DRAIN_IDLE_SECONDS = 1.0


class BodyTooLarge(Exception):
    """Kept for callers that raise it themselves; api.problems maps it to 413."""


async def drain(receive, budget: int = DRAIN_BYTES, seconds: float = DRAIN_SECONDS, idle: float = DRAIN_IDLE_SECONDS) -> bool:
    """Read and discard the rest of a request body, up to ``budget`` bytes
    and ``seconds`` in all, giving up when nothing comes for ``idle``
    seconds. True when the body ended within them (the connection then
    holds nothing unread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    left = budget
    while True:
        wait = min(idle, deadline - loop.time())
        if wait <= 0:
            return False
        try:
            message = await asyncio.wait_for(receive(), wait)
        except asyncio.TimeoutError:
            return False
        if message["type"] != "http.request":
            return False  # the client went away
        left -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return left >= 0
        if left < 0:
            return False


def _expects_continue(scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", ()))


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int, drain_bytes: int = DRAIN_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                    if declared < 0:
                        raise ValueError
                except ValueError:
                    return await self._refuse(send, 400, "invalid_request", "Content-Length is not a non-negative number")
                if declared > self.max_bytes:
                    # Reading a body that is known to be refused is only worth
                    # it when it is small enough to read, and is being sent.
                    if declared <= self.max_bytes + self.drain_bytes and not _expects_continue(scope):
                        await drain(receive, declared)
                    return await self._refuse(send, 413, "body_too_large", f"request body over {self.max_bytes} bytes")
        seen = 0
        started = False
        refused = False

        async def limited_receive():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        if message.get("more_body", False):
                            await drain(receive, self.drain_bytes)
                        await self._refuse(send, 413, "body_too_large", f"request body over {self.max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:
                return  # the 413 is out (or the response had begun): drop the rest
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    @staticmethod
    async def _refuse(send, status: int, code: str, detail: str) -> None:
        title = "Content Too Large" if status == 413 else "Bad Request"
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": PROBLEM_HEADERS + [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
