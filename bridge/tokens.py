"""API tokens: made, looked up, listed and revoked; only their SHA-256 is stored.

A token is ``bca_`` and 256 random bits; its role (ROLES) decides which
routes it may call. Tokens need the database, not the bridge key, so every
operation takes a Store; the ``*_without_key`` forms open a home's database
for the CLI.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from .clock import now
from .errors import BridgeError, translated
from .roles import ROLES, SESSION_ROLES
from .store import Store

TOKEN_PREFIX = "bca_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_view(row) -> dict:
    """What may be shown of an API token: never the token, nor its hash."""
    at = now()
    return {
        "id": int(row.id),
        "role": row.role,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at is not None else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at is not None else None,
        "state": "revoked" if row.revoked_at is not None
        else "expired" if row.expires_at is not None and row.expires_at <= at else "active",
    }


def create(store: Store, role: str, actor: str, expires_in: timedelta | None) -> tuple[str, int, datetime | None]:
    """A new token of ``role``: (the token, shown once; its id; its expiry or None)."""
    if role not in ROLES and role not in SESSION_ROLES:
        raise BridgeError("invalid_role", f"role {role!r} is not one of {', '.join(ROLES)}", "malformed")
    if expires_in is not None and expires_in <= timedelta(0):
        raise BridgeError("invalid_expiry", "a token's lifetime must be positive", "malformed")
    expires_at = now() + expires_in if expires_in is not None else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with translated():
        token_id = store.add_token(actor=actor, role=role, token_hash=hash_token(token), expires_at=expires_at)
    return token, token_id, expires_at


def lookup(store: Store, token: str) -> tuple[tuple[int, str], float | None] | None:
    """((token id, role), expiry as a POSIX time or None for never), or None
    when the token is unknown, revoked or expired: callers that cache a
    token must stop trusting it at its expiry."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    with translated():
        row = store.find_token(hash_token(token))
    if row is None:
        return None
    return (row.id, row.role), (row.expires_at.timestamp() if row.expires_at is not None else None)


def views(store: Store) -> list[dict]:
    with translated():
        return [token_view(r) for r in store.list_tokens()]


def revoke(store: Store, token_id: int, actor: str) -> dict:
    """Revoke a token by id: it is refused from then on."""
    with translated():
        store.revoke_token(actor=actor, token_id=token_id)
        return next(token_view(r) for r in store.list_tokens() if r.id == token_id)


def create_token_without_key(home: Path | str, role: str, actor: str = "bridgeca", *, with_id: bool = False,
                             expires_in: timedelta | None = None):
    """``with_id``: return (token, token id), the id being what ``revoke_token_without_key`` takes."""
    from .home import store_of

    with store_of(home) as store:
        token, token_id, _ = create(store, role, actor, expires_in)
    return (token, token_id) if with_id else token


def revoke_token_without_key(home: Path | str, token_id: int, actor: str = "bridgeca") -> dict:
    from .home import store_of

    with store_of(home) as store:
        return revoke(store, token_id, actor)


def tokens_without_key(home: Path | str) -> list[dict]:
    from .home import store_of

    with store_of(home) as store:
        return views(store)
