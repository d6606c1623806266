"""Weaviate and Qdrant API keys pass from the environment to the clients (WEAVIATE_API_KEY, QDRANT_API_KEY).

No Weaviate or Qdrant server runs here: a small HTTP listener on 127.0.0.1 records what the real clients send
when they connect (the connection then fails, which the store reports as a clear error)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.vectorstores import get_vector_store


@pytest.fixture
def listener():
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": [{"message": "unauthorized"}]}')

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_weaviate_key_from_the_environment_is_sent(listener, monkeypatch):
    url, seen = listener
    monkeypatch.setenv("WEAVIATE_API_KEY", "weaviate-secret")
    with pytest.raises(AietlInputError, match="Weaviate at"):
        get_vector_store("weaviate", url=url)
    assert any(h.get("authorization") == "Bearer weaviate-secret" for h in seen), seen


def test_qdrant_key_from_the_environment_is_sent(listener, monkeypatch):
    url, seen = listener
    monkeypatch.setenv("QDRANT_API_KEY", "qdrant-secret")
    with pytest.raises(AietlInputError, match="Qdrant at"):
        get_vector_store("qdrant", url=url)
    assert any(h.get("api-key") == "qdrant-secret" for h in seen), seen
