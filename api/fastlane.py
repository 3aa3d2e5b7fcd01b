"""A fast lane for POST /v1/verify/chain, the service's hot path.

FastAPI's request machinery (dependency solving, body handling) costs about
three times what answering a known question costs. This ASGI middleware
answers the request itself when, and only when, the answer is certain to be
the one the FastAPI route gives: the token is known for the current epoch
and its role may verify, the body is exactly ``application/json`` and
validates against the route's own model, and ``VerificationService.quick_chain``
has the answer (a cached one, or a new leaf under a known CA chain with
nothing to fetch). The response is rendered by the same JSONResponse class.
Anything else — an error of any kind, a question that needs a search, the
database or a fetch — is handed to the FastAPI app unchanged, with the body
replayed, so errors, documentation and every other behaviour stay FastAPI's.
It sits inside the body-limit middleware, so the limit applies first.
"""
from __future__ import annotations

from fastapi.responses import JSONResponse

from .inputs import chain_options
from .schemas import VerifyChainRequest

PATH = "/v1/verify/chain"
ROLES = frozenset({"platform", "admin"})


class VerifyChainFastLane:
    def __init__(self, app, fastapi_app) -> None:
        self.app = app
        self.state = fastapi_app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away, or the body limit stopped the read:
                # let the application see exactly that.
                return await self.app(scope, _replay(chunks, message, receive), send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        answer = self._answer(scope, body)
        if answer is None:
            return await self.app(scope, _replay(chunks, None, receive), send)
        await JSONResponse(answer)(scope, receive, send)

    def _answer(self, scope, body: bytes) -> dict | None:
        authorization = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return None  # twice: the route's reading decides
                authorization = value
            elif name == b"content-type":
                if content_type is not None:
                    return None
                content_type = value
            elif name == b"transfer-encoding":
                return None
        if content_type != b"application/json" or authorization is None or not body:
            return None
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        from bridge.service import hash_token

        service = self.state.verification
        epoch = service.known_epoch()
        if epoch is None:
            return None
        principal = self.state.principals.cached(hash_token(token), epoch)
        if principal is None or principal[1] not in ROLES:
            return None
        try:
            request = VerifyChainRequest.model_validate_json(body)
            return service.quick_chain(request.certificate, **chain_options(request))
        except Exception:  # any refusal (a Problem included) is the FastAPI route's to word
            return None


def _replay(chunks: list[bytes], last: dict | None, receive):
    """A receive() that gives back what was read (then ``last``, a
    disconnect, if the read ended so), and after that the real receive()."""
    pending = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    if last is None:
        if pending:
            pending[-1]["more_body"] = False
        else:
            pending.append({"type": "http.request", "body": b"", "more_body": False})
    else:
        pending.append(last)

    async def replayed():
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
