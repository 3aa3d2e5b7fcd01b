"""The operator's routes: GET /v1/health (liveness), /v1/ready (readiness), /metrics."""
# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations as objects.
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from .observability import ReadyView, ready_response, scrape
from .schemas import Health, problem_responses

router = APIRouter(tags=["service"])


@router.get("/v1/health", response_model=Health, summary="Liveness")
async def health() -> JSONResponse:
    # On the event loop, not in the threadpool: a pool full of slow
    # verifications (a CRL server that hangs) must not make a live
    # worker look dead to whoever probes it.
    return JSONResponse({"status": "ok"})


@router.get("/v1/ready", response_model=ReadyView, summary="Readiness: database, signer, CRL, epoch poll",
            responses=problem_responses(503))
def ready(request: Request) -> JSONResponse:
    return ready_response(request.app.state)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (all workers)",
            responses={200: {"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(request: Request) -> Response:
    body, media_type = scrape(request.app.state)
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})
