"""HTTP: /api/v1/drift-monitoring/{detect,summary,retraining-status}.

Detection reads the two frames by path (the guide: ``reference_data_path`` / ``current_data_path``, local or
``s3://`` under ``AIETL_DATA_ROOTS``, parquet or CSV) or takes them inline as rows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from aietl_pipelines.api.auth import require_read
from aietl_pipelines.api.config import MAX_DRIFT_ROWS, ApiSettings
from aietl_pipelines.api.data_access import read_table
from aietl_pipelines.api.errors import READ_ERRORS
from aietl_pipelines.api.state import ServiceRegistry, services
from aietl_pipelines.paths import project_root

router = APIRouter(prefix="/api/v1/drift-monitoring", tags=["drift-monitoring"])

ColumnName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00]+$")]
DataPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00]+$", description=(
    "a .parquet or .csv file: a local path (relative to the project root) or s3://bucket/key, under one of "
    "the server's AIETL_DATA_ROOTS"))]
# finite numbers only, and small enough that squaring them in the statistics stays finite
Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e150, le=1e150)]
Value = Annotated[str, Field(max_length=10_000)] | StrictBool | StrictInt | Number | None
Rows = Annotated[list[Annotated[dict[ColumnName, Value], Field(max_length=1000)]],
                 Field(min_length=1, max_length=MAX_DRIFT_ROWS)]


class DetectRequest(BaseModel):
    """The guide's body (paths), or inline rows (``reference_data`` / ``current_data``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reference_data_path": "s3://bucket/training_data.parquet",
        "current_data_path": "s3://bucket/production_data.parquet", "target_column": "churn",
        "save_report": True}]})
    reference_data_path: DataPath | None = None
    current_data_path: DataPath | None = None
    reference_data: Rows | None = Field(None, description="reference rows (instead of reference_data_path)")
    current_data: Rows | None = Field(None, description="current rows (instead of current_data_path)")
    target_column: ColumnName | None = None
    features: Annotated[list[ColumnName], Field(min_length=1, max_length=1000)] | None = Field(
        None, description="columns to compare (default: every column both frames have)")
    save_report: StrictBool = True

    @model_validator(mode="after")
    def _one_source_each(self) -> DetectRequest:
        for side in ("reference", "current"):
            by_path, inline = getattr(self, f"{side}_data_path"), getattr(self, f"{side}_data")
            if (by_path is None) == (inline is None):
                raise ValueError(f"give the {side} frame once: {side}_data_path (a file) or {side}_data (rows)")
        return self


def _frame(request: DetectRequest, side: str, settings: ApiSettings) -> pd.DataFrame:
    path = getattr(request, f"{side}_data_path")
    if path is not None:
        return read_table(path, settings.data_roots, settings.max_drift_rows, settings.max_drift_file_bytes,
                          name=f"{side}_data_path")
    return pd.DataFrame(getattr(request, f"{side}_data"))


def _public_path(path: str | None) -> str | None:
    """A report path as the client may see it: relative to the project root (never a server folder)."""
    if not path:
        return None
    p = Path(path)
    return str(p.relative_to(project_root())) if p.is_relative_to(project_root()) else p.name


@router.post("/detect", dependencies=[Depends(require_read)], responses=READ_ERRORS)
async def detect(request: DetectRequest, http: Request,
                 registry: ServiceRegistry = Depends(services)) -> dict[str, Any]:
    """Drift between the reference and current frames: alert, drift share, drifted columns, per column
    results, retraining recommendation; with ``save_report`` an HTML report is kept (under the retention
    policy) and its path returned relative to the project root."""
    settings: ApiSettings = http.app.state.settings

    def run() -> dict[str, Any]:
        reference, current = _frame(request, "reference", settings), _frame(request, "current", settings)
        service = registry.drift()
        columns = None
        if request.features:
            columns = list(dict.fromkeys([*request.features, *([request.target_column] if request.target_column
                                                                 else [])]))
        report = service.detect_data_drift_sync(reference, current, request.target_column, request.save_report,
                                                columns)
        report["report_path"] = _public_path(report.get("report_path"))
        return report

    return await asyncio.to_thread(run)


class SummaryResponse(BaseModel):
    days: int
    n_reports: int
    n_alerts: int
    mean_drift_share: float | None
    max_drift_share: float | None
    reports: list[dict[str, Any]]


@router.get("/summary", dependencies=[Depends(require_read)], responses=READ_ERRORS)
async def summary(days: Annotated[int, Query(ge=1, le=3650, description="look back this many days")] = 7,
                  registry: ServiceRegistry = Depends(services)) -> SummaryResponse:
    """Drift reports of the last ``days`` days from the history."""
    return SummaryResponse(**await asyncio.to_thread(registry.drift().summary_sync, days))


class RetrainingStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    should_retrain: bool
    reason: str
    last_report_at: str | None = None
    drift_share: float | None = None


@router.get("/retraining-status", dependencies=[Depends(require_read)], responses=READ_ERRORS)
async def retraining_status(registry: ServiceRegistry = Depends(services)) -> RetrainingStatus:
    """The latest retraining recommendation."""
    return RetrainingStatus(**await asyncio.to_thread(registry.drift().retraining_status_sync))
