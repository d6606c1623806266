"""HTTP: /api/v1/drift-monitoring/{detect,summary,retraining-status}."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from aietl_pipelines.services.drift_monitoring import get_drift_monitoring_service

router = APIRouter(tags=["drift-monitoring"])


class DetectRequest(BaseModel):
    reference_data: list[dict[str, Any]] = Field(..., description="reference rows (records)")
    current_data: list[dict[str, Any]] = Field(..., description="current rows (records)")
    target_column: str | None = None
    save_report: bool = True


def _service():
    return get_drift_monitoring_service()


@router.post("/api/v1/drift-monitoring/detect")
async def detect(request: DetectRequest) -> dict[str, Any]:
    report = await _service().detect_data_drift(
        pd.DataFrame(request.reference_data), pd.DataFrame(request.current_data),
        request.target_column, request.save_report,
    )
    return report


@router.get("/api/v1/drift-monitoring/summary")
def summary(days: int = Query(7, ge=1, le=3650)) -> dict[str, Any]:
    return _service().summary_sync(days)


@router.get("/api/v1/drift-monitoring/retraining-status")
def retraining_status() -> dict[str, Any]:
    return _service().retraining_status_sync()
