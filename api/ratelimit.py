"""Rate limits, as ASGI middleware outside everything else (so a refused
request costs no body read, no token lookup and no verification):

- failed authentication per client address: a request that presented a
  bearer token and was answered 401 (unknown, revoked or expired token)
  counts against its address. After ``limit`` failures within ``window``
  seconds, every request from that address that carries an Authorization
  header is answered 429 until the window ends (public routes such as
  /v1/health or /v1/crl still answer). A request without a bearer token is
  not a guess and does not count.
- verification requests (/v1/verify/*) per token per second: a token bucket
  per bearer token (holding one second's worth, at least one request).

Both remember a bounded number of keys (least recently used forgotten
first), so a flood of addresses or tokens costs bounded memory; forgetting
an address or token only resets its count. State is per worker process:
with ``--workers N`` an address may see up to N times the limit. The client
address is the connection's, or the one a trusted proxy names when the
server runs with ``--forwarded-allow-ips`` (uvicorn rewrites it).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from typing import Callable

from .limits import drain

PROBLEM = b"application/problem+json"
VERIFY_PREFIX = "/v1/verify/"


class FailureLimiter:
    """Failures per key in fixed windows, at most ``max_keys`` keys."""

    def __init__(self, limit: int, window: float, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        # key -> [window start, failures in it]
        self._entries: OrderedDict[str, list] = OrderedDict()

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None when it is not blocked."""
        entry = self._entries.get(key)
        if entry is None or entry[1] < self.limit:
            return None
        left = entry[0] + self.window - self._clock()
        if left <= 0:
            del self._entries[key]
            return None
        return left

    def failed(self, key: str) -> None:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] >= self.window:
            entry = self._entries[key] = [now, 0]
        entry[1] += 1
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class TokenBuckets:
    """``rate`` requests per second per key, bursts of ``max(1, rate)``; at most ``max_keys`` keys."""

    def __init__(self, rate: float, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, list] = OrderedDict()  # key -> [tokens, last refill]

    def take(self, key: str) -> float | None:
        """None when the request may go; else seconds until it could."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self.capacity, now]
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            self._buckets.move_to_end(key)
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return None
        return (1.0 - bucket[0]) / self.rate


def _bearer(scope) -> tuple[bool, str | None]:
    """(an Authorization header is present, the bearer token or None)."""
    present, token = False, None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            if present:
                return True, None  # twice: not a plain bearer token
            present = True
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                token = rest.strip()
    return present, token


class RateLimitMiddleware:
    def __init__(self, app, *, failures: FailureLimiter | None, verify_buckets: TokenBuckets | None) -> None:
        self.app = app
        self.failures = failures
        self.verify_buckets = verify_buckets

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (self.failures is None and self.verify_buckets is None):
            return await self.app(scope, receive, send)
        present, token = _bearer(scope)
        if not present:
            return await self.app(scope, receive, send)
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if self.failures is not None:
            wait = self.failures.retry_after(address)
            if wait is not None:
                return await _refuse(receive, send, wait, "too many failed authentications from this address; try again later")
        if token is not None and self.verify_buckets is not None and scope["path"].startswith(VERIFY_PREFIX):
            wait = self.verify_buckets.take(hashlib.sha256(token.encode()).hexdigest())
            if wait is not None:
                return await _refuse(receive, send, wait, "verification requests over this token's rate; try again later")
        if self.failures is None or token is None:
            return await self.app(scope, receive, send)

        async def watching_send(message):
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.failures.failed(address)
            await send(message)

        return await self.app(scope, receive, watching_send)


async def _refuse(receive, send, wait: float, detail: str) -> None:
    # The body is read (and dropped) first, within limits, so a client that
    # sends its whole request before reading gets the 429, not a reset.
    complete = await drain(receive)
    retry = str(max(1, math.ceil(wait))).encode()
    body = json.dumps({"type": "about:blank", "title": "Too Many Requests", "status": 429, "code": "rate_limited",
                       "detail": detail}).encode()
    headers = [(b"content-type", PROBLEM), (b"content-length", str(len(body)).encode()), (b"retry-after", retry)]
    if not complete:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
