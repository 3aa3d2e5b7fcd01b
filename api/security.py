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


def current_principal(request: Request) -> Principal:
    token = _bearer(request)
    principal = request.app.state.ca.principal(token)
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
