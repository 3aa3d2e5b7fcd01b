"""Bearer-token authentication and role checks, as FastAPI dependencies."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .problems import Problem


@dataclass(frozen=True)
class Principal:
    token_id: int
    role: str  # admin | issuer | platform

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.token_id}"


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
        self._entries: dict[str, tuple[int, tuple[int, str]]] = {}
        self._size = size

    def lookup(self, request: Request, token: str) -> tuple[int, str] | None:
        from bridge.service import hash_token

        epoch = request.app.state.verification.current_epoch()
        key = hash_token(token)
        hit = self._entries.get(key)
        if hit is not None and hit[0] == epoch:
            return hit[1]
        principal = request.app.state.ca.principal(token)
        if principal is not None:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (epoch, principal)
        return principal


def current_principal(request: Request) -> Principal:
    token = _bearer(request)
    principal = request.app.state.principals.lookup(request, token)
    if principal is None:
        raise Problem(401, "unauthorized", "unknown or revoked token")
    return Principal(*principal)


def require(*roles: str):
    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            raise Problem(403, "forbidden", f"this route needs the {' or '.join(roles)} role; the token is {principal.role}")
        return principal

    return check


AnyUser = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require("admin"))]
IssuerOrAdmin = Annotated[Principal, Depends(require("issuer", "admin"))]
PlatformOrAdmin = Annotated[Principal, Depends(require("platform", "admin"))]
