"""Public governance routes, no token: the signed blacklist and the public
register (公示). Each goes through api/http_cache (ETag, 304, HEAD).

GET /v1/blacklist is the exact JSON document the bridge signed; GET
/v1/blacklist.p7s is its detached CMS signature (DER), which a platform that
caches both checks offline against the bridge certificate:
``openssl cms -verify -binary -content blacklist.json -inform DER -in blacklist.p7s -CAfile bridge.pem -purpose any``.
"""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from bridge import register

from . import http_cache

JSON = "application/json"
CMS_SIGNATURE = "application/pkcs7-signature"
HTML = "text/html"


def _wants_html(accept: str) -> bool:
    """text/html preferred over JSON by the Accept header (a browser); JSON otherwise."""
    best_html = best_json = 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
        elif media in (JSON, "application/*"):
            best_json = max(best_json, q)
    return best_html > 0 and best_html > best_json


def router() -> APIRouter:
    routes = APIRouter(tags=["publication"])

    @http_cache.publication(routes, "/v1/blacklist", summary="The blacklist (黑名单): the public part of every entry, "
                            "exactly the bytes /v1/blacklist.p7s signs",
                            responses={200: {"description": "the signed document", "content": {JSON: {"schema": {"type": "object"}}}}})
    async def blacklist_document(request: Request) -> Response:
        document, _signature = await run_in_threadpool(request.app.state.ca.published_blacklist)
        return http_cache.respond(request, document, JSON, cache_control="public, max-age=60")

    @http_cache.publication(routes, "/v1/blacklist.p7s", summary="Detached CMS signature (DER) of /v1/blacklist by the bridge",
                            responses={200: {"description": "CMS SignedData without content, with the bridge certificate",
                                             "content": {CMS_SIGNATURE: {"schema": {"type": "string", "format": "binary"}}}}})
    async def blacklist_signature(request: Request) -> Response:
        _document, signature = await run_in_threadpool(request.app.state.ca.published_blacklist)
        return http_cache.respond(request, signature, CMS_SIGNATURE, cache_control="public, max-age=60")

    @http_cache.publication(routes, "/v1/register", summary="Public register (公示): members, status history, disclosed violations. "
                            "JSON, or HTML (zh or en: ?lang= or Accept-Language) when the client asks for text/html",
                            responses={200: {"description": "the register", "content": {
                                JSON: {"schema": {"type": "object"}}, HTML: {"schema": {"type": "string"}}}}})
    async def public_register(request: Request, lang: str | None = None) -> Response:
        data = await run_in_threadpool(request.app.state.ca.public_register)
        if _wants_html(request.headers.get("accept", "")):
            page = register.render_html(data, register.language(lang, request.headers.get("accept-language", "")))
            return http_cache.respond(request, page.encode("utf-8"), "text/html; charset=utf-8",
                                      cache_control="public, max-age=60", vary="Accept, Accept-Language")
        import json

        body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return http_cache.respond(request, body, JSON, cache_control="public, max-age=60", vary="Accept, Accept-Language")

    return routes
