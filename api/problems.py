"""RFC 9457 problem details with a stable ``code`` member.

Every error the service returns goes through here: domain errors
(BridgeError, whose kind becomes the status here and nowhere else; pki
InputError), request validation errors and unexpected
failures, so a client never sees a traceback or an HTML page.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bridge.errors import BridgeError

log = logging.getLogger("bridgeca.api")

PROBLEM = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


# The one mapping of a domain error's kind (bridge/errors.py) to an HTTP
# status: INTERFACE.md's 400 for input that cannot be read, 422 for input
# refused on its merits.
STATUS_OF_KIND = {
    "malformed": 400,
    "invalid": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}


class Problem(Exception):
    def __init__(self, status: int, code: str, detail: str, **extra) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_response(status: int, code: str, detail: str, *, headers: dict | None = None, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "code": code, "detail": detail}
    body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


def outcome_status(result: dict, done: int = 200) -> int:
    """The status of a route that called governance.perform: 202 for a
    proposal waiting for a second administrator, else ``done``."""
    from bridge.governance import Proposed

    return 202 if isinstance(result, Proposed) else done


def bridge_status(exc: BridgeError) -> int:
    """The HTTP status of a BridgeError; the bridge's own faults are logged."""
    status = STATUS_OF_KIND[exc.kind]
    if status == 500:
        log.error("bridge error %s: %s", exc.code, exc.message)
    return status


def install(app: FastAPI) -> None:
    from pki.errors import InputError

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem):
        return problem_response(exc.status, exc.code, exc.detail, **exc.extra)

    @app.exception_handler(BridgeError)
    async def _bridge(_request: Request, exc: BridgeError):
        return problem_response(bridge_status(exc), exc.code, exc.message)

    from .limits import BodyTooLarge

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, _exc: BodyTooLarge):
        return problem_response(413, "body_too_large", "request body too large")

    @app.exception_handler(InputError)
    async def _input(_request: Request, exc: InputError):
        return problem_response(400, "malformed_input", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # loc is ("body", offset): say what it is
                errors.append({"field": "body", "message": f"not valid JSON ({err.get('ctx', {}).get('error', 'decode error')})"})
                continue
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            errors.append({"field": loc or "body", "message": err.get("msg", "invalid")})
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return problem_response(400, "invalid_request", f"{first['field']}: {first['message']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        # Keep the exception's headers: Allow on a 405, for one.
        return problem_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):  # pragma: no cover - last resort
        log.exception("unexpected error")
        return problem_response(500, "internal_error", "internal error; see the server log")
