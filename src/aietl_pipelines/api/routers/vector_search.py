"""HTTP: /api/v1/vector-search/{collections,index,duplicates,search} (the guide's bodies, as written)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from aietl_pipelines.api.auth import require_read, require_write
from aietl_pipelines.api.config import MAX_LIMIT, MAX_TEXT_CHARS
from aietl_pipelines.api.errors import READ_ERRORS, WRITE_ERRORS
from aietl_pipelines.api.state import ServiceRegistry, services
from aietl_pipelines.dedupe.matcher import DEFAULT_MATCH_THRESHOLD

router = APIRouter(prefix="/api/v1/vector-search", tags=["vector-search"])

CollectionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
                                      description="letters, digits, '-' and '_' (1-63 characters)",
                                      examples=["customer_records"])]
Provider = Literal["qdrant", "qdrant_local", "weaviate", "numpy"]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS,
                            description=f"1 to {MAX_TEXT_CHARS:,} characters (AIETL_API_MAX_TEXT_CHARS)")]
RecordId = Annotated[str, Field(min_length=1, max_length=256)] | StrictInt
FieldName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]
Scalar = Annotated[str, Field(max_length=4096)] | StrictInt | StrictFloat | StrictBool | None
MetadataValue = Scalar | Annotated[list[Scalar], Field(max_length=100)]
Metadata = Annotated[dict[FieldName, MetadataValue], Field(max_length=50)]
Limit = Annotated[int, Field(strict=True, ge=1, le=MAX_LIMIT, description=f"1 to {MAX_LIMIT}")]


class RangeFilter(BaseModel):
    """A numeric range: any of gte, gt, lte, lt (finite numbers)."""

    model_config = ConfigDict(extra="forbid")
    gte: float | None = Field(None, strict=True, allow_inf_nan=False)
    gt: float | None = Field(None, strict=True, allow_inf_nan=False)
    lte: float | None = Field(None, strict=True, allow_inf_nan=False)
    lt: float | None = Field(None, strict=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_bound(self) -> RangeFilter:
        if all(v is None for v in (self.gte, self.gt, self.lte, self.lt)):
            raise ValueError("a range filter needs at least one of gte, gt, lte, lt")
        return self


FilterValue = (Annotated[str, Field(max_length=4096)] | StrictInt | StrictBool
               | Annotated[list[Annotated[str, Field(max_length=4096)]], Field(min_length=1, max_length=100)]
               | Annotated[list[StrictInt], Field(min_length=1, max_length=100)] | RangeFilter)


class CollectionRequest(BaseModel):
    """The guide: ``{"name": "customer_records", "provider": "qdrant"}`` (``collection_name`` also accepted)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"name": "customer_records", "provider": "qdrant"}]})
    name: CollectionName | None = None
    collection_name: CollectionName | None = None
    provider: Provider | None = None

    @model_validator(mode="after")
    def _one_name(self) -> CollectionRequest:
        if (self.name is None) == (self.collection_name is None):
            raise ValueError("give the collection's name as 'name' (or 'collection_name'), once")
        return self


