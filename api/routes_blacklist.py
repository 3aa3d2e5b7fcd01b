"""Administration of the blacklist (黑名单): add an entry, remove one (soft:
it stays, with its end time), list them with their internal notes. Admin
role only; additions and removals go through bridge/governance.py's
``perform`` (two-person control applies there) and are audited as the token.
"""
# No ``from __future__ import annotations``: FastAPI must see the dependency
# annotation (``admin_json``, an argument of router) as an object.
import re
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import Field

from bridge import governance

from .problems import Problem, outcome_status
from .schemas import RequestModel, ResponseModel

_ENTRY_ID = re.compile(r"^[0-9a-f]{32}$")


class IssuerSerial(RequestModel):
    issuer: str = Field(..., min_length=1, max_length=2000, description="the issuer's name, RFC 4514")
    serial: str = Field(..., min_length=1, max_length=64, description="hexadecimal")


class SubjectIdentity(RequestModel):
    oid: str = Field(..., min_length=1, max_length=100, description="dotted OID, or organizationIdentifier, serialNumber, ...")
    value: str = Field(..., min_length=1, max_length=500, description="e.g. the unified social credit code")


class BlacklistAddRequest(RequestModel):
    kind: Literal["spki_sha256", "certificate_sha256", "issuer_serial", "subject_identity"]
    value: str | IssuerSerial | SubjectIdentity | None = Field(
        None, description="hex SHA-256 (spki_sha256, certificate_sha256), {issuer, serial} or {oid, value}")
    certificate: str | None = Field(None, max_length=65536,
                                    description="PEM: the key, certificate or issuer+serial is taken from it instead of value")
    reason: str = Field(..., min_length=1, max_length=200)
    public_note: str = Field("", max_length=2000, description="published with the entry")
    internal_note: str = Field("", max_length=4000, description="administrators only: never published")
    evidence: str = Field("", max_length=2000, description="evidence reference (case file): administrators only")
    effective_at: str | None = Field(None, max_length=64, description="ISO 8601 with a time zone; not in the future; default now")


class BlacklistRemoveRequest(RequestModel):
    reason: str = Field("", max_length=500, description="recorded with the removal and in the audit log")


class BlacklistEntryView(ResponseModel):
    id: str
    kind: str
    value: object
    reason: str
    public_note: str
    effective_at: str
    source: Literal["admin", "keyCompromise"]
    status: Literal["active", "removed"]
    removed_at: str | None
    internal_note: str
    evidence: str
    author: str
    created_at: str
    removed_by: str | None
    removal_reason: str | None
    enrollment: str | None


def _entry_id(entry_id: str) -> str:
    if not _ENTRY_ID.match(entry_id):
        raise Problem(404, "not_found", "no blacklist entry with that id")
    return entry_id


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise Problem(400, "invalid_request", f"effective_at: {text!r} is not an ISO 8601 time") from None


def router(admin_json, problems) -> APIRouter:
    """``admin_json``: the app's admin-and-JSON-body dependency; ``problems``: its responses helper."""
    routes = APIRouter(tags=["blacklist"])
    common = problems(401, 403, 413)

    @routes.get("/v1/blacklist/entries", response_model=list[BlacklistEntryView],
                summary="Every blacklist entry, removed ones included, with internal notes", responses=common)
    def list_entries(request: Request, who: admin_json) -> JSONResponse:
        return JSONResponse(request.app.state.ca.blacklist_entries())

    @routes.post("/v1/blacklist/entries", status_code=201, response_model=BlacklistEntryView,
                 summary="Blacklist a key, certificate, issuer+serial or subject identity; every verification refuses it "
                         "(code blacklisted) within the epoch poll",
                 responses={**common, **problems(400, 409, 415, 422)})
    async def add_entry(body: BlacklistAddRequest, request: Request, who: admin_json) -> JSONResponse:
        params = body.model_dump(exclude_none=True)
        if body.effective_at is not None:
            params["effective_at"] = _time(body.effective_at)
        if isinstance(body.value, (IssuerSerial, SubjectIdentity)):
            params["value"] = body.value.model_dump()
        ca = request.app.state.ca
        view = await run_in_threadpool(governance.perform, ca, "blacklist_add", params, actor=who.actor)
        request.app.state.verification.invalidate()
        return JSONResponse(view, status_code=outcome_status(view, 201))

    @routes.post("/v1/blacklist/entries/{entry_id}/remove", response_model=BlacklistEntryView,
                 summary="End a blacklist entry (it stays listed, as removed)",
                 responses={**common, **problems(404, 409, 415)})
    async def remove_entry(entry_id: str, request: Request, who: admin_json,
                           body: BlacklistRemoveRequest | None = None) -> JSONResponse:
        params = {"entry_id": _entry_id(entry_id), "reason": body.reason if body else ""}
        view = await run_in_threadpool(governance.perform, request.app.state.ca, "blacklist_remove", params, actor=who.actor)
        request.app.state.verification.invalidate()
        return JSONResponse(view, status_code=outcome_status(view))

    return routes
