"""Bearer-token authentication and role checks, as FastAPI dependencies."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from bridge.tokens import hash_token

from .inputs import require_json_body
from .problems import Problem


@dataclass(frozen=True)
class Principal:
    token_id: int
    role: str  # admin | issuer | platform

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.token_id}"


# An authentication dependency: the request's principal, or a 401/403 Problem.
AuthCheck = Callable[[Request], Awaitable[Principal]]


def auth_first(check: AuthCheck) -> AuthCheck:
    """Mark an authentication dependency, for authenticate_before_body."""
    vars(check)["auth_first"] = True  # a function attribute (read with getattr below)
    return check


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "unauthorized", "an 'Authorization: Bearer TOKEN' header is required")
    return token.strip()


class PrincipalCache:
    """Known tokens (by hash) per process, valid for one revocation epoch:
    a token revocation bumps the epoch, so it takes effect everywhere within
    the epoch poll interval. Saves a database query per request."""

    def __init__(self, size: int = 4096) -> None:
        self._entries: dict[str, tuple[int, tuple[int, str], float | None]] = {}
        self._size = size

    def cached(self, token_hash: str, epoch: int) -> tuple[int, str] | None:
        hit = self._entries.get(token_hash)
        if hit is None or hit[0] != epoch:
            return None
        # Expiry bumps no epoch: the cache checks it itself.
        if hit[2] is not None and time.time() >= hit[2]:
            return None
        return hit[1]

    def remember(self, token_hash: str, epoch: int, principal: tuple[int, str], expires_at: float | None = None) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[token_hash] = (epoch, principal, expires_at)

    def lookup(self, request: Request, token: str) -> tuple[int, str] | None:
        """Blocking form (database reads when the cache cannot answer)."""
        epoch = request.app.state.verification.current_epoch()
        key = hash_token(token)
        principal = self.cached(key, epoch)
        if principal is None:
            found = request.app.state.ca.principal_until(token)
            if found is not None:
                principal = found[0]
                self.remember(key, epoch, *found)
        return principal


async def authenticate(request: Request, roles: Collection[str] | None = None) -> Principal:
    """The API's one authentication: the request's principal, or a 401
    (no token, an unknown, revoked or expired one) or a 403 (a role not in
    ``roles``; None: any role). Every route's dependency and the
    verification routes' own reading (api/routes_verify.py) call it.

    Runs on the event loop: a request whose token and epoch are known
    costs no thread hop; the database is read in the threadpool, only when
    the epoch is due for a poll or the token is not cached."""
    token = _bearer(request)
    state = request.app.state
    epoch = state.verification.known_epoch()
    key = hash_token(token)
    principal = state.principals.cached(key, epoch) if epoch is not None else None
    if principal is None:
        principal = await run_in_threadpool(state.principals.lookup, request, token)
    if principal is None:
        raise Problem(401, "unauthorized", "unknown, revoked or expired token")
    if roles is not None and principal[1] not in roles:
        raise Problem(403, "forbidden", f"this route needs the {' or '.join(roles)} role; the token is {principal[1]}")
    return Principal(*principal)


@auth_first
async def current_principal(request: Request) -> Principal:
    return await authenticate(request)


def require(*roles: str) -> AuthCheck:
    # Takes the request itself rather than depending on current_principal:
    # FastAPI's per-request cost grows with each level of dependencies.
    @auth_first
    async def check(request: Request) -> Principal:
        return await authenticate(request, roles)

    return check


def authenticate_before_body(app) -> None:
    """Decide token and role before the body is read, on every route that
    has an authentication dependency (one marked ``auth_first``).

    FastAPI parses the JSON body before it runs a route's dependencies, so
    without this a request with no token and a broken body gets a 400 that
    tells an anonymous caller about the route's input; it must get the 401
    (or 403) first. Call it once every route is added: each route's handler
    is wrapped to run its marked dependencies on the request before the
    body is read (they run again as usual inside, answered from the token
    cache). Routes of included routers are reached through their original
    router: FastAPI builds their handlers from the original route."""
    from fastapi.routing import APIRoute

    def api_routes(routes):
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from api_routes(inner.routes)
            elif isinstance(route, APIRoute):
                yield route

    def marked(dependant) -> list:
        found = []
        for sub in dependant.dependencies:
            if getattr(sub.call, "auth_first", False):
                found.append(sub.call)
            else:
                found += marked(sub)
        return found

    for route in api_routes(app.routes):
        checks = marked(route.dependant)
        if not checks or getattr(route, "auth_first_wrapped", False):
            continue
        route.auth_first_wrapped = True
        route.get_route_handler = _handler_checked_first(route.get_route_handler, checks)
        route.app = _checked_first(route.app, checks)


def _handler_checked_first(get_route_handler, checks):
    def get_checked_handler():
        handler = get_route_handler()

        async def checked(request: Request):
            for check in checks:
                await check(request)
            return await handler(request)

        return checked

    return get_checked_handler


def _checked_first(inner, checks):
    from starlette.requests import Request as StarletteRequest

    async def app(scope, receive, send):
        request = StarletteRequest(scope, receive)  # the body stays unread
        for check in checks:
            await check(request)
        await inner(scope, receive, send)

    return app


def json_caller(*roles: str) -> AuthCheck:
    """One dependency for a JSON route: token, role, then media type (in that
    order, as separate dependencies would answer), at a third of the cost of
    three dependencies."""
    check_role = require(*roles)

    @auth_first  # see authenticate_before_body
    async def caller(request: Request) -> Principal:
        principal = await check_role(request)
        require_json_body(request)
        return principal

    return caller


AnyUser = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require("admin"))]
IssuerOrAdminJson = Annotated[Principal, Depends(json_caller("issuer", "admin"))]
AdminJson = Annotated[Principal, Depends(json_caller("admin"))]
