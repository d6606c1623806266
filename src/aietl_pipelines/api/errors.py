"""One error format for every 4xx (and the rare 5xx): ``{"error": code, "detail": one line}``.

Handlers turn request-validation errors, the project's `AietlInputError`, HTTP errors (404, 405, 401, 403,
413) and anything unexpected into that body. Messages are scrubbed of server paths before they leave.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.paths import project_root

logger = logging.getLogger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
         422: "invalid_input", 429: "too_many_requests", 500: "internal_error", 503: "unavailable"}


class ErrorBody(BaseModel):
    """Every error response of the API."""

    error: str = Field(..., description="machine-readable code: " + ", ".join(sorted(set(CODES.values()))))
    detail: str = Field(..., description="what is wrong and how to fix it, in one line")


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    texts = {401: "missing or unknown API key (X-API-Key or Authorization: Bearer)",
             403: "a read-only key on a route that writes", 413: "request body above the configured limit",
             422: "invalid request: the detail names the field and the fix"}
    return {c: {"model": ErrorBody, "description": texts.get(c, CODES[c])} for c in codes}


#: Error responses of a route that reads / writes (documented in OpenAPI).
READ_ERRORS = _responses(401, 413, 422)
WRITE_ERRORS = _responses(401, 403, 413, 422)

_ABS_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.@+-]+/)+([\w.@+-]+)")


def scrub(message: str) -> str:
    """The message without server folders: known roots become placeholders, other absolute paths keep only
    their last component."""
    for root, name in ((str(project_root()), "<project>"), (tempfile.gettempdir(), "<tmp>"),
                       (str(Path.home()), "<home>")):
        if root and root != "/":
            message = message.replace(root, name)
    return _ABS_PATH.sub(lambda m: "…/" + m.group(1), message)


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=CODES.get(status, "error"), detail=scrub(" ".join(str(detail).split())))
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _validation_detail(exc: RequestValidationError) -> str:
    errors = exc.errors()
    parts = []
    for err in errors[:5]:
        if err.get("type") == "json_invalid":
            parts.append("the body is not valid JSON: send a JSON object with content-type application/json")
            continue
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{_location(tuple(err.get('loc', ())))}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the `ErrorBody` format."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_detail(exc))

    @app.exception_handler(AietlInputError)
    async def bad_input(request: Request, exc: AietlInputError) -> JSONResponse:
        return error_response(422, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code if 400 <= exc.status_code < 600 else 500
        detail = exc.detail if isinstance(exc.detail, str) else CODES.get(status, "error")
        if status == 400:  # FastAPI's "error parsing the body" (bytes that are not UTF-8 JSON): invalid input
            status, detail = 422, "the body is not valid JSON: send UTF-8 JSON with content-type application/json"
        return error_response(status, detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("Unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error: the server log has the details")
