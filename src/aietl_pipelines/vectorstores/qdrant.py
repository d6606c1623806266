"""Qdrant backend (qdrant-client): a server by URL, or the embedded local mode (path or ':memory:')."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.vectorstores.base import RECORD_ID_KEY, Hit, point_id
from aietl_pipelines.vectorstores.common import (
    as_matrix,
    check_limit,
    check_upsert,
    translate_filters,
    unknown_collection,
)


def build_filter(filters: Mapping[str, Any] | None) -> Any:
    """Our filter dict → qdrant-client `Filter` (equality, any-of, ranges)."""
    from qdrant_client import models

    return translate_filters(filters, field_condition=models.FieldCondition, match_value=models.MatchValue,
                             match_any=models.MatchAny, range_=models.Range, filter_=models.Filter)


class QdrantVectorStore:
    """`VectorStore` over qdrant-client."""

    def __init__(self, url: str | None = None, path: str | None = None, api_key: str | None = None) -> None:
        from qdrant_client import QdrantClient

        self._where = url or path or ":memory:"
        try:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=10) if url else QdrantClient(path=path or ":memory:")
            if url:
                self.client.get_collections()
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise AietlInputError(f"Qdrant at {self._where} is unreachable: {exc}. Start it (make services-up) "
                                  "or use the embedded backend.") from None
        self._dims: dict[str, int] = {}

    def _dim(self, name: str) -> int:
        if name not in self._dims:
            if not self.client.collection_exists(name):
                raise unknown_collection(name, [c.name for c in self.client.get_collections().collections])
            self._dims[name] = self.client.get_collection(name).config.params.vectors.size
        return self._dims[name]

    def create_collection(self, name: str, dim: int, *, recreate: bool = False) -> None:
        from qdrant_client import models

        exists = self.client.collection_exists(name)
        if exists and recreate:
            self.client.delete_collection(name)
        if recreate or not exists:
            self.client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
        self._dims[name] = dim

    def has_collection(self, name: str) -> bool:
        return self.client.collection_exists(name)

    def delete_collection(self, name: str) -> None:
        if self.client.collection_exists(name):
            self.client.delete_collection(name)
        self._dims.pop(name, None)

    def upsert(self, name: str, record_ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None) -> None:
        from qdrant_client import models

        matrix = as_matrix(vectors, self._dim(name), name)
        ids, payloads = check_upsert(name, record_ids, matrix, payloads)
        points = [models.PointStruct(id=point_id(r), vector=v.tolist(), payload={**p, RECORD_ID_KEY: r})
                  for r, v, p in zip(ids, matrix, payloads, strict=True)]
        for start in range(0, len(points), 512):
            self.client.upsert(name, points=points[start:start + 512], wait=True)

    def query(self, name: str, vector: np.ndarray, *, limit: int = 10, filters=None) -> list[Hit]:
        limit, query_filter = check_limit(limit), build_filter(filters)
        query = as_matrix(vector, self._dim(name), name)[0]
        result = self.client.query_points(name, query=query.tolist(), limit=limit, query_filter=query_filter,
                                          with_payload=True)
        return [Hit(p.payload.get(RECORD_ID_KEY), float(p.score), p.payload) for p in result.points]

    def query_batch(self, name: str, vectors: np.ndarray, *, limit: int = 10, filters=None) -> list[list[Hit]]:
        limit, _ = check_limit(limit), build_filter(filters)
        return [self.query(name, v, limit=limit, filters=filters) for v in as_matrix(vectors, self._dim(name), name)]

    def count(self, name: str) -> int:
        self._dim(name)
        return int(self.client.count(name, exact=True).count)
