"""One interface for every vector store backend (Qdrant server/local, qdrant-edge, Weaviate)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: Namespace for mapping user record ids (strings) to the UUIDs the engines want.
ID_NAMESPACE = uuid.UUID("8f2c3b56-0b7e-4a52-9d7a-3f1c2a9d6e10")
#: Payload key that keeps the user's original record id.
RECORD_ID_KEY = "record_id"


def point_id(record_id: str) -> str:
    """Deterministic UUID string for a user record id."""
    return str(uuid.uuid5(ID_NAMESPACE, str(record_id)))


@dataclass(frozen=True)
class Hit:
    """One search result: the user's record id, the cosine similarity and the stored payload."""

    record_id: str
    score: float
    payload: Mapping[str, Any] = field(default_factory=dict)


#: Filters: {"field": value} (equality), {"field": [v1, v2]} (any of),
#: {"field": {"gte": x, "lte": y}} (range). Combined with AND.
Filters = Mapping[str, Any]


@runtime_checkable
class VectorStore(Protocol):
    """What the dedupe pipeline and the vector search service need from a vector database."""

    def create_collection(self, name: str, dim: int, *, recreate: bool = False) -> None:
        """Create a cosine-distance collection (no-op if it exists and recreate is False)."""

    def has_collection(self, name: str) -> bool:
        """Whether the collection exists."""

    def delete_collection(self, name: str) -> None:
        """Drop the collection if it exists."""

    def upsert(
        self,
        name: str,
        record_ids: Sequence[str],
        vectors: np.ndarray,
        payloads: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Insert or replace points; the payload gets `record_id` added."""

    def query(
        self, name: str, vector: np.ndarray, *, limit: int = 10, filters: Filters | None = None
    ) -> list[Hit]:
        """Nearest neighbours of one vector, best first."""

    def query_batch(
        self, name: str, vectors: np.ndarray, *, limit: int = 10, filters: Filters | None = None
    ) -> list[list[Hit]]:
        """Nearest neighbours of many vectors."""

    def count(self, name: str) -> int:
        """Number of points in the collection."""
