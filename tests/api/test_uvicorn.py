"""The guide's requests against a real uvicorn process on 127.0.0.1, started from another directory."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.api.conftest import uvicorn_server
from tests.api.guide import (
    DRIFT,
    FEATURE_STORE,
    FULL_KEY,
    READ_KEY,
    VECTOR_SEARCH,
    check_drift,
    check_features,
    check_vector_search,
)


@pytest.fixture
def server(feature_repo, s3_bucket, api_env, tmp_path):
    """uvicorn with the test keys, S3 and feature repo, its cwd an empty folder (not the project)."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    with uvicorn_server(cwd) as base:
        yield base, cwd


def send(base: str, requests: list) -> list:
    out = []
    with httpx.Client(base_url=base, headers={"X-API-Key": FULL_KEY}, timeout=120) as client:
        for method, path, body in requests:
            response = client.request(method, path, json=body)
            assert response.status_code == 200, (path, response.text)
            out.append(response)
    return out


@pytest.mark.slow
def test_guide_requests_over_http(server):
    base, cwd = server
    check_features(send(base, FEATURE_STORE))
    check_drift(send(base, DRIFT))
    check_vector_search(send(base, VECTOR_SEARCH))
    assert list(cwd.iterdir()) == []  # no stray feast_repo/ or data/ in the working directory
    metrics = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {READ_KEY}"})
    assert metrics.status_code == 200
    assert_a_50_mb_body_gets_413_at_once(base)


def assert_a_50_mb_body_gets_413_at_once(base: str) -> None:
    host, port = base.removeprefix("http://").split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"POST /api/v1/vector-search/index HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {FULL_KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n")
        sock.sendall(head.encode() + b'{"collection_name": "c", "text": "' + b"x" * 65536)
        reply = sock.recv(4096).decode(errors="replace")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert time.perf_counter() - started < 5
    assert httpx.get(base + "/health").status_code == 200  # still serving
