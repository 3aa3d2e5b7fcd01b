"""Console sessions: an API token exchanged for a session cookie, and CSRF.

A session is itself a short-lived API token (bridge store: role, expiry,
hashed like every token) whose value lives only in the HttpOnly cookie, so
`bridgeca token revoke` and the revocation epoch end it as any token, and no
table is needed. Its ``token.create`` audit entry names the token that signed
in (actor ``console:admin:<id>``, an actor no API call writes, so an API
token created by an administrator is not mistaken for a session); console
actions are audited as that token (``admin:<id>``), so two sessions of one
administrator are one administrator to two-person control.

CSRF: the form token is a digest of the session token (synchronizer token
derived from a secret only the cookie holds); the sign-in form, before any
session, uses a random double-submit cookie.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import Response

SESSION_COOKIE = "bridgeca_session"
LOGIN_CSRF_COOKIE = "bridgeca_login_csrf"
# A working day; the session never outlives the token that signed in.
SESSION_LIFETIME = timedelta(hours=8)
CONSOLE_ROLES = ("admin", "platform")
# The session token's own role (bridge/tokens.py SESSION_ROLES): the API's
# routes refuse it, so a session cookie's value is no bearer token.
SESSION_ROLE_PREFIX = "session-"
# A sign-in form is small: refuse anything bigger before parsing it.
MAX_FORM_BYTES = 64 * 1024
# The actor of a session's token.create entry: "console:" + the signing-in token's actor.
SIGN_IN_ACTOR = "console:"


class ConsoleError(Exception):
    """Shown as a page (or problem+json to a client that does not want HTML):
    ``key`` names the message in the catalogue (api/console/i18n.py)."""

    def __init__(self, status: int, code: str, key: str, detail: str = "") -> None:
        super().__init__(detail or key)
        self.status = status
        self.code = code
        self.key = key
        self.detail = detail


@dataclass(frozen=True)
class Session:
    token_id: int  # the session's own token
    role: str
    actor: str  # the token that signed in, as the API audits it: "admin:3"
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def csrf_of(session_token: str) -> str:
    return hashlib.sha256(b"bridgeca console csrf\x00" + session_token.encode()).hexdigest()[:40]


def same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class SignerIndex:
    """Which token signed in each session (from the audit log's token.create
    entries, an unchangeable fact, so remembered), and whether that token is
    still in force (remembered per revocation epoch: a revocation bumps it)."""

    def __init__(self, size: int = 4096) -> None:
        self._signers: dict[int, str] = {}
        self._in_force: tuple[int, dict[int, float | None]] | None = None
        self._size = size

    def signer(self, ca, session_id: int) -> str | None:
        known = self._signers.get(session_id)
        if known is not None:
            return known
        from bridge.errors import translated

        after = 0
        with translated():
            while True:
                rows = ca.store.audit_page(action="token.create", after_seq=after, limit=500)
                for row in rows:
                    if json.loads(row.details).get("token_id") == session_id:
                        if len(self._signers) >= self._size:
                            self._signers.clear()
                        self._signers[session_id] = row.actor
                        return row.actor
                if len(rows) < 500:
                    return None
                after = int(rows[-1].seq)

    def in_force(self, ca, epoch: int, token_id: int) -> bool:
        if self._in_force is None or self._in_force[0] != epoch:
            from datetime import datetime

            tokens: dict[int, float | None] = {}
            for view in ca.tokens():
                if view["revoked_at"] is None:
                    expires = view["expires_at"]
                    tokens[view["id"]] = datetime.fromisoformat(expires).timestamp() if expires else None
            self._in_force = (epoch, tokens)
        if token_id not in self._in_force[1]:
            return False
        expires_at = self._in_force[1][token_id]
        return expires_at is None or time.time() < expires_at


def _signers(request: Request) -> SignerIndex:
    state = request.app.state
    index = getattr(state, "console_signers", None)
    if index is None:
        index = state.console_signers = SignerIndex()
    return index


def current_session(request: Request) -> Session | None:
    """The request's session, or None (no cookie, an unknown, revoked or
    expired session, or one whose signing-in token was revoked). Blocking:
    console handlers run in the threadpool."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    state = request.app.state
    principal = state.principals.lookup(request, token)  # the API's epoch-bound token cache
    if principal is None or not principal[1].startswith(SESSION_ROLE_PREFIX):
        return None
    session_id, role = principal[0], principal[1][len(SESSION_ROLE_PREFIX):]
    if role not in CONSOLE_ROLES:
        return None
    index = _signers(request)
    created_by = index.signer(state.ca, session_id)
    if created_by is None or not created_by.startswith(SIGN_IN_ACTOR + role + ":"):
        return None  # an API token pasted into the cookie is not a session
    actor = created_by[len(SIGN_IN_ACTOR):]
    signer_id = int(actor.split(":", 1)[1])
    if not index.in_force(state.ca, state.verification.current_epoch(), signer_id):
        return None
    return Session(session_id, role, actor, csrf_of(token))


def sign_in(request: Request, token: str) -> tuple[str, Session, int]:
    """A new session for an admin or platform ``token``: (session token,
    session, lifetime in seconds). Refused with ConsoleError otherwise."""
    ca = request.app.state.ca
    found = ca.principal_until(token.strip())
    if found is None:
        raise ConsoleError(401, "unauthorized", "error.bad_token")
    (token_id, role), expires_at = found
    if role not in CONSOLE_ROLES:
        raise ConsoleError(403, "forbidden", "error.role_not_allowed")
    lifetime = SESSION_LIFETIME.total_seconds()
    if expires_at is not None:
        lifetime = min(lifetime, expires_at - time.time())
    if lifetime < 1:
        raise ConsoleError(401, "unauthorized", "error.bad_token")
    actor = f"{role}:{token_id}"
    session_token = ca.create_token(SESSION_ROLE_PREFIX + role, actor=SIGN_IN_ACTOR + actor, expires_in=timedelta(seconds=int(lifetime)))
    session_id = ca.principal(session_token)[0]
    return session_token, Session(session_id, role, actor, csrf_of(session_token)), int(lifetime)


def sign_out(request: Request, session: Session) -> None:
    from bridge.errors import BridgeError

    try:
        request.app.state.ca.revoke_token(session.token_id, actor=session.actor)
    except BridgeError:
        pass  # revoked meanwhile (token revoke): signed out all the same
    request.app.state.verification.invalidate()


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="strict",
                        secure=secure(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure(request))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_login_csrf_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, value, max_age=3600, path="/admin/login", httponly=True, samesite="strict",
                        secure=secure(request))


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the console's forms; files
    are read by the page's script into a field), first value of each name."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise ConsoleError(415, "unsupported_media_type", "error.form_type")
    body = await request.body()
    if len(body) > max_bytes:
        raise ConsoleError(413, "body_too_large", "error.too_large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleError(400, "invalid_request", "error.bad_form") from None
    return {name: values[0] for name, values in parsed.items()}


def check_csrf(form: dict[str, str], session: Session) -> None:
    if not same(form.get("csrf"), session.csrf):
        raise ConsoleError(403, "csrf_failed", "error.csrf")
