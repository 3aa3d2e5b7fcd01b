"""Metrics, request ids and structured logs for the HTTP service.

One pure-ASGI middleware sits outside everything else (the body limit and
the rate limit included), so every response -- a 413 the body limit sends
itself, a 429, a problem+json -- carries an
``X-Request-ID``, is counted in ``/metrics`` and gets one access-log line.

Metrics use prometheus-client. With ``bridgeca serve --workers N`` each
worker is a process of its own; ``serve`` then gives them one fresh
directory (``PROMETHEUS_MULTIPROC_DIR``, made per serve and removed at exit)
and whichever worker answers ``/metrics`` sums every worker's files, so a
scrape sees the whole service, not the one worker it happened to reach.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import time
import traceback
import uuid
from typing import Any, Literal

from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel

from bridge.verification import VerificationService

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKERS_ENV = "BRIDGECA_WORKERS"
REQUEST_ID_HEADER = b"x-request-id"
# Long enough for a UUID, a W3C trace id or a proxy's own scheme; short and
# plain enough that an id copied into logs and headers can neither forge a
# log line nor bloat one.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}")
# Below the default buckets' 5 ms: a known chain is answered in a fraction of a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("bridgeca_request_id", default=None)
access_log = logging.getLogger("bridgeca.access")
log = logging.getLogger("bridgeca.api")


def sane_request_id(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _SANE_REQUEST_ID.fullmatch(text) else None


def _printable(text: str, limit: int = 1024) -> str:
    """Control characters escaped (a percent-decoded %0A in a path must not
    start a new line in a text log) and the length bounded."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return "".join(c if " " <= c != "\x7f" else f"\\x{ord(c):02x}" for c in text)


# ---------------------------------------------------------------------- metrics


class Metrics:
    """The service's metrics, in a registry of its own per app (tests build
    many apps in one process; the global registry would refuse the second)."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("bridgeca_http_requests", "HTTP requests answered, by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("bridgeca_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.verifications = Counter(
            "bridgeca_verifications", "Verifications answered, by kind (chain, signature), outcome and error code",
            ["kind", "valid", "code", "indication"], registry=r)
        # A hit is an answer without a path search or any I/O: the result
        # cache, or a new leaf under a CA chain that validated before
        # (VerificationService.quick_chain); a miss needed the full verify.
        self.verify_cache = Counter("bridgeca_verify_cache", "Chain verifications answered from what is cached (hit) or by a full verify (miss)",
                                    ["result"], registry=r)
        self.fetch_failures = Counter("bridgeca_revocation_fetch_failures", "CRL and OCSP fetches that failed, by kind and reason",
                                      ["kind", "reason"], registry=r)
        # Set by the worker that answers the scrape, just before it renders:
        # the most recent value is the current one.
        self.epoch = Gauge("bridgeca_revocation_epoch", "The revocation epoch this worker last read",
                           registry=r, multiprocess_mode="mostrecent")
        self.crl_age = Gauge("bridgeca_crl_age_seconds", "Seconds since the thisUpdate of the bridge's current CRL",
                             registry=r, multiprocess_mode="mostrecent")
        self.crl_next_update = Gauge("bridgeca_crl_next_update_seconds",
                                     "Seconds until the nextUpdate of the bridge's current CRL (negative: past it)",
                                     registry=r, multiprocess_mode="mostrecent")
        self.workers = Gauge("bridgeca_workers", "Worker processes serving (each live worker counts 1)",
                             registry=r, multiprocess_mode="livesum")
        self.workers_configured = Gauge("bridgeca_workers_configured", "Worker processes bridgeca serve was asked for",
                                        registry=r, multiprocess_mode="max")
        self.workers.set(1)
        self.workers_configured.set(_configured_workers())
        # Both series exist from the start: a ratio needs both.
        self._cache_children = {True: self.verify_cache.labels("hit"), False: self.verify_cache.labels("miss")}
        self._children: dict[tuple[str, str, str, str], Any] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def verified(self, kind: str, result: dict, *, cached: bool | None = None) -> None:
        error = result.get("error") or {}
        labels = (kind, "true" if result.get("valid") else "false", error.get("code") or "none",
                  result.get("indication") or "none")
        # A labelled child looked up by prometheus-client costs more than the
        # rest of counting a cached answer; the label values are few (kinds,
        # error codes, indications), the children are kept.
        counter = self._children.get(labels)
        if counter is None:
            counter = self._children[labels] = self.verifications.labels(*labels)
        counter.inc()
        if cached is not None:
            self._cache_children[cached].inc()

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request, by route template, method and status."""
        children = self._request_children.get((route, method, status))
        if children is None:  # bounded: templates, methods and statuses are few
            children = self._request_children[(route, method, status)] = (
                self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
        children[0].inc()
        children[1].observe(seconds)

    def fetch_failed(self, kind: str, connection_failed: bool) -> None:
        self.fetch_failures.labels(kind, "connection" if connection_failed else "response").inc()

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected, path=self.multiprocess_dir)
        return generate_latest(collected)


