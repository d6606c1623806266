"""HTTP request metrics for the API, and the `/metrics` response.

`RequestMetricsMiddleware` is a plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``): it sees the
status the app sends, and a request whose handler raised is counted as a 500 before the exception goes on to
Starlette's error handling, so an error-rate alert can fire. The route label is the route's template
(``/api/v1/vector-search/search``), never the raw path, and ``unmatched`` for 404s of unknown paths, so the
label set stays bounded whatever URLs clients send.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aietl_pipelines.monitoring.metrics import REGISTRY, observe_request

UNMATCHED = "unmatched"


class RequestMetricsMiddleware:
    """Count every HTTP request by method, route template and status (5xx included); observe its latency."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": None}

        async def send_and_record_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        except BaseException:
            if status["code"] is None:
                status["code"] = 500  # the handler raised before answering: Starlette answers 500
            raise
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            observe_request(scope.get("method", "GET"), route, status["code"] or 500,
                            time.perf_counter() - start)


def metrics_payload() -> tuple[bytes, str]:
    """The registry in Prometheus's text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
