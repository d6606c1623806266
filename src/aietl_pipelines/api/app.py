"""The FastAPI app: `uvicorn aietl_pipelines.api.app:app` (or `make api`)."""

from __future__ import annotations

import importlib
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from aietl_pipelines import __version__
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.monitoring import REGISTRY

logger = logging.getLogger(__name__)

#: Routers mounted by the app, in this order.
ROUTERS = ("vector_search", "drift_monitoring", "features")

REQUESTS = Counter(
    "aietl_api_requests_total", "API requests", ["method", "path", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "aietl_api_request_duration_seconds", "API request latency", ["method", "path"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
)


def create_app() -> FastAPI:
    """Build the app with every available router, /health and /metrics."""
    app = FastAPI(title="aietl-pipelines", version=__version__)
    mounted = []
    for name in ROUTERS:
        try:
            module = importlib.import_module(f"aietl_pipelines.api.routers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"aietl_pipelines.api.routers.{name}":
                raise
            logger.warning("API router '%s' is not available", name)
            continue
        app.include_router(module.router)
        mounted.append(name)
    logger.info("API routers mounted: %s", ", ".join(mounted))
    app.state.routers = mounted

    @app.middleware("http")
    async def observe(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        LATENCY.labels(request.method, path).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(AietlInputError)
    async def bad_input(request: Request, exc: AietlInputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "bad_input", "detail": str(exc)})

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "routers": mounted}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app()
