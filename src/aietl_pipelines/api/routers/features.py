"""HTTP: /api/v1/features/{online,historical,materialize,push} (the guide's bodies, as written).

Time stamps are ISO 8601; one without a zone is taken as UTC (as Feast does).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from aietl_pipelines.api.auth import require_read, require_write
from aietl_pipelines.api.errors import READ_ERRORS, WRITE_ERRORS
from aietl_pipelines.api.state import ServiceRegistry, services
from aietl_pipelines.features import definitions as defs

router = APIRouter(prefix="/api/v1/features", tags=["features"])

UTC_NOTE = "ISO 8601; without a zone it is UTC (2025-01-01T00:00:00 = 2025-01-01T00:00:00Z)"
FeatureRef = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_]+(:[A-Za-z0-9_]+)?$",
                                  description="'view:feature' or a feature of pipeline_features",
                                  examples=["pipeline_features:avg_execution_time"])]
Features = Annotated[list[FeatureRef], Field(min_length=1, max_length=100)]
EntityId = Annotated[str, Field(min_length=1, max_length=256)] | StrictInt
Timestamp = Annotated[str, Field(min_length=1, max_length=64, description=UTC_NOTE,
                                 examples=["2025-01-01T00:00:00"])]
MAX_ONLINE_ENTITIES, MAX_HISTORICAL_ROWS = 1000, 100_000


class EntityRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline_id: EntityId


class OnlineRequest(BaseModel):
    """The guide: ``{"features": [...], "entity_rows": [{"pipeline_id": "123"}]}`` (or ``pipeline_ids``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "features": ["pipeline_features:avg_execution_time", "pipeline_features:success_rate"],
        "entity_rows": [{"pipeline_id": "123"}]}]})
    features: Features | None = Field(None, description="default: every feature of pipeline_features")
    entity_rows: Annotated[list[EntityRow], Field(min_length=1, max_length=MAX_ONLINE_ENTITIES)] | None = None
    pipeline_ids: Annotated[list[EntityId], Field(min_length=1, max_length=MAX_ONLINE_ENTITIES)] | None = None

    @model_validator(mode="after")
    def _one_key_list(self) -> OnlineRequest:
        if (self.entity_rows is None) == (self.pipeline_ids is None):
            raise ValueError("give the entities once: entity_rows [{\"pipeline_id\": ...}] or pipeline_ids [...]")
        return self

    def ids(self) -> list[str]:
        return [str(r.pipeline_id) for r in self.entity_rows] if self.entity_rows else [str(i) for i in self.pipeline_ids]


class EntityDf(BaseModel):
    """Columns of the entity frame, of equal length."""

    model_config = ConfigDict(extra="forbid")
    pipeline_id: Annotated[list[EntityId], Field(min_length=1, max_length=MAX_HISTORICAL_ROWS)]
    event_timestamp: Annotated[list[Timestamp], Field(min_length=1, max_length=MAX_HISTORICAL_ROWS,
                                                      description=UTC_NOTE)]

    @model_validator(mode="after")
    def _same_length(self) -> EntityDf:
        if len(self.pipeline_id) != len(self.event_timestamp):
            raise ValueError(f"entity_df columns differ in length: pipeline_id has {len(self.pipeline_id)}, "
                             f"event_timestamp {len(self.event_timestamp)}")
        return self


class HistoricalEntityRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline_id: EntityId
    event_timestamp: Timestamp