def _configured_workers() -> int:
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        return 1


def scrape(app_state) -> tuple[bytes, str]:
    """The exposition for GET /metrics, with the scrape-time gauges refreshed.
    Blocking (a database read, at most a CRL renewal): run it in a thread."""
    from bridge.readiness import crl_times

    metrics: Metrics = app_state.metrics
    try:
        metrics.epoch.set(app_state.verification.current_epoch())
    except Exception as exc:  # the database is down: the scrape still answers, readiness says why
        log.warning("metrics: cannot read the revocation epoch: %s", type(exc).__name__)
    try:
        this_update, next_update = crl_times(app_state.ca)
        now = dt.datetime.now(dt.timezone.utc)
        metrics.crl_age.set((now - this_update).total_seconds())
        metrics.crl_next_update.set((next_update - now).total_seconds() if next_update is not None else float("nan"))
    except Exception as exc:
        log.warning("metrics: cannot read the bridge CRL: %s", type(exc).__name__)
    return metrics.render(), CONTENT_TYPE_LATEST


class MeasuredVerification(VerificationService):
    """VerificationService that counts each answer once, by outcome (the
    routes and the console share the app's one instance)."""

    def __init__(self, ca, metrics: Metrics, source=None) -> None:
        super().__init__(ca, source)
        self._metrics = metrics

    def quick_chain(self, certificate: str, **options) -> dict | None:
        result = super().quick_chain(certificate, **options)
        if result is not None:  # None: the caller goes on to verify_chain, counted there
            self._metrics.verified("chain", result, cached=True)
        return result

    def verify_chain(self, certificate: str, **options) -> dict:
        result = super().verify_chain(certificate, **options)
        self._metrics.verified("chain", result, cached=False)
        return result

    def verify_cms(self, cms: bytes, **options) -> dict:
        result = super().verify_cms(cms, **options)
        self._metrics.verified("signature", result)
        return result

    def verify_raw(self, certificate: str, signature: bytes, data: bytes, **options) -> dict:
        result = super().verify_raw(certificate, signature, data, **options)
        self._metrics.verified("signature", result)
        return result


def measured_verification(ca, metrics: Metrics) -> MeasuredVerification:
    from bridge.verification import revocation_source_for

    source = revocation_source_for(ca.settings)
    source.on_fetch_failure = metrics.fetch_failed
    return MeasuredVerification(ca, metrics, source)


# ---------------------------------------------------------------------- readiness


class CheckView(BaseModel):
    status: Literal["ok", "failed"]
    detail: str


class ReadyView(BaseModel):
    status: Literal["ready"]
    checks: dict[str, CheckView]

    model_config = {"json_schema_extra": {"examples": [{"status": "ready", "checks": {
        "database": {"status": "ok", "detail": "sqlite:////srv/bridge/bridge.db answers (epoch 7)"},
        "signer": {"status": "ok", "detail": "signs (ec-p256)"},
        "crl": {"status": "ok", "detail": "nextUpdate 2026-11-24T10:00:00Z, in 81234 s"},
        "epoch": {"status": "ok", "detail": "epoch 7, read within the last 0.25 s"}}}]}}


def ready_response(app_state):
    """200 with every check, or 503 problem+json ``not_ready`` naming the
    failed ones. Blocking: the route runs it in the threadpool."""
    from bridge.readiness import readiness

    from .problems import problem_response

    state = readiness(app_state.ca, app_state.verification)
    headers = {"Cache-Control": "no-store"}
    body = state.to_dict()
    if state.ready:
        return JSONResponse(body, headers=headers)
    failed = [c.name for c in state.failed]
    detail = "; ".join(f"{c.name}: {c.detail}" for c in state.failed)
    log.warning("not ready: %s", detail)
    return problem_response(503, "not_ready", f"not ready: {detail}", headers=headers, failed=failed, checks=body["checks"])


# ---------------------------------------------------------------------- the middleware


