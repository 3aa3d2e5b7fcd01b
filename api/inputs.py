"""The request readers the routes share: path and body inputs checked one
way for every route, single or batch item.

``read_json`` is the verification routes' reading of a JSON body (they do
not go through FastAPI's, api/routes_verify.py): the answer to any body is
the one FastAPI's reading gives (status, code, wording), the common case
(``application/json`` that validates) at the cost of one pydantic call."""
from __future__ import annotations

import base64
import binascii
import email.message
import json
import re
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from pki.profile import parse_extended_key_usage

from .problems import Problem

Model = TypeVar("Model", bound=BaseModel)

# Enrollment ids are the store's hex UUIDs; anything else is unknown, and is
# answered as such without reaching the database (PostgreSQL refuses NUL).
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# RFC 5280 4.1.2.2: at most 20 octets; hexadecimal, with or without colons.
_SERIAL = re.compile(r"^(?:[0-9A-Fa-f]{1,40}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){0,19})$")


def check_issuer_id(issuer_id: str) -> str:
    if not _ID.match(issuer_id):
        raise Problem(404, "not_found", "no enrollment with that id")
    return issuer_id


def check_trust_anchor(trust_anchor: str) -> str:
    if trust_anchor == "bridge":
        return trust_anchor
    if trust_anchor.startswith("list:"):  # a registered external trusted list (bridge/trust_lists.py)
        return "list:" + check_trust_list_id(trust_anchor[len("list:"):])
    return check_issuer_id(trust_anchor)


def check_trust_list_id(list_id: str) -> str:
    if not _ID.match(list_id):
        raise Problem(404, "not_found", "no trust list with that id")
    return list_id


def check_serial(serial: str) -> str:
    if not _SERIAL.match(serial):
        raise Problem(400, "invalid_serial", "a serial number is 1 to 40 hexadecimal digits (20 octets), optionally colon-separated")
    return serial


def chain_options(body) -> dict:
    """The verification options of a chain or signature request (the
    ChainOptions fields), trust anchor checked, as VerificationService takes them.

    extended_key_usage is checked here, not only when the core gets to the
    chain (a signature route may fail before): an entry that is neither an
    OID nor a known name raises InputError (400 malformed_input, as a
    policy that is not an OID). The schema refuses the other fields' bad
    values (400 invalid_request, as an unknown revocation mode)."""
    parse_extended_key_usage(body.extended_key_usage)
    return dict(
        intermediates=body.intermediates, trust_anchor=check_trust_anchor(body.trust_anchor),
        policies=body.policies, require_explicit_policy=body.require_explicit_policy,
        inhibit_policy_mapping=body.inhibit_policy_mapping, inhibit_any_policy=body.inhibit_any_policy,
        at=body.at, revocation=body.revocation,
        profile=body.profile, anchor_constraints=body.anchor_constraints, key_usage=body.key_usage,
        extended_key_usage=body.extended_key_usage, max_chain_depth=body.max_chain_depth,
    )


def base64_field(value: str | None, field: str) -> bytes | None:
    """Strict base64; whitespace (line breaks of ``base64 -w76``) is ignored."""
    if value is None:
        return None
    try:
        compact = "".join(value.split()).encode("ascii")
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "invalid_base64", f"{field} is not valid base64") from None


def verify_signature_body(service, body) -> dict:
    """The signature route's reading of its body (a VerifySignatureRequest):
    a CMS SignedData, or certificate + signature + data, then the one
    verification. ``service`` is a VerificationService or a batch's
    PinnedVerification; /v1/verify/signature and each signature item of
    /v1/verify/batch read a body through here, so both refuse alike."""
    options = chain_options(body)
    if body.cms is not None:
        if body.certificate is not None or body.signature is not None or body.data is not None:
            raise Problem(400, "invalid_request", "give either cms, or certificate + signature + data")
        return service.verify_cms(base64_field(body.cms, "cms"), content=base64_field(body.content, "content"), **options)
    if body.certificate is not None and body.signature is not None and body.data is not None:
        if body.content is not None:
            raise Problem(400, "invalid_request", "content goes with cms; a raw signature signs data")
        return service.verify_raw(body.certificate, base64_field(body.signature, "signature"), base64_field(body.data, "data"),
                                  algorithm=body.algorithm, **options)
    raise Problem(400, "invalid_request", "give either cms, or certificate + signature + data")


def require_json_body(request: Request) -> None:
    """415 for a body that is not JSON (a form post, text/plain, no
    Content-Type); a request without a body passes, to be refused as such."""
    headers = request.headers
    has_body = headers.get("content-length", "0").strip() != "0" or "transfer-encoding" in headers
    if not has_body:
        return
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json")):
        return
    raise Problem(415, "unsupported_media_type", "the request body must be application/json")


async def read_json(request: Request, model: type[Model]) -> Model:
    """The request's body as ``model``: 415 when it is not JSON, else the
    body read once and validated; its refusals are FastAPI's own (400
    invalid_request through api/problems.py, same fields and messages).

    ``model_validate_json`` parses and validates in one step; pydantic's
    JSON parser refuses whatever json.loads might read differently (a byte
    order mark, UTF-16, NaN, lone surrogate escapes), so a body it refuses
    is read again as FastAPI reads it, to be answered in its words."""
    require_json_body(request)
    body = await request.body()
    ctype = request.headers.get("content-type")
    if body and ctype == "application/json":
        try:
            return model.model_validate_json(body)
        except ValueError:
            pass
    return _read_as_fastapi(body, ctype, model)


def _read_as_fastapi(body: bytes, ctype: str | None, model: type[Model]) -> Model:
    # fastapi/routing.py get_request_handler and fastapi/dependencies/utils.py
    # request_body_to_args, for one body parameter that is not embedded.
    value: Any = _MISSING
    if body:
        try:
            value = json.loads(body) if _fastapi_reads_json(ctype) else body
        except json.JSONDecodeError as exc:
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                           "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
        except Exception as exc:  # noqa: BLE001 - FastAPI's answer to any other failure to read
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    if value is _MISSING:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return model.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]) from None


_MISSING = object()


def _fastapi_reads_json(ctype: str | None) -> bool:
    if not ctype:
        return True
    message = email.message.Message()
    message["content-type"] = ctype
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")