class HistoricalRequest(BaseModel):
    """The guide: ``{"entity_df": {"pipeline_id": [...], "event_timestamp": [...]}, "features": [...]}``
    (or ``entity_rows``: [{pipeline_id, event_timestamp}])."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "entity_df": {"pipeline_id": ["123", "456"],
                      "event_timestamp": ["2025-01-01T00:00:00", "2025-01-02T00:00:00"]},
        "features": ["pipeline_features:avg_execution_time", "pipeline_features:success_rate"]}]})
    entity_df: EntityDf | None = None
    entity_rows: Annotated[list[HistoricalEntityRow], Field(min_length=1, max_length=MAX_HISTORICAL_ROWS)] | None = None
    features: Features | None = Field(None, description="default: every feature of pipeline_features")

    @model_validator(mode="after")
    def _one_entity_source(self) -> HistoricalRequest:
        if (self.entity_df is None) == (self.entity_rows is None):
            raise ValueError("give the entities once: entity_df {pipeline_id: [...], event_timestamp: [...]} "
                             "or entity_rows [...]")
        return self

    def frame(self) -> pd.DataFrame:
        if self.entity_df is not None:
            ids, stamps = self.entity_df.pipeline_id, self.entity_df.event_timestamp
        else:
            ids = [r.pipeline_id for r in self.entity_rows]
            stamps = [r.event_timestamp for r in self.entity_rows]
        return pd.DataFrame({defs.JOIN_KEY: [str(i) for i in ids], "event_timestamp": stamps})


class MaterializeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "start_date": "2025-01-01T00:00:00", "end_date": "2025-01-08T00:00:00"}]})
    start_date: Timestamp
    end_date: Timestamp
    feature_views: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,128}$")]],
                             Field(min_length=1, max_length=10)] = [defs.FEATURE_VIEW]


class MaterializeResponse(BaseModel):
    materialized: bool
    feature_views: list[str]
    rows: int = Field(description="offline rows with an event time in the window")
    entities: int = Field(description="entities written to the online store (their latest row)")
    start_date: str
    end_date: str


PushValue = StrictInt | StrictBool | Annotated[float, Field(strict=True, allow_inf_nan=False)] | Timestamp


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "push_source_name": defs.PUSH_SOURCE, "to": "online",
        "rows": [{"pipeline_id": "123", "event_timestamp": "2025-01-01T00:00:00", "current_cpu_usage": 0.5,
                  "current_memory_usage": 0.4, "anomaly_detected": 0}]}]})
    push_source_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,128}$")] = defs.PUSH_SOURCE
    to: Annotated[str, Field(pattern=r"^(online|offline|online_and_offline)$")] = "online"
    rows: Annotated[list[dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,128}$")], PushValue]],
                    Field(min_length=1, max_length=10_000)]


class PushResponse(BaseModel):
    pushed: int
    push_source_name: str
    to: str


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.to_dict(orient="records")
    for row in out:  # JSON has no NaN/inf: unknown values are null; time stamps ISO 8601
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
            elif isinstance(value, pd.Timestamp | datetime):
                row[key] = None if pd.isna(value) else value.isoformat()
            elif value is pd.NA or value is pd.NaT:
                row[key] = None
            elif hasattr(value, "item"):  # numpy scalars
                row[key] = value.item()
    return out


class FeaturesResponse(BaseModel):
    features: list[dict[str, Any]]


@router.post("/online", dependencies=[Depends(require_read)], responses=READ_ERRORS)
async def online(request: OnlineRequest, registry: ServiceRegistry = Depends(services)) -> FeaturesResponse:
    """Latest online values, one row per entity in the order given."""
    # an online-store read takes well under a millisecond: done on the event loop, no thread-pool hop
    return FeaturesResponse(features=registry.features().online_records_sync(request.ids(), request.features))


@router.post("/historical", dependencies=[Depends(require_read)], responses=READ_ERRORS)
async def historical(request: HistoricalRequest, registry: ServiceRegistry = Depends(services)) -> FeaturesResponse:
    """Point-in-time correct features for every entity row (naive time stamps are UTC)."""
    frame = await registry.features().get_historical_features(request.frame(), request.features)
    return FeaturesResponse(features=_records(frame))


@router.post("/materialize", dependencies=[Depends(require_write)], responses=WRITE_ERRORS)
async def materialize(request: MaterializeRequest, registry: ServiceRegistry = Depends(services)) -> MaterializeResponse:
    """Load the latest values between the dates into the online store; reports rows, entities and window.
    Needs a full key."""
    done = await registry.features().materialize(request.start_date, request.end_date, request.feature_views)
    return MaterializeResponse(**done)


@router.post("/push", dependencies=[Depends(require_write)], responses=WRITE_ERRORS)
async def push(request: PushRequest, registry: ServiceRegistry = Depends(services)) -> PushResponse:
    """Push real-time rows (exactly pipeline_id, event_timestamp and the view's features). Needs a full key."""
    pushed = await registry.features().push_features(request.push_source_name, pd.DataFrame(request.rows),
                                                     request.to)
    return PushResponse(pushed=pushed, push_source_name=request.push_source_name, to=request.to)
