"""Validators, conditional GET and HEAD for the publication routes.

Relying parties and caches poll the bridge certificate, the CRL and the
certs-only bundles; with an ETag (and a Last-Modified where a true date
exists) a poll that finds nothing new costs a 304 and no body. Every public
GET route that publishes something goes through ``publication`` and
``respond`` so that the rules below hold everywhere alike.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Callable, Mapping, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response

# FastAPI's ``responses``: status code → OpenAPI response object.
Responses = dict[int | str, dict[str, Any]]
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])

VALIDATOR_HEADERS = {
    "ETag": {"description": "Strong validator: a hash of this representation's bytes (PEM and DER differ)",
             "schema": {"type": "string"}},
    "Last-Modified": {"description": "When this content last changed, where that is known (e.g. the CRL's thisUpdate)",
                      "schema": {"type": "string"}},
    "Cache-Control": {"description": "How long caches may keep it", "schema": {"type": "string"}},
}
NOT_MODIFIED: Responses = {304: {"description": "Not Modified: If-None-Match matched the ETag, or (without If-None-Match) "
                                     "nothing changed since If-Modified-Since. No body."}}


def publication(app: FastAPI | APIRouter, path: str, **route: Any) -> Callable[[_Endpoint], _Endpoint]:
    """Register ``endpoint`` for GET (documented with its validators and 304)
    and for HEAD (undocumented: one operation per path in the OpenAPI
    document; FastAPI answers HEAD on a GET route with 405)."""
    def register(endpoint: _Endpoint) -> _Endpoint:
        documented = {k: v for k, v in route.items() if k != "responses"}
        responses: Responses = {status: dict(doc) for status, doc in route.get("responses", {}).items()}
        ok = responses.setdefault(200, {})
        ok["headers"] = {**VALIDATOR_HEADERS, **ok.get("headers", {})}
        app.add_api_route(path, endpoint, methods=["GET"], responses={**responses, **NOT_MODIFIED}, **documented)
        hidden = {k: v for k, v in route.items() if k in ("response_class", "name")}
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **hidden)
        return endpoint

    return register


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest() + '"'


def http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.timezone.utc), usegmt=True)


def _tags(header: str) -> list[str]:
    """The opaque tags of an If-None-Match list, W/ dropped: RFC 9110 13.1.2
    compares them weakly, so a cache that weakened our tag still matches."""
    tags = []
    for part in header.split(","):
        part = part.strip()
        if part.startswith("W/"):
            part = part[2:]
        if part:
            tags.append(part)
    return tags


def not_modified(headers: Mapping[str, str], etag: str, last_modified: dt.datetime | None) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; only without it
    is If-Modified-Since read, and an unreadable date is ignored."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = _tags(if_none_match)
        return "*" in tags or etag in tags
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    # HTTP dates have whole seconds: compare at that resolution, or content
    # dated 12:00:00.5 would look newer than the 12:00:00 we sent for it.
    return last_modified.replace(microsecond=0) <= since


def respond(request: Request, body: bytes, media_type: str, *, cache_control: str,
            last_modified: dt.datetime | None = None, vary: str | None = None) -> Response:
    """The representation ``body`` as a 200 (headers only for HEAD), or a
    304 that carries the same validators and caching headers (RFC 9110 15.4.5)."""
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if last_modified is not None:
        headers["Last-Modified"] = http_date(last_modified)
    if vary is not None:
        headers["Vary"] = vary
    if not_modified(request.headers, etag, last_modified):
        return Response(status_code=304, headers=headers)
    if request.method == "HEAD":
        return Response(media_type=media_type, headers={**headers, "Content-Length": str(len(body))})
    return Response(body, media_type=media_type, headers=headers)
