"""HTTP: /api/v1/vector-search/{collections,index,duplicates,search}."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from aietl_pipelines.dedupe.matcher import DEFAULT_MATCH_THRESHOLD
from aietl_pipelines.services.vector_search import get_vector_search_service

router = APIRouter(tags=["vector-search"])


def _service(provider: str | None):
    return get_vector_search_service(provider or os.environ.get("AIETL_VECTOR_PROVIDER", "qdrant"))


class CollectionRequest(BaseModel):
    collection_name: str
    provider: str | None = None


class IndexRequest(BaseModel):
    collection_name: str
    record_id: str | None = None
    text: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    records: list[dict[str, Any]] | None = None
    text_field: str = "text"
    id_field: str = "id"
    provider: str | None = None


class DuplicatesRequest(BaseModel):
    collection_name: str
    text: str
    threshold: float = DEFAULT_MATCH_THRESHOLD
    limit: int = 10
    provider: str | None = None


class SearchRequest(BaseModel):
    collection_name: str
    query: str
    filters: dict[str, Any] | None = None
    limit: int = 10
    provider: str | None = None


@router.post("/api/v1/vector-search/collections")
async def create_collection(request: CollectionRequest) -> dict[str, Any]:
    return await _service(request.provider).create_collection(request.collection_name)


@router.post("/api/v1/vector-search/index")
async def index(request: IndexRequest) -> dict[str, Any]:
    service = _service(request.provider)
    if request.records is not None:
        return await service.batch_index(request.collection_name, request.records, request.text_field, request.id_field)
    return await service.index_record(request.collection_name, request.record_id, request.text, request.metadata)


@router.post("/api/v1/vector-search/duplicates")
async def duplicates(request: DuplicatesRequest) -> dict[str, Any]:
    found = await _service(request.provider).find_duplicates(request.collection_name, request.text,
                                                              request.threshold, request.limit)
    return {"duplicates": [d for d in found if d["is_duplicate"]], "candidates": found}


@router.post("/api/v1/vector-search/search")
async def search(request: SearchRequest) -> dict[str, Any]:
    return {"results": await _service(request.provider).search(request.collection_name, request.query,
                                                                 request.filters, request.limit)}
