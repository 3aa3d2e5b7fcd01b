"""External trusted lists (ETSI TS 119 612) the bridge recognises
(bridge/trust_lists.py): an administrator registers one (a URL to fetch, or
an upload, with the certificates allowed to sign it and the mapping onto the
bridge's policies), fetches it now, or uploads a new version; anyone
authenticated lists them and reads one's versions and services, and names
``"list:<id>"`` as the trust anchor of /v1/verify/*.
"""
# No ``from __future__ import annotations``: FastAPI must see the dependency annotations as objects.
import base64
import binascii

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import Field

from bridge import governance
from bridge.errors import BridgeError, translate
from bridge.store import NotFound, StoreError

from .inputs import check_trust_list_id
from .problems import Problem, outcome_status
from .schemas import RequestModel, ResponseModel, problem_responses
from .security import AdminJson, AnyUser

router = APIRouter(tags=["trust lists"])


class TrustListPolicyMapping(RequestModel):
    prefix: str = Field(..., max_length=200, description="a policy OID the foreign list names; OIDs under it match too")
    bridge_policy: str = Field(..., max_length=200, description="the bridge's policy it is recognised as")


class TrustListMapping(RequestModel):
    service_types: dict[str, str] = Field(default_factory=dict, description="foreign ServiceTypeIdentifier -> TS 119 612 type")
    statuses: dict[str, str] = Field(default_factory=dict, description="foreign ServiceStatus -> TS 119 612 status")
    policies: list[TrustListPolicyMapping] = Field(default_factory=list, max_length=256)


class TrustListRegisterRequest(RequestModel):
    name: str = Field(..., min_length=1, max_length=200)
    url: str | None = Field(None, max_length=2000, description="where the list is fetched (http://)")
    xml: str | None = Field(None, description="the list itself, base64, instead of a URL")
    allowed_signers: list[str] = Field(..., min_length=1, max_length=32, description="PEM certificates allowed to sign the list")
    mapping: TrustListMapping | None = None


class TrustListUploadRequest(RequestModel):
    xml: str = Field(..., description="a new version of the list, base64")


class TrustListView(ResponseModel):
    id: str
    name: str
    url: str | None
    trust_anchor: str = Field(..., description='the value to give as trust_anchor: "list:<id>"')
    latest: dict | None = Field(None, description="the newest accepted version: scheme, territory, sequence number, counts, checks")
    versions: list[dict] = Field(default_factory=list, description="every accepted version, newest first")


async def _call(request: Request, fn, *args, changes_trust: bool = False, **kwargs):
    # A TrustListError is a BridgeError: api/problems.py answers it by its kind.
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except NotFound:
        raise BridgeError("not_found", "no trust list with that id", "not_found") from None
    except StoreError as exc:
        raise translate(exc) from None
    finally:
        if changes_trust:  # this process at once; the others through the epoch
            request.app.state.verification.invalidate()


def _xml(value: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "invalid_base64", "xml is not valid base64") from None


_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422)


@router.post("/v1/trust-lists", status_code=201, response_model=TrustListView, responses=_ERRORS,
             summary="Register an external trusted list (a URL, fetched now, or an upload) with the certificates allowed "
                     "to sign it; an upload whose signature or schema fails is refused")
async def register(body: TrustListRegisterRequest, request: Request, who: AdminJson) -> JSONResponse:
    if body.xml is not None:
        _xml(body.xml)  # refused here as invalid_base64, as before; the action takes it as base64
    params = {"name": body.name, "url": body.url, "xml": body.xml, "allowed_signers": body.allowed_signers,
              "mapping": body.mapping.model_dump() if body.mapping is not None else None}
    # A trust change: through the one gate (two-person control when configured).
    view = await _call(request, governance.perform, request.app.state.ca, "trust_list_register", params,
                       actor=who.actor, changes_trust=True)
    return JSONResponse(view, status_code=outcome_status(view, 201))


@router.get("/v1/trust-lists", response_model=list[TrustListView], responses=problem_responses(401),
            summary="The registered external trusted lists")
async def list_all(request: Request, _who: AnyUser) -> JSONResponse:
    return JSONResponse(await _call(request, request.app.state.ca.trust_lists.views))


@router.get("/v1/trust-lists/{list_id}", response_model=TrustListView, responses=problem_responses(401, 404),
            summary="One registered list: its newest version's summary and every version kept")
async def show(list_id: str, request: Request, _who: AnyUser) -> JSONResponse:
    return JSONResponse(await _call(request, request.app.state.ca.trust_lists.view, check_trust_list_id(list_id)))


@router.get("/v1/trust-lists/{list_id}/services", response_model=list[dict], responses=problem_responses(401, 404, 422),
            summary="The services of the newest version: type, status, status history, identities, qualifiers, policies")
async def services(list_id: str, request: Request, _who: AnyUser) -> JSONResponse:
    return JSONResponse(await _call(request, request.app.state.ca.trust_lists.services, check_trust_list_id(list_id)))


@router.post("/v1/trust-lists/{list_id}/fetch", responses={**_ERRORS, **problem_responses(503)},
             summary="Fetch the list now; a newer sequence number with a valid signature and schema becomes a new version")
async def fetch(list_id: str, request: Request, who: AdminJson) -> JSONResponse:
    registry = request.app.state.ca.trust_lists
    outcome = await _call(request, registry.fetch, check_trust_list_id(list_id), actor=who.actor, force=True,
                          changes_trust=True)
    return JSONResponse({**outcome, "list": await _call(request, registry.view, list_id)})


@router.post("/v1/trust-lists/{list_id}/versions", status_code=201, responses=_ERRORS,
             summary="Upload a new version of the list (an older sequence number is refused: 409)")
async def upload(list_id: str, body: TrustListUploadRequest, request: Request, who: AdminJson) -> JSONResponse:
    registry = request.app.state.ca.trust_lists
    outcome = await _call(request, registry.upload, check_trust_list_id(list_id), _xml(body.xml), actor=who.actor,
                          changes_trust=True)
    return JSONResponse({**outcome, "list": await _call(request, registry.view, list_id)}, status_code=201)
