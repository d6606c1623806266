"""Vector stores behind one interface (`VectorStore`), chosen by configuration with `get_vector_store`.

| backend | what | where it runs |
| --- | --- | --- |
| ``numpy`` | exact cosine search in process memory (blocked matrix products) | here; the dedupe pipeline's default |
| ``qdrant_edge`` | Qdrant Edge (qdrant-edge-py): the Qdrant engine in process with HNSW (``path``) | here; fast path |
| ``qdrant_local`` | qdrant-client local mode (embedded, ``path`` or ``:memory:``) | here |
| ``qdrant`` | qdrant-client against a Qdrant server (``url`` or ``QDRANT_URL``) | docker-compose |
| ``weaviate`` | weaviate-client v4 against a Weaviate server (``url`` or ``WEAVIATE_URL``) | docker-compose |
"""

from __future__ import annotations

import os
from typing import Any

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.vectorstores.base import Hit, VectorStore, point_id

BACKENDS = ("numpy", "qdrant_edge", "qdrant_local", "qdrant", "weaviate")


def get_vector_store(backend: str = "numpy", **options: Any) -> VectorStore:
    """Build a vector store backend by name (see the module docstring)."""
    if backend == "numpy":
        from aietl_pipelines.vectorstores.exact import ExactVectorStore

        return ExactVectorStore()
    if backend == "qdrant_edge":
        from aietl_pipelines.vectorstores.edge import EdgeVectorStore

        return EdgeVectorStore(path=options.get("path"), hnsw_ef=options.get("hnsw_ef"))
    if backend == "qdrant_local":
        from aietl_pipelines.vectorstores.qdrant import QdrantVectorStore

        return QdrantVectorStore(path=options.get("path", ":memory:"))
    if backend == "qdrant":
        from aietl_pipelines.vectorstores.qdrant import QdrantVectorStore

        url = options.get("url") or os.environ.get("QDRANT_URL")
        if not url:
            raise AietlInputError("Qdrant server backend needs a URL: pass url=... or set QDRANT_URL.")
        return QdrantVectorStore(url=url, api_key=options.get("api_key") or os.environ.get("QDRANT_API_KEY"))
    if backend == "weaviate":
        from aietl_pipelines.vectorstores.weaviate import WeaviateVectorStore

        url = options.get("url") or os.environ.get("WEAVIATE_URL")
        if not url:
            raise AietlInputError("Weaviate backend needs a URL: pass url=... or set WEAVIATE_URL.")
        return WeaviateVectorStore(url=url, api_key=options.get("api_key") or os.environ.get("WEAVIATE_API_KEY"))
    raise AietlInputError(f"Unknown vector store backend '{backend}'. Use one of {BACKENDS}.")


__all__ = ["BACKENDS", "Hit", "VectorStore", "get_vector_store", "point_id"]