class ObservabilityMiddleware:
    """Request id, request metrics and the access log, for every response."""

    def __init__(self, app, fastapi_app, metrics: Metrics, access_log_enabled: bool = True) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.metrics = metrics
        self.access_log_enabled = access_log_enabled
        self._templates: dict[str, str] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == REQUEST_ID_HEADER:
                incoming = value
                break
        request_id = sane_request_id(incoming) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500
        response_started = False

        async def send_with_id(message):
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here rather than by Starlette's outermost error
            # middleware, which sits outside this one: the 500 keeps its
            # request id, and the traceback goes to the log with it, never
            # to the client.
            log.exception("unexpected error")
            if response_started:
                raise
            status = 500
            await _problem_500(send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = self._route(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.answered(route, method, status, elapsed)
            if self.access_log_enabled:
                path = _printable(scope.get("path", ""))
                access_log.info("%s %s %d", method, path, status, extra={
                    "method": method, "path": path, "status": status, "duration_ms": round(elapsed * 1000, 3)})
            request_id_var.reset(token)

    def _route(self, scope) -> str:
        """The route's template (``/v1/issuers/{issuer_id}``), never the raw
        path: label values must stay few whatever clients send."""
        route = scope.get("route")
        if route is not None:
            return getattr(route, "path", None) or "unmatched"
        # Not routed: the body limit or the rate limit refused. A path
        # matched once is remembered (only matched ones, so clients cannot grow the table
        # beyond the routes' real paths, and it is bounded all the same).
        path = scope.get("path", "")
        template = self._templates.get(path)
        if template is None:
            template = _template(self.fastapi_app.router.routes, scope)
            if template is None:
                return "unmatched"
            if len(self._templates) >= 1024:
                self._templates.clear()
            self._templates[path] = template
        return template


def _template(routes, scope) -> str | None:
    """The path template of the route matching ``scope``, looked for in
    included routers' own routes too (FastAPI keeps them behind their router)."""
    from starlette.routing import Match

    for candidate in routes:
        if candidate.matches(scope)[0] != Match.NONE:
            inner = getattr(candidate, "original_router", None)
            return _template(inner.routes, scope) if inner is not None else getattr(candidate, "path", None)
    return None


async def _problem_500(send) -> None:
    body = json.dumps({"type": "about:blank", "title": "Internal Server Error", "status": 500, "code": "internal_error",
                       "detail": "internal error; see the server log"}).encode()
    await send({"type": "http.response.start", "status": 500, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------- logs

# Attributes every LogRecord has; anything else came in through ``extra``.
_ACCESS_FIELDS = ("method", "path", "status", "duration_ms")


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record logged while it is
    handled (threadpool work included: the context goes with it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id,
    and for access lines method, path, status, duration_ms."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for field in _ACCESS_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # The record's attributes, where Logger.makeRecord puts a call's ``extra``.
        fields = vars(record)
        if "request_id" not in fields:
            fields["request_id"] = request_id_var.get()
        if fields["request_id"] is None:
            fields["request_id"] = "-"
        duration = getattr(record, "duration_ms", None)
        line = super().format(record)
        return f"{line} {duration:.3f}ms" if duration is not None and record.name == access_log.name else line


LOG_FORMATS = ("json", "text")


def logging_config(log_format: str = "json") -> dict:
    """A logging.config.dictConfig for uvicorn's ``log_config``: bridgeca's
    and uvicorn's loggers through one handler on stderr, in ``log_format``.
    uvicorn's own access log stays off; the middleware writes the access
    lines, with the request id and the duration."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}")
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": log_format, "filters": ["request_id"]}
    quiet = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "api.observability.RequestIdFilter"}},
        "formatters": {"json": {"()": "api.observability.JsonFormatter"}, "text": {"()": "api.observability.TextFormatter"}},
        "handlers": {"default": handler},
        "loggers": {"uvicorn": quiet, "uvicorn.error": {"level": "INFO"}, "uvicorn.access": quiet, "bridgeca": quiet},
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


# ---------------------------------------------------------------------- serve with N workers


def start_multiprocess_metrics(workers: int) -> str | None:
    """Before the workers are spawned: a fresh directory for their metric
    files (a reused one would add a previous run's counts, or a recycled
    pid's), announced through the environment the workers inherit."""
    os.environ[WORKERS_ENV] = str(workers)
    if workers <= 1:
        os.environ.pop(MULTIPROC_ENV, None)
        return None
    import tempfile

    path = tempfile.mkdtemp(prefix="bridgeca-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


def worker_exited(pid: int) -> None:
    """A worker died: its live gauges (the worker count) stop counting. Its
    counters stay, so totals never go backwards."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)


def stop_multiprocess_metrics(path: str | None) -> None:
    if path:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
