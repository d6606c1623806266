"""Qdrant Edge backend (PyPI ``qdrant-edge-py``): the Qdrant engine in process, with HNSW.

One ``EdgeShard`` per collection, in ``<path>/<collection>/`` (a temporary directory when no path is given).
The same engine as a Qdrant server, without the server: cosine distance, payload filters, an HNSW index that
`upsert` builds (``optimize()``) once the vectors outside it pass ``INDEXING_THRESHOLD_KB`` (about 6,700 MiniLM
vectors), as a server's background optimizer would; points not yet indexed are searched exactly. This is the embedded fast path for
``find_duplicates``/``search`` on large collections (docs/vector_search.md).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
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

_META = "aietl_collection.json"
#: HNSW graph parameters (Qdrant's defaults: m=16, ef_construct=100).
HNSW_M, HNSW_EF_CONSTRUCT, FULL_SCAN_THRESHOLD = 16, 100, 10_000
#: KB of vectors outside the index at which the optimizer builds it (Qdrant's default indexing_threshold).
INDEXING_THRESHOLD_KB = 10_000


def build_filter(filters: Mapping[str, Any] | None) -> Any:
    """Our filter dict → qdrant_edge ``Filter`` (equality, any-of, ranges)."""
    import qdrant_edge as qe

    return translate_filters(filters, field_condition=qe.FieldCondition, match_value=qe.MatchValue,
                             match_any=qe.MatchAny, range_=qe.RangeFloat, filter_=qe.Filter)


class EdgeVectorStore:
    """`VectorStore` over Qdrant Edge shards (one per collection)."""

    def __init__(self, path: str | Path | None = None, hnsw_ef: int | None = None) -> None:
        self._owned = path is None
        self.path = Path(path) if path else Path(tempfile.mkdtemp(prefix="aietl-edge-"))
        self.path.mkdir(parents=True, exist_ok=True)
        if self._owned:  # a temporary store disappears with the object (or at exit)
            weakref.finalize(self, shutil.rmtree, str(self.path), True)
        self.hnsw_ef = hnsw_ef
        self._shards: dict[str, Any] = {}
        self._dims: dict[str, int] = {}
        self._lock = threading.Lock()

    # collections ---------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise AietlInputError(f"Invalid collection name '{name}': use letters, digits, '-' and '_'.")
        return self.path / name

    def _config(self, dim: int) -> Any:
        import qdrant_edge as qe

        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT,
                                           full_scan_threshold=FULL_SCAN_THRESHOLD),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=INDEXING_THRESHOLD_KB),
        )

    def _shard(self, name: str) -> Any:
        import qdrant_edge as qe

        with self._lock:
            if name not in self._shards:
                folder = self._dir(name)
                if not (folder / _META).exists():
                    raise unknown_collection(name, self.collections())
                self._dims[name] = int(json.loads((folder / _META).read_text())["dim"])
                self._shards[name] = qe.EdgeShard.load(str(folder / "shard"))
            return self._shards[name]

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if (p / _META).exists())

    def create_collection(self, name: str, dim: int, *, recreate: bool = False) -> None:
        import qdrant_edge as qe

        folder = self._dir(name)
        if (folder / _META).exists() and not recreate:
            return
        self.delete_collection(name)
        folder.mkdir(parents=True)
        shard = qe.EdgeShard.create(str(folder / "shard"), self._config(int(dim)))
        (folder / _META).write_text(json.dumps({"dim": int(dim)}))
        with self._lock:
            self._shards[name], self._dims[name] = shard, int(dim)

    def has_collection(self, name: str) -> bool:
        return (self._dir(name) / _META).exists()

    def delete_collection(self, name: str) -> None:
        with self._lock:
            shard = self._shards.pop(name, None)
            self._dims.pop(name, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._dir(name), ignore_errors=True)

    # points --------------------------------------------------------------------------------------
    def upsert(self, name: str, record_ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None, batch_size: int = 2048) -> None:
        import qdrant_edge as qe

        shard = self._shard(name)
        matrix = as_matrix(vectors, self._dims[name], name)
        ids, payloads = check_upsert(name, record_ids, matrix, payloads)
        for start in range(0, len(ids), batch_size):
            points = [qe.Point(id=uuid.UUID(point_id(r)), vector=v.tolist(), payload={**p, RECORD_ID_KEY: r})
                      for r, v, p in zip(ids[start:start + batch_size], matrix[start:start + batch_size],
                                         payloads[start:start + batch_size], strict=True)]
            shard.update(qe.UpdateOperation.upsert_points(points))
        info = shard.info()  # index what is past the threshold, as a server's background optimizer would
        if (info.points_count - info.indexed_vectors_count) * self._dims[name] * 4 / 1024 >= INDEXING_THRESHOLD_KB:
            shard.optimize()

    def optimize(self, name: str) -> bool:
        """Build the HNSW index (and merge segments) now; returns whether anything changed. `upsert` does it
        by itself once the vectors outside the index pass ``INDEXING_THRESHOLD_KB``."""
        return bool(self._shard(name).optimize())

    def _request(self, vector: np.ndarray, limit: int, query_filter: Any) -> Any:
        import qdrant_edge as qe

        params = qe.SearchParams(hnsw_ef=self.hnsw_ef) if self.hnsw_ef else None
        return qe.QueryRequest(limit=int(limit), query=qe.Query.Nearest(vector.tolist()), with_payload=True,
                               filter=query_filter, params=params)

    @staticmethod
    def _hits(points: Sequence[Any]) -> list[Hit]:
        return [Hit(str((p.payload or {}).get(RECORD_ID_KEY)), float(p.score), dict(p.payload or {})) for p in points]

    def query(self, name: str, vector: np.ndarray, *, limit: int = 10, filters=None) -> list[Hit]:
        limit, query_filter = check_limit(limit), build_filter(filters)
        shard = self._shard(name)
        query = as_matrix(vector, self._dims[name], name)[0]
        return self._hits(shard.query(self._request(query, limit, query_filter)))

    def query_batch(self, name: str, vectors: np.ndarray, *, limit: int = 10, filters=None,
                    batch_size: int = 512) -> list[list[Hit]]:
        import qdrant_edge as qe

        limit, query_filter = check_limit(limit), build_filter(filters)
        shard = self._shard(name)
        matrix = as_matrix(vectors, self._dims[name], name)
        out: list[list[Hit]] = []
        for start in range(0, len(matrix), batch_size):
            requests = [self._request(v, limit, query_filter) for v in matrix[start:start + batch_size]]
            out.extend(self._hits(points) for points in shard.query_batch(qe.QueryBatchRequest(requests)))
        return out

    def count(self, name: str) -> int:
        import qdrant_edge as qe

        return int(self._shard(name).count(qe.CountRequest(exact=True)))

    def close(self) -> None:
        """Flush and close every shard (and remove the directory if this store made it)."""
        with self._lock:
            shards, self._shards = list(self._shards.values()), {}
        for shard in shards:
            shard.flush()
            shard.close()
        if self._owned:
            shutil.rmtree(self.path, ignore_errors=True)
