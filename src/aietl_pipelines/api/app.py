"""The FastAPI app: `uvicorn aietl_pipelines.api.app:app` (or `make api`). See docs/api.md.

Adding a router: a module in `api/routers/` with a ``router`` and its name in `ROUTERS`. Adding a middleware:
one line in `MIDDLEWARES` (listed from the outermost in).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import Response

from aietl_pipelines import __version__
from aietl_pipelines.api.auth import require_read
from aietl_pipelines.api.config import ApiSettings
from aietl_pipelines.api.errors import READ_ERRORS, install_error_handlers
from aietl_pipelines.api.limits import BodySizeLimitMiddleware
from aietl_pipelines.api.state import ServiceRegistry
from aietl_pipelines.monitoring.http import RequestMetricsMiddleware, metrics_payload

logger = logging.getLogger(__name__)

#: Routers mounted by the app, in this order.
ROUTERS = ("vector_search", "drift_monitoring", "features")


def MIDDLEWARES(settings: ApiSettings) -> list[tuple[type, dict[str, Any]]]:  # noqa: N802 - a table
    """(class, options) of each ASGI middleware, outermost first."""
    return [
        # request count/latency/status per route, 413s and 5xx included (aietl_pipelines.monitoring.http)
        (RequestMetricsMiddleware, {}),
        # 413 before a byte of an oversize body is read
        (BodySizeLimitMiddleware, {"max_body_bytes": settings.max_body_bytes,
                                   "max_drift_body_bytes": settings.max_drift_body_bytes}),
    ]


DESCRIPTION = """
The platform guide's HTTP API: vector search (dedupe), drift monitoring and the Feast feature store.

**Keys.** Send `X-API-Key: <key>` or `Authorization: Bearer <key>`. Keys in `AIETL_API_KEYS` may read and
write; keys in `AIETL_API_READ_KEYS` may only read (writes answer 403). `/health` is open;
`AIETL_API_AUTH=disabled` opens everything (local development only).

**Errors.** Every error has the body `{"error": code, "detail": one line saying what to fix}`: 401/403 for keys,
413 for a body above the limit, 422 for anything invalid in the request (bad JSON, wrong type, unknown
collection or feature, path outside the allowed data roots, ...).

**Time stamps.** ISO 8601; a time stamp without a zone (`2025-01-01T00:00:00`) is taken as UTC.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Services are built once per process (lazily on first use) and shared by every request."""
    settings: ApiSettings = app.state.settings
    if settings.auth_required and not (settings.full_keys or settings.read_keys):
        logger.warning("No API keys configured: every route but /health answers 401. Set AIETL_API_KEYS "
                       "(or AIETL_API_AUTH=disabled for local development).")
    if not settings.auth_required:
        logger.warning("AIETL_API_AUTH=disabled: the API is open to anyone who can reach it.")
    if settings.warm_up:  # build the services and load the model in the background; /health answers at once
        threading.Thread(target=app.state.services.warm_up, args=(settings.warm_up,), name="aietl-api-warm-up",
                         daemon=True).start()
    yield


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the app with every available router, /health and /metrics."""
    settings = settings or ApiSettings.from_env()
    app = FastAPI(title="aietl-pipelines", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.services = ServiceRegistry(settings)
    install_error_handlers(app)
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
    for middleware, options in reversed(MIDDLEWARES(settings)):  # add_middleware wraps: innermost first
        app.add_middleware(middleware, **options)

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness: always open, no key needed."""
        return {"status": "ok", "version": __version__, "routers": mounted}

    @app.get("/metrics", tags=["meta"], dependencies=[Depends(require_read)], responses=READ_ERRORS,
             response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics (text format); scrape with `authorization: {credentials: <key>}`."""
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    return app


app = create_app()
