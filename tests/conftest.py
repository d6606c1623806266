"""Shared fixtures: the local services (Redis, PostgreSQL) CI machines run on 127.0.0.1."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """redis://127.0.0.1:6379/0, or skip the test with the reason."""
    if not _reachable(REDIS_HOST, REDIS_PORT):
        pytest.skip(f"services: no Redis on {REDIS_HOST}:{REDIS_PORT} (CI machines have one)")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """postgresql://postgres@127.0.0.1:5432/test (trust auth), or skip the test with the reason."""
    if not _reachable(POSTGRES_HOST, POSTGRES_PORT):
        pytest.skip(f"services: no PostgreSQL on {POSTGRES_HOST}:{POSTGRES_PORT} (CI machines have one)")
    return f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test"
