"""A request-body limit enforced before the body is read whole.

Pure ASGI so it sees the stream: a declared Content-Length over the limit is
refused at once; a chunked body is counted as it arrives and refused as soon
as it passes the limit.

The 413 is sent by this middleware itself, not raised through the
application: FastAPI turns any exception raised while it reads a JSON body
into "400 There was an error parsing the body", which would hide the limit.
Once the limit is passed the application is told the client went away
(``http.disconnect``), so it stops reading, and whatever it still tries to
send or raise is dropped.
"""
from __future__ import annotations

import json

PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]


class BodyTooLarge(Exception):
    """Kept for callers that raise it themselves; api.problems maps it to 413."""


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes

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
