"""The FastAPI app: `uvicorn aietl_pipelines.api.app:app` (or `make api`)."""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from aietl_pipelines import __version__
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.monitoring.http import RequestMetricsMiddleware, metrics_payload

logger = logging.getLogger(__name__)

#: Routers mounted by the app, in this order.
ROUTERS = ("vector_search", "drift_monitoring", "features")

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

    # request count/latency/status per route, 5xx included (aietl_pipelines.monitoring.http)
    app.add_middleware(RequestMetricsMiddleware)

    @app.exception_handler(AietlInputError)
    async def bad_input(request: Request, exc: AietlInputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "bad_input", "detail": str(exc)})

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__, "routers": mounted}

    @app.get("/metrics")
    def metrics() -> Response:
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    return app


app = create_app()
