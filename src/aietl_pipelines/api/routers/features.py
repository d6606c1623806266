"""HTTP: /api/v1/features/{online,historical,materialize}."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from fastapi import APIRouter
from pydantic import BaseModel

from aietl_pipelines.features.store import get_feature_store_service

router = APIRouter(tags=["features"])


class OnlineRequest(BaseModel):
    pipeline_ids: list[str]
    features: list[str] | None = None


class HistoricalRequest(BaseModel):
    entity_rows: list[dict[str, Any]]  # pipeline_id, event_timestamp (ISO 8601 with time zone)
    features: list[str] | None = None


class MaterializeRequest(BaseModel):
    start_date: datetime
    end_date: datetime


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


@router.post("/api/v1/features/online")
def online(request: OnlineRequest) -> dict[str, Any]:
    return {"features": _records(get_feature_store_service().get_pipeline_features(request.pipeline_ids, request.features))}


@router.post("/api/v1/features/historical")
def historical(request: HistoricalRequest) -> dict[str, Any]:
    entity_df = pd.DataFrame(request.entity_rows)
    if "event_timestamp" in entity_df:
        entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], format="ISO8601")
    result = get_feature_store_service().get_historical_features(entity_df, request.features)
    result["event_timestamp"] = result["event_timestamp"].astype(str)
    return {"features": _records(result)}


@router.post("/api/v1/features/materialize")
def materialize(request: MaterializeRequest) -> dict[str, Any]:
    get_feature_store_service().materialize(request.start_date, request.end_date)
    return {"materialized": True, "start_date": request.start_date.isoformat(), "end_date": request.end_date.isoformat()}
