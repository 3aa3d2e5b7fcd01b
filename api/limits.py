"""A request-body limit enforced before the body is read whole.

Pure ASGI so it sees the stream: a declared Content-Length over the limit is
refused at once; a chunked body is counted as it arrives and refused as soon
as it passes the limit.
"""
from __future__ import annotations

import json

PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await self._refuse(send, 400, "invalid_request", "Content-Length is not a number")
                if declared > self.max_bytes:
                    return await self._refuse(send, 413, "body_too_large", f"request body over {self.max_bytes} bytes")
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, 413, "body_too_large", f"request body over {self.max_bytes} bytes")

    @staticmethod
    async def _refuse(send, status: int, code: str, detail: str) -> None:
        title = "Content Too Large" if status == 413 else "Bad Request"
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": PROBLEM_HEADERS + [(b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
