"""The console's routes: sign-in, the administrator's pages and their
actions, and the verification page (platform or administrator).

Pages are GETs; actions are form POSTs, each checked for its CSRF token,
each one domain call (bridge/governance.py ``perform``/``confirm``/``cancel``,
the BridgeCA facade), then a redirect (post/redirect/get) to the page with
what was done. Errors are pages in the reader's language (or problem+json
for a client that asks for JSON), with the status the API would answer.
"""
from __future__ import annotations

import base64
import binascii
import functools
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bridge import governance

from ..problems import Problem
from . import i18n, views
from .session import (
    LOGIN_CSRF_COOKIE,
    ConsoleError,
    Session,
    check_csrf,
    clear_session_cookie,
    current_session,
    new_login_csrf,
    read_form,
    same,
    set_login_csrf_cookie,
    set_session_cookie,
    sign_in,
    sign_out,
)

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
_ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
# Pages carry CSRF tokens and administrators' data: never cached, never framed, scripts only from here.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
REVOCATION_REASONS = ("unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
                      "cessationOfOperation", "privilegeWithdrawn")
BLACKLIST_KINDS = ("spki_sha256", "certificate_sha256", "issuer_serial", "subject_identity")
_PROPOSAL_ID = re.compile(r"^[0-9a-f]{32}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SERIAL = re.compile(r"^[0-9A-Fa-f]{1,40}$")
_DONE = {"approve", "reject", "confirm", "cancel", "suspend", "reinstate", "renew", "withdraw", "revoke",
         "change_terms", "blacklist_add", "blacklist_remove", "proposed"}


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


# --------------------------------------------------------------------------- rendering


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return ("json" in accept) and "text/html" not in accept


def render(request: Request, template: str, status: int = 200, session: Session | None = None, **context) -> Response:
    lang = i18n.language(request)
    t = i18n.translator(lang)
    done = request.query_params.get("done")
    body = _ENV.get_template(template).render(
        t=t, lang=lang, session=session, path=request.url.path if request.method == "GET" else "/", flash=t(f"done.{done}") if done in _DONE else None,
        **context)
    return _remember_language(request, HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS))


def _remember_language(request: Request, response: Response) -> Response:
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, asked, max_age=365 * 86400, path="/", samesite="strict")
    return response


def error_page(request: Request, status: int, code: str, key: str, detail: str = "",
               session: Session | None = None) -> Response:
    if _wants_json(request):
        from ..problems import problem_response

        return problem_response(status, code, detail or i18n.translator("en")(key, detail=detail))
    t = i18n.translator(i18n.language(request))
    return render(request, "error.html", status, session=session, code=code, message=t(key, detail=detail), detail=detail)


def _bridge_error(request: Request, exc) -> Response:
    from ..problems import bridge_status

    status = bridge_status(exc)
    key = "error.unavailable" if exc.kind == "unavailable" else i18n.error_key(exc.code)
    return error_page(request, status, exc.code, key, exc.message)


def page(fn: Callable) -> Callable:
    """A console route: ``fn(request, ..., form=None)`` runs in the threadpool
    (it reads the database and may sign); a POST's form is read first. Its
    errors become pages (ConsoleError, BridgeError, the API's Problem, pki's
    InputError) with the API's status; Redirect becomes a 303."""
    from bridge.errors import BridgeError
    from pki.errors import InputError

    takes_form = "form" in inspect.signature(fn).parameters

    @functools.wraps(fn)
    async def handler(request: Request, **kwargs):
        try:
            if takes_form:
                limit = getattr(request.app.state, "max_body_bytes", None) or 1024 * 1024
                kwargs["form"] = await read_form(request, max_bytes=limit)
            return await run_in_threadpool(functools.partial(fn, request, **kwargs))
        except Redirect as exc:
            return _remember_language(request, RedirectResponse(exc.url, status_code=303, headers={"Cache-Control": "no-store"}))
        except ConsoleError as exc:
            return error_page(request, exc.status, exc.code, exc.key, exc.detail)
        except BridgeError as exc:
            return _bridge_error(request, exc)
        except Problem as exc:
            key = "error.not_found" if exc.status == 404 else "error.bad_input"
            return error_page(request, exc.status, exc.code, key, exc.detail)
        except InputError as exc:
            return error_page(request, 400, getattr(exc, "code", "malformed_input"), "error.bad_input", str(exc))

    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "form"]
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return handler


