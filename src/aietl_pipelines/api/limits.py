"""Request-body size limit, enforced before the body is read (a pure ASGI middleware).

A request whose ``Content-Length`` is above the limit gets 413 at once, without reading a byte of the body;
a body without ``Content-Length`` (chunked) is read up to the limit and refused as soon as it passes it.
Drift detection has its own, larger limit (inline rows); every other route has ``max_body_bytes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aietl_pipelines.api.errors import error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DRIFT_DETECT_PATH = "/api/v1/drift-monitoring/detect"


class BodySizeLimitMiddleware:
    """413 for bodies above the limit of their route (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_drift_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_drift_body_bytes = max_drift_body_bytes

    def limit_for(self, path: str) -> int:
        return self.max_drift_body_bytes if path.rstrip("/") == DRIFT_DETECT_PATH else self.max_body_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(413, f"request body is larger than {limit:,} bytes: send less data per "
                                       "request (or raise AIETL_API_MAX_BODY_BYTES / "
                                       "AIETL_API_MAX_DRIFT_BODY_BYTES on the server)",
                                  headers={"Connection": "close"})
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
                break
        if length is not None:
            if length > limit:
                await self._refuse(scope, receive, send, limit)
                return
            await self.app(scope, receive, send)
            return
        # no Content-Length: read the body here, at most `limit` bytes, then replay it
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
