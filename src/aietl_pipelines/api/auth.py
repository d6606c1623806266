"""API keys: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

Full keys (``AIETL_API_KEYS``) may read and write; read-only keys (``AIETL_API_READ_KEYS``) may only read.
Keys are compared with `hmac.compare_digest` against every configured key (no early exit), so the time taken
does not tell how much of a key was right. ``AIETL_API_AUTH=disabled`` opens every route (local development
only); ``/health`` is always open.
"""

from __future__ import annotations

import hmac
from typing import Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from aietl_pipelines.api.config import ApiSettings

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="full key (AIETL_API_KEYS) or read-only key (AIETL_API_READ_KEYS)")
bearer = HTTPBearer(auto_error=False, description="the same keys as X-API-Key, as a bearer token")

Role = Literal["full", "read"]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="aietl"'}


def _matches(candidate: bytes, keys: tuple[str, ...]) -> bool:
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate, key.encode("utf-8"))
    return found


def role_of(key: str | None, settings: ApiSettings) -> Role | None:
    """'full', 'read' or None for a presented key."""
    if not key:
        return None
    candidate = key.encode("utf-8")
    full, read = _matches(candidate, settings.full_keys), _matches(candidate, settings.read_keys)
    return "full" if full else "read" if read else None


def _check(request: Request, header_key: str | None, credentials: HTTPAuthorizationCredentials | None,
           need: Role) -> None:
    settings: ApiSettings = request.app.state.settings
    if not settings.auth_required:
        return
    if not settings.full_keys and not settings.read_keys:
        raise HTTPException(401, "no API keys are configured on the server: set AIETL_API_KEYS "
                                 "(or AIETL_API_AUTH=disabled for local development)", headers=_CHALLENGE)
    key = header_key or (credentials.credentials if credentials else None)
    role = role_of(key, settings)
    if role is None:
        raise HTTPException(401, "missing or unknown API key: send it as 'X-API-Key: <key>' or "
                                 "'Authorization: Bearer <key>'", headers=_CHALLENGE)
    if need == "full" and role != "full":
        raise HTTPException(403, "this key is read-only: writes need a key from AIETL_API_KEYS")


async def require_read(request: Request, header_key: str | None = Depends(api_key_header),
                 credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """Any configured key (full or read-only). (async: a cheap check, no hop to the thread pool)"""
    _check(request, header_key, credentials, "read")


async def require_write(request: Request, header_key: str | None = Depends(api_key_header),
                  credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """A full key."""
    _check(request, header_key, credentials, "full")