def _signed_in(request: Request) -> Session:
    session = current_session(request)
    if session is None:
        if _wants_json(request):  # a program, not a person: no sign-in page to go to
            raise ConsoleError(401, "unauthorized", "error.signed_out")
        raise Redirect("/admin/login")
    return session


def _admin(request: Request) -> Session:
    session = _signed_in(request)
    if not session.is_admin:
        raise ConsoleError(403, "forbidden", "error.admin_only")
    return session


def _admin_form(request: Request, form: dict[str, str]) -> Session:
    session = _admin(request)
    check_csrf(form, session)
    return session


def _days(text: str | None, default: float) -> float:
    """The expiry look-ahead of the queue (``?days=``), as GET /v1/cross-certificates/expiring takes it."""
    if text is None or not text.strip():
        return default
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not 0 <= days <= 36500:  # NaN too
        raise ConsoleError(400, "invalid_request", "error.bad_input", "days")
    return days


def _enrollment_id(value: str) -> str:
    if not _ID.match(value):
        raise ConsoleError(404, "not_found", "error.not_found")
    return value


def _perform(request: Request, session: Session, action: str, params: dict, back: str) -> None:
    """One governance action, then back to ``back`` saying what was done (or proposed)."""
    result = governance.perform(request.app.state.ca, action, params, actor=session.actor)
    request.app.state.verification.invalidate()
    done = "proposed" if isinstance(result, governance.Proposed) else action
    raise Redirect(f"{back}?done={done}")


# --------------------------------------------------------------------------- routes


