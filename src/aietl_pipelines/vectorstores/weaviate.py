"""Weaviate backend (weaviate-client v4). No Weaviate server runs on the development machine: this code is
exercised by tests only when WEAVIATE_URL is set (see docs)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.vectorstores.base import RECORD_ID_KEY, Hit, point_id
from aietl_pipelines.vectorstores.common import (
    as_matrix,
    check_filters,
    check_limit,
    check_upsert,
    unknown_collection,
)


def collection_name(name: str) -> str:
    """Weaviate class names start with a capital letter."""
    return name[:1].upper() + name[1:]


def build_filter(filters: Mapping[str, Any] | None) -> Any:
    """Our filter dict → weaviate `Filter` (equality, any-of, ranges)."""
    from weaviate.classes.query import Filter

    filters = check_filters(filters)
    if not filters:
        return None
    parts = []
    for key, cond in filters.items():
        prop = Filter.by_property(key)
        if isinstance(cond, Mapping):
            ops = {"gte": prop.greater_or_equal, "gt": prop.greater_than, "lte": prop.less_or_equal, "lt": prop.less_than}
            parts.extend(ops[op](bound) for op, bound in cond.items())
        elif isinstance(cond, list):
            parts.append(prop.contains_any(cond))
        else:
            parts.append(prop.equal(cond))
    return Filter.all_of(parts) if len(parts) > 1 else parts[0]


class WeaviateVectorStore:
    """`VectorStore` over a Weaviate server (bring-your-own vectors, cosine distance)."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        import weaviate
        from weaviate.classes.init import Auth

        parsed = urlparse(url)
        try:
            self.client = weaviate.connect_to_custom(
                http_host=parsed.hostname, http_port=parsed.port or 8080, http_secure=parsed.scheme == "https",
                grpc_host=parsed.hostname, grpc_port=50051, grpc_secure=parsed.scheme == "https",
                auth_credentials=Auth.api_key(api_key) if api_key else None,  # WEAVIATE_API_KEY
            )
        except Exception as exc:  # noqa: BLE001
            raise AietlInputError(f"Weaviate at {url} is unreachable: {exc}. Start it (make services-up).") from None
        self._dims: dict[str, int] = {}

    def create_collection(self, name: str, dim: int, *, recreate: bool = False) -> None:
        from weaviate.classes.config import Configure, VectorDistances

        cname = collection_name(name)
        if recreate and self.client.collections.exists(cname):
            self.client.collections.delete(cname)
        if not self.client.collections.exists(cname):
            self.client.collections.create(
                cname, vector_config=Configure.Vectors.self_provided(
                    vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)))
        self._dims[name] = dim

    def has_collection(self, name: str) -> bool:
        return self.client.collections.exists(collection_name(name))

    def delete_collection(self, name: str) -> None:
        self.client.collections.delete(collection_name(name))

    def _collection(self, name: str) -> Any:
        if not self.has_collection(name):
            raise unknown_collection(name, list(self.client.collections.list_all()))
        return self.client.collections.get(collection_name(name))

    def upsert(self, name: str, record_ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None) -> None:
        col = self._collection(name)
        matrix = as_matrix(vectors, self._dims.get(name, np.asarray(vectors).shape[-1]), name)
        ids, payloads = check_upsert(name, record_ids, matrix, payloads)
        with col.batch.dynamic() as batch:
            for rid, vec, payload in zip(ids, matrix, payloads, strict=True):
                batch.add_object(properties={**payload, RECORD_ID_KEY: rid}, uuid=point_id(rid), vector=vec.tolist())

    def query(self, name: str, vector: np.ndarray, *, limit: int = 10, filters=None) -> list[Hit]:
        from weaviate.classes.query import MetadataQuery

        limit, where = check_limit(limit), build_filter(filters)
        col = self._collection(name)
        query = as_matrix(vector, self._dims.get(name, np.asarray(vector).shape[-1]), name)[0]
        res = col.query.near_vector(near_vector=query.tolist(), limit=limit,
                                    filters=where, return_metadata=MetadataQuery(distance=True))
        return [Hit(o.properties.get(RECORD_ID_KEY), 1.0 - float(o.metadata.distance), dict(o.properties)) for o in res.objects]

    def query_batch(self, name: str, vectors: np.ndarray, *, limit: int = 10, filters=None) -> list[list[Hit]]:
        return [self.query(name, v, limit=limit, filters=filters) for v in np.atleast_2d(vectors)]

    def count(self, name: str) -> int:
        return int(self._collection(name).aggregate.over_all(total_count=True).total_count)