class IndexRequest(BaseModel):
    """One record (``record_id``, ``text``, ``metadata``), or many (``records`` with ``text_field``/``id_field``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "collection_name": "customer_records", "record_id": "cust_001",
        "text": "John Doe, 123 Main St, john@example.com", "metadata": {"source": "crm"}}]})
    collection_name: CollectionName
    record_id: RecordId | None = None
    text: Text | None = None
    metadata: Metadata = Field(default_factory=dict)
    records: Annotated[list[dict[FieldName, MetadataValue]], Field(min_length=1, max_length=1000)] | None = None
    text_field: FieldName = "text"
    id_field: FieldName = "id"
    provider: Provider | None = None

    @model_validator(mode="after")
    def _one_or_many(self) -> IndexRequest:
        single = self.record_id is not None or self.text is not None
        if self.records is not None and single:
            raise ValueError("send either record_id + text (one record) or records (a batch), not both")
        if self.records is None and (self.record_id is None or self.text is None):
            raise ValueError("one record needs both record_id and text (or send records: [...])")
        if self.records is not None:
            for i, row in enumerate(self.records):
                text, rid = row.get(self.text_field), row.get(self.id_field)
                if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
                    raise ValueError(f"records[{i}].{self.text_field} must be a non-empty text of at most "
                                     f"{MAX_TEXT_CHARS:,} characters")
                if rid is None or isinstance(rid, bool | float | list) or not str(rid):
                    raise ValueError(f"records[{i}].{self.id_field} must be a string or integer id")
        return self


class DuplicatesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "collection_name": "customer_records", "text": "Jon Doe, 123 Main Street, john@example.com",
        "threshold": 0.9}]})
    collection_name: CollectionName
    text: Text
    threshold: float = Field(DEFAULT_MATCH_THRESHOLD, strict=True, ge=0.0, le=1.0)
    limit: Limit = 10
    provider: Provider | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "collection_name": "customer_records", "query": "John Doe Main Street", "filters": {"source": "crm"},
        "limit": 10}]})
    collection_name: CollectionName
    query: Text
    filters: Annotated[dict[FieldName, FilterValue], Field(
        max_length=20, description="field: value (equal), [values] (any of), {gte, gt, lte, lt} (range); "
                                   "all must hold")] | None = None
    limit: Limit = 10
    provider: Provider | None = None


class CollectionResponse(BaseModel):
    collection_name: str
    dimension: int
    provider: str


class IndexResponse(BaseModel):
    collection_name: str
    indexed: int
    record_id: str | None = None


class Duplicate(BaseModel):
    record_id: str
    similarity_score: float
    cosine: float
    is_duplicate: bool
    metadata: dict[str, Any]


class DuplicatesResponse(BaseModel):
    duplicates: list[Duplicate] = Field(description="candidates at or above the threshold, best first")
    candidates: list[Duplicate] = Field(description="the nearest records, scored, best first")


class SearchHit(BaseModel):
    record_id: str
    score: float
    metadata: dict[str, Any]


class SearchResponse(BaseModel):
    results: list[SearchHit]


@router.post("/collections", dependencies=[Depends(require_write)], responses=WRITE_ERRORS)
async def create_collection(request: CollectionRequest,
                            registry: ServiceRegistry = Depends(services)) -> CollectionResponse:
    """Create a collection (no-op if it exists). Needs a full key."""
    name = request.name or request.collection_name
    return CollectionResponse(**await registry.vector(request.provider).create_collection(name))


@router.post("/index", dependencies=[Depends(require_write)], responses=WRITE_ERRORS)
async def index(request: IndexRequest, registry: ServiceRegistry = Depends(services)) -> IndexResponse:
    """Embed and store one record, or a batch of records. Needs a full key."""
    service = registry.vector(request.provider)
    if request.records is not None:
        done = await service.batch_index(request.collection_name, request.records, request.text_field,
                                         request.id_field)
        return IndexResponse(collection_name=request.collection_name, indexed=done["indexed"])
    done = await service.index_record(request.collection_name, str(request.record_id), request.text,
                                      request.metadata)
    return IndexResponse(collection_name=request.collection_name, indexed=1, record_id=done["record_id"])


@router.post("/duplicates", dependencies=[Depends(require_read)], responses=READ_ERRORS)
async def duplicates(request: DuplicatesRequest, registry: ServiceRegistry = Depends(services)) -> DuplicatesResponse:
    """The nearest records scored by the dedupe match model; ``duplicates`` are those >= threshold."""
    found = await registry.vector(request.provider).find_duplicates(
        request.collection_name, request.text, request.threshold, request.limit)
    return DuplicatesResponse(duplicates=[d for d in found if d["is_duplicate"]], candidates=found)


@router.post("/search", dependencies=[Depends(require_read)], responses=READ_ERRORS)
async def search(request: SearchRequest, registry: ServiceRegistry = Depends(services)) -> SearchResponse:
    """Semantic search with optional metadata filters."""
    filters = ({k: (v.model_dump(exclude_none=True) if isinstance(v, RangeFilter) else v)
                for k, v in request.filters.items()} if request.filters else None)
    hits = await registry.vector(request.provider).search(request.collection_name, request.query, filters,
                                                          request.limit)
    return SearchResponse(results=hits)