def router() -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/")
    @page
    def root(request: Request) -> Response:
        session = _signed_in(request)
        raise Redirect("/admin" if session.is_admin else "/verify")

    @routes.get("/console/static/{name}")
    async def static(name: str) -> Response:
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
            raise Problem(404, "not_found", "no such console file")
        return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    # ------------------------------------------------------------------ sign-in

    @routes.get("/admin/login")
    @page
    def login_page(request: Request) -> Response:
        value = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
        response = render(request, "login.html", login_csrf=value)
        set_login_csrf_cookie(response, request, value)
        return response

    @routes.post("/admin/login")
    @page
    def login(request: Request, form: dict[str, str]) -> Response:
        if not same(form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE) or "\x00"):
            raise ConsoleError(403, "csrf_failed", "error.csrf")
        limiter = getattr(request.app.state, "auth_failures", None)
        address = request.client.host if request.client else "unknown"
        if limiter is not None and limiter.retry_after(address) is not None:
            raise ConsoleError(429, "rate_limited", "error.rate_limited")
        try:
            token, session, lifetime = sign_in(request, form.get("token", ""))
        except ConsoleError as exc:
            if limiter is not None and exc.status == 401:
                limiter.failed(address)  # guesses count as they do on the API
            raise
        response = RedirectResponse("/admin" if session.is_admin else "/verify", status_code=303,
                                    headers={"Cache-Control": "no-store"})
        set_session_cookie(response, request, token, lifetime)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
        return response

    @routes.post("/admin/logout")
    @page
    def logout(request: Request, form: dict[str, str]) -> Response:
        session = _signed_in(request)
        check_csrf(form, session)
        sign_out(request, session)
        response = RedirectResponse("/admin/login", status_code=303, headers={"Cache-Control": "no-store"})
        clear_session_cookie(response, request)
        return response

    # ------------------------------------------------------------------ overview and details

    @routes.get("/admin")
    @page
    def overview(request: Request) -> Response:
        from bridge.federation_graph import federation_graph

        from .graph_svg import render_federation_svg

        session = _admin(request)
        ca = request.app.state.ca
        graph = federation_graph(ca)  # the counts come from the graph drawn: one read of the store
        members = graph.members()
        counts = {status: sum(1 for n in members if n.status == status) for status in ("active", "suspended", "pending")}
        expiring = sum(1 for e in graph.edges if e.kind == "cross" and e.status == "expiring")
        waiting = governance.proposals(ca.store, "pending", actor=session.actor)
        return render(request, "overview.html", session=session, counts=counts, members=len(members),
                      proposals=len(waiting), expiring=expiring, days=f"{ca.settings.expiry_warning_days:g}",
                      graph=render_federation_svg(graph, lang=i18n.language(request)))

    @routes.get("/admin/details")
    @page
    def details(request: Request) -> Response:
        session = _admin(request)
        kind = request.query_params.get("kind", "")[:32]
        ident = request.query_params.get("id", "")[:200]
        found = views.detail(request.app.state.ca, kind, ident) if ident else None
        return render(request, "details.html", 200 if found else 404, session=session, found=found)

    # ------------------------------------------------------------------ work queues

    @routes.get("/admin/queues")
    @page
    def queues(request: Request) -> Response:
        session = _admin(request)
        ca = request.app.state.ca
        pending = [ca.issuer(r.id) for r in ca.store.list_enrollments() if r.status == "pending"]
        findings = views.enrollment_findings(ca, pending)
        waiting = governance.proposals(ca.store, "pending", actor=session.actor)
        days = _days(request.query_params.get("days"), ca.settings.expiry_warning_days)
        return render(request, "queues.html", session=session, pending=pending, findings=findings, proposals=waiting,
                      expiring=ca.expiring(days), days=f"{days:g}")

    @routes.post("/admin/enrollments/{enrollment_id}/approve")
    @page
    def approve(request: Request, enrollment_id: str, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        _perform(request, session, "approve", {"enrollment_id": _enrollment_id(enrollment_id)}, "/admin/queues")
        raise AssertionError("unreachable")  # pragma: no cover

    @routes.post("/admin/enrollments/{enrollment_id}/reject")
    @page
    def reject(request: Request, enrollment_id: str, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        # Rejecting changes no trust: no two-person control, as POST /v1/issuers/{id}/reject.
        request.app.state.ca.reject(_enrollment_id(enrollment_id), reason=form.get("reason", "")[:500], actor=session.actor)
        raise Redirect("/admin/queues?done=reject")

    @routes.post("/admin/proposals/{proposal_id}/confirm")
    @page
    def confirm(request: Request, proposal_id: str, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        if not _PROPOSAL_ID.match(proposal_id):
            raise ConsoleError(404, "not_found", "error.not_found")
        governance.confirm(request.app.state.ca, proposal_id, actor=session.actor)
        request.app.state.verification.invalidate()
        raise Redirect("/admin/queues?done=confirm")

    @routes.post("/admin/proposals/{proposal_id}/cancel")
    @page
    def cancel(request: Request, proposal_id: str, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        if not _PROPOSAL_ID.match(proposal_id):
            raise ConsoleError(404, "not_found", "error.not_found")
        governance.cancel(request.app.state.ca.store, proposal_id, actor=session.actor, reason=form.get("reason", "")[:500])
        raise Redirect("/admin/queues?done=cancel")

    # ------------------------------------------------------------------ members

    @routes.get("/admin/members")
    @page
    def members(request: Request) -> Response:
        session = _admin(request)
        records = sorted(request.app.state.ca.store.list_enrollments(), key=lambda r: (r.member.lower(), r.id))
        return render(request, "members.html", session=session, members=records)

    @routes.get("/admin/members/{enrollment_id}")
    @page
    def member(request: Request, enrollment_id: str) -> Response:
        session = _admin(request)
        ca = request.app.state.ca
        view = ca.issuer(_enrollment_id(enrollment_id))
        from cryptography import x509

        root = views.certificate_facts(x509.load_pem_x509_certificate(view["root_certificate"].encode()))
        # The member's terms (what its cross-certificates carry) beside its root's own facts.
        root.update(mappings=view["policy_mappings"], permitted=view["permitted_subtrees"],
                    excluded=view["excluded_subtrees"], path_length=view["path_length"])
        crosses = [{**c, "facts": views.certificate_facts(x509.load_pem_x509_certificate(c["certificate"].encode()))}
                   for c in view["cross_certificates"]]
        mappings = "\n".join(f"{m['bridge_policy']} {m['member_policy']}" for m in view["policy_mappings"])
        return render(request, "member.html", session=session, member=view, root=root, crosses=crosses,
                      mappings_text=mappings, reasons=REVOCATION_REASONS)

    def _lifecycle(action: str):
        def act(request: Request, enrollment_id: str, form: dict[str, str]) -> Response:
            session = _admin_form(request, form)
            ident = _enrollment_id(enrollment_id)
            _perform(request, session, action, {"enrollment_id": ident, "reason": form.get("reason", "")[:500]},
                     f"/admin/members/{ident}")
            raise AssertionError("unreachable")  # pragma: no cover

        act.__name__ = f"member_{action}"
        return page(act)

    for action in ("suspend", "reinstate", "renew", "withdraw"):
        routes.add_api_route(f"/admin/members/{{enrollment_id}}/{action}", _lifecycle(action), methods=["POST"])

    @routes.post("/admin/members/{enrollment_id}/mappings")
    @page
    def change_mappings(request: Request, enrollment_id: str, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        ident = _enrollment_id(enrollment_id)
        mappings = []
        for line in form.get("mappings", "").splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ConsoleError(400, "invalid_request", "error.bad_input", line[:200])
            mappings.append({"bridge_policy": parts[0], "member_policy": parts[1]})
        _perform(request, session, "change_terms",
                 {"enrollment_id": ident, "policy_mappings": mappings, "reason": form.get("reason", "")[:500]},
                 f"/admin/members/{ident}")
        raise AssertionError("unreachable")  # pragma: no cover

    @routes.post("/admin/cross-certificates/{serial}/revoke")
    @page
    def revoke(request: Request, serial: str, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        if not _SERIAL.match(serial):
            raise ConsoleError(404, "not_found", "error.not_found")
        reason = form.get("reason", "unspecified")
        back = form.get("back", "")
        back = back if _ID.match(back) else ""
        _perform(request, session, "revoke", {"serial": serial, "reason": reason},
                 f"/admin/members/{back}" if back else "/admin/members")
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ blacklist

    @routes.get("/admin/blacklist")
    @page
    def blacklist_page(request: Request) -> Response:
        session = _admin(request)
        ca = request.app.state.ca
        entries = ca.blacklist_entries()
        return render(request, "blacklist.html", session=session, entries=entries,
                      bites=views.blacklist_bites(ca, entries), kinds=BLACKLIST_KINDS)

    @routes.post("/admin/blacklist")
    @page
    def blacklist_add(request: Request, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        kind = form.get("kind", "")
        params: dict = {"kind": kind, "reason": form.get("reason", "").strip()[:200],
                        "public_note": form.get("public_note", "")[:2000], "internal_note": form.get("internal_note", "")[:4000]}
        certificate = form.get("certificate", "").strip()
        value = form.get("value", "").strip()
        if certificate:
            params["certificate"] = certificate
        elif kind == "issuer_serial" and "|" in value:
            issuer, _, serial = value.rpartition("|")
            params["value"] = {"issuer": issuer.strip(), "serial": serial.strip()}
        elif kind == "subject_identity" and "=" in value:
            oid, _, text = value.partition("=")
            params["value"] = {"oid": oid.strip(), "value": text.strip()}
        else:
            params["value"] = value or None
        if not params["reason"]:
            raise ConsoleError(400, "invalid_request", "error.bad_input", "reason")
        _perform(request, session, "blacklist_add", params, "/admin/blacklist")
        raise AssertionError("unreachable")  # pragma: no cover

    @routes.post("/admin/blacklist/{entry_id}/remove")
    @page
    def blacklist_remove(request: Request, entry_id: str, form: dict[str, str]) -> Response:
        session = _admin_form(request, form)
        if not _PROPOSAL_ID.match(entry_id):
            raise ConsoleError(404, "not_found", "error.not_found")
        _perform(request, session, "blacklist_remove", {"entry_id": entry_id, "reason": form.get("reason", "")[:500]},
                 "/admin/blacklist")
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ audit

    @routes.get("/admin/audit")
    @page
    def audit(request: Request) -> Response:
        session = _admin(request)
        ca = request.app.state.ca
        from bridge import checkpoints
        from bridge.errors import translated

        from ..routes_governance import _since, audit_view

        query = request.query_params
        action = (query.get("action") or "").strip()[:64] or None
        actor = (query.get("actor") or "").strip()[:200] or None
        since_text = (query.get("since") or "").strip()[:40] or None
        try:
            after = max(0, min(int(query.get("after", "0")), 2**62))
        except ValueError:
            raise ConsoleError(400, "invalid_request", "error.bad_input", "after") from None
        limit = 100
        with translated():
            rows = ca.store.audit_page(action=action, actor=actor, since=_since(since_text), after_seq=after, limit=limit + 1)
            latest = ca.store.audit_checkpoints(1)
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [audit_view(r) for r in rows]
        next_query = None
        if more:
            next_query = "&".join(f"{k}={quote(v)}" for k, v in
                                  (("action", action), ("actor", actor), ("since", since_text), ("after", str(rows[-1].seq)))
                                  if v)
        return render(request, "audit.html", session=session, entries=entries, integrity=ca.verify_audit(),
                      checkpoint=checkpoints.view(latest[-1]) if latest else None, next_query=next_query,
                      action=action or "", actor=actor or "", since=since_text or "")

    # ------------------------------------------------------------------ verification (platform or admin)

    @routes.get("/verify")
    @page
    def verify_page(request: Request) -> Response:
        session = _signed_in(request)
        return render(request, "verify.html", session=session, result=None)

    @routes.post("/verify")
    @page
    def verify(request: Request, form: dict[str, str]) -> Response:
        session = _signed_in(request)
        check_csrf(form, session)
        service = request.app.state.verification
        data = _uploaded(form, "file_b64") or form.get("input", "").encode("utf-8")
        if not data.strip():
            raise ConsoleError(400, "invalid_request", "error.bad_input", i18n.translator(i18n.language(request))("verify.nothing"))
        content = _uploaded(form, "content_b64") or (form.get("content", "").encode("utf-8") or None)
        certificates, cms = _sniff(data)
        if cms is None:
            result = service.verify_chain(certificates[0], intermediates=certificates[1:])
            shown = {"kind": "chain", "chain": result}
        else:
            result = service.verify_cms(cms, content=content)
            shown = {"kind": "signature", "signature": result, "chain": result.get("chain")}
        receipt = _receipt(request, certificates, cms, content, result) if form.get("receipt") else None
        return render(request, "verify.html", session=session, result=result, shown=shown, receipt=receipt)

    return routes


def _receipt(request: Request, certificates: list[str], cms: bytes | None, content: bytes | None, result: dict) -> str:
    """The signed receipt (base64 CMS) of this verification, as POST /v1/verify/* with receipt true gives it."""
    from ..routes_evidence import with_receipt
    from ..schemas import VerifyChainRequest, VerifySignatureRequest

    if cms is None:
        body = VerifyChainRequest.model_validate({"certificate": certificates[0], "intermediates": certificates[1:],
                                                  "receipt": True})
        return with_receipt(request.app, "chain", body, result)["receipt"]
    signature = VerifySignatureRequest.model_validate({
        "cms": base64.b64encode(cms).decode(), "receipt": True,
        "content": base64.b64encode(content).decode() if content is not None else None})
    return with_receipt(request.app, "signature", signature, result)["receipt"]


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_PEM_CMS = re.compile(rb"-----BEGIN (?:PKCS7|CMS)-----(.+?)-----END (?:PKCS7|CMS)-----", re.S)


def _uploaded(form: dict[str, str], field: str) -> bytes | None:
    """A file the page's script read into a base64 field."""
    text = form.get(field, "")
    if not text:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ConsoleError(400, "invalid_base64", "error.bad_input", field) from None


def _sniff(data: bytes) -> tuple[list[str], bytes | None]:
    """([PEM, ...], None) for certificates (PEM or DER, the leaf first), else ([], the CMS's DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    found = _PEM_CERT.findall(data)
    if found:
        return [block.decode("ascii", "replace") for block in found], None
    cms = _PEM_CMS.search(data)
    if cms:
        try:
            return [], base64.b64decode(b"".join(cms.group(1).split()), validate=True)
        except (binascii.Error, ValueError):
            raise ConsoleError(400, "invalid_base64", "error.bad_input", "PEM") from None
    # DER is taken as it came: its last byte may be a whitespace byte (a
    # signature's), which stripping would cut off.
    der = data
    if der[:1] != b"\x30":  # not DER: base64 text of DER
        try:
            der = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ConsoleError(400, "malformed_input", "error.bad_input", "not PEM, DER or base64") from None
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return [], der
    return [certificate.public_bytes(serialization.Encoding.PEM).decode()], None
