"""Administration routes beyond the contract's, so that every ``bridgeca``
admin command (api/cli_admin.py) also works against a server (``--url``):
reject an enrollment, issue a CRL now, create, list and revoke API tokens.
Admin role only; each is one bridge.service call, audited as the token.
"""
# No ``from __future__ import annotations``: FastAPI must see the dependency
# annotations (``admin_json``, a local of install) as objects, not names.
from datetime import timedelta
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from .inputs import check_issuer_id
from .schemas import IssuerView, RequestModel, ResponseModel


class RejectRequest(RequestModel):
    reason: str = Field("", max_length=500, description="recorded in the audit log")


class CrlIssued(ResponseModel):
    crl_number: int
    this_update: str
    next_update: str


class TokenCreateRequest(RequestModel):
    role: Literal["admin", "issuer", "platform"]
    expires_in_seconds: int | None = Field(None, ge=1, le=100 * 366 * 86400, description="lifetime; none: never expires")


class TokenView(ResponseModel):
    id: int
    role: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    state: Literal["active", "expired", "revoked"]


class NewToken(TokenView):
    token: str = Field(..., description="shown once; only its hash is stored")


def install(app: FastAPI, admin_json, problems) -> None:
    """``admin_json``: the app's admin-and-JSON-body dependency; ``problems``: its responses helper."""
    common = problems(401, 403, 413)

    @app.post("/v1/issuers/{issuer_id}/reject", response_model=IssuerView, tags=["issuers"],
              summary="Refuse a pending enrollment", responses={**common, **problems(404, 409, 415)})
    def reject(issuer_id: str, request: Request, who: admin_json, body: RejectRequest | None = None) -> JSONResponse:
        view = request.app.state.ca.reject(check_issuer_id(issuer_id), reason=body.reason if body else "", actor=who.actor)
        request.app.state.verification.invalidate()
        return JSONResponse(view)

    @app.post("/v1/crl/issue", response_model=CrlIssued, tags=["publication"],
              summary="Issue a new CRL now", responses={**common, **problems(503)})
    def issue_crl(request: Request, who: admin_json) -> JSONResponse:
        return JSONResponse(request.app.state.ca.issue_crl(actor=who.actor))

    @app.get("/v1/tokens", response_model=list[TokenView], tags=["tokens"],
             summary="API tokens: role, creation, expiry, revocation (never the token or its hash)", responses=common)
    def list_tokens(request: Request, who: admin_json) -> JSONResponse:
        return JSONResponse(request.app.state.ca.tokens())

    @app.post("/v1/tokens", status_code=201, response_model=NewToken, tags=["tokens"],
              summary="Create an API token", responses={**common, **problems(400, 415)})
    def create_token(body: TokenCreateRequest, request: Request, who: admin_json) -> JSONResponse:
        ca = request.app.state.ca
        expires_in = timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
        token = ca.create_token(body.role, actor=who.actor, expires_in=expires_in)
        token_id, _role = ca.principal(token)
        view = next(t for t in ca.tokens() if t["id"] == token_id)
        return JSONResponse({**view, "token": token}, status_code=201)

    @app.post("/v1/tokens/{token_id}/revoke", response_model=TokenView, tags=["tokens"],
              summary="Revoke an API token: refused (401) from then on", responses={**common, **problems(404, 409)})
    def revoke_token(token_id: int, request: Request, who: admin_json) -> JSONResponse:
        return JSONResponse(request.app.state.ca.revoke_token(token_id, actor=who.actor))
