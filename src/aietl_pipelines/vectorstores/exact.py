"""Exact cosine search in process memory: blocked matrix products on normalised vectors.

Written by hand because the dedupe pipeline needs all-pairs kNN over a whole batch at once (one matrix
product per block), which per-query engines do one query at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aietl_pipelines.vectorstores.base import RECORD_ID_KEY, Hit
from aietl_pipelines.vectorstores.common import (
    as_matrix,
    check_filters,
    check_limit,
    check_upsert,
    matches,
    unknown_collection,
)


@dataclass
class _Collection:
    dim: int
    ids: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    payloads: list[dict[str, Any]] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)


def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


class ExactVectorStore:
    """The `VectorStore` interface over NumPy arrays."""

    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}

    def _get(self, name: str) -> _Collection:
        if name not in self._collections:
            raise unknown_collection(name, list(self._collections))
        return self._collections[name]

    def create_collection(self, name: str, dim: int, *, recreate: bool = False) -> None:
        if recreate or name not in self._collections:
            self._collections[name] = _Collection(dim=dim, vectors=np.zeros((0, dim), dtype=np.float32))

    def has_collection(self, name: str) -> bool:
        return name in self._collections

    def delete_collection(self, name: str) -> None:
        self._collections.pop(name, None)

    def upsert(self, name: str, record_ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None) -> None:
        col = self._get(name)
        matrix = _normalise(as_matrix(vectors, col.dim, name))
        ids, payloads = check_upsert(name, record_ids, matrix, payloads)
        new_rows, new_ids, new_payloads = [], [], []
        for rid, vec, payload in zip(ids, matrix, payloads, strict=True):
            entry = {**payload, RECORD_ID_KEY: rid}
            if str(rid) in col.index:
                i = col.index[str(rid)]
                col.vectors[i] = vec
                col.payloads[i] = entry
            else:
                col.index[str(rid)] = len(col.ids) + len(new_ids)
                new_rows.append(vec)
                new_ids.append(str(rid))
                new_payloads.append(entry)
        if new_rows:
            col.vectors = np.vstack([col.vectors, np.asarray(new_rows, dtype=np.float32)])
            col.ids.extend(new_ids)
            col.payloads.extend(new_payloads)

    def query(self, name: str, vector: np.ndarray, *, limit: int = 10, filters=None) -> list[Hit]:
        return self.query_batch(name, vector, limit=limit, filters=filters)[0]

    def query_batch(self, name: str, vectors: np.ndarray, *, limit: int = 10, filters=None,
                    block: int = 2048) -> list[list[Hit]]:
        limit, filters = check_limit(limit), check_filters(filters)
        col = self._get(name)
        queries = _normalise(as_matrix(vectors, col.dim, name))
        allowed = None
        if filters:
            allowed = np.array([matches(p, filters) for p in col.payloads], dtype=bool)
        results: list[list[Hit]] = []
        n = len(col.ids)
        k = min(limit, n)
        for start in range(0, len(queries), block):
            sims = queries[start:start + block] @ col.vectors.T
            if allowed is not None:
                sims[:, ~allowed] = -np.inf
            if k == 0:
                results.extend([] for _ in range(len(sims)))
                continue
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(sims), 1))
            for row, cand in zip(sims, top, strict=True):
                order = cand[np.argsort(-row[cand], kind="stable")]
                results.append([Hit(col.ids[j], float(row[j]), col.payloads[j]) for j in order if np.isfinite(row[j])])
        return results

    def count(self, name: str) -> int:
        return len(self._get(name).ids)

    def all_vectors(self, name: str) -> tuple[list[str], np.ndarray]:
        """Ids and normalised vectors (for all-pairs kNN)."""
        col = self._get(name)
        return list(col.ids), col.vectors
