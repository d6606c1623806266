"""Point-in-time safe per-pipeline features from ETL run telemetry.

One feature row per run, stamped with the run's ``finished_at`` (the event timestamp): every value is computed
from runs of the same pipeline that finished at or before that time, so a point-in-time join never leaks the
future.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from aietl_pipelines.validation import check_frame

REQUIRED = ["pipeline_id", "finished_at", "duration_seconds", "failed", "error_count", "cpu_usage",
            "memory_usage_mb"]
#: Feature columns of the `pipeline_features` feature view (besides the keys and timestamps).
FEATURE_COLUMNS = [
    "avg_execution_time", "success_rate", "error_count", "avg_cpu_usage", "avg_memory_usage", "run_count",
    "avg_execution_time_7d", "success_rate_7d", "error_count_7d", "last_duration_seconds", "last_run_failed",
    "failure_probability",
]


def compute_pipeline_features(runs: pd.DataFrame, short_window: str = "24h", long_window: str = "7d") -> pd.DataFrame:
    """Rolling per-pipeline features, one row per run.

    Args:
        runs: ETL run telemetry (see `aietl_pipelines.datagen.telemetry`).
        short_window: Window of the main features (avg_execution_time, success_rate, error_count, ...).
        long_window: Window of the ``*_7d`` features.

    Returns:
        pipeline_id, event_timestamp, created_timestamp and FEATURE_COLUMNS; ``failure_probability`` is null
        until the retraining pipeline writes predictions back.
    """
    check_frame(runs, "etl_runs", REQUIRED)
    frame = runs[REQUIRED].copy()
    frame["finished_at"] = pd.to_datetime(frame["finished_at"], utc=True)
    frame = frame.sort_values(["pipeline_id", "finished_at"], kind="stable").reset_index(drop=True)
    frame["success"] = 1.0 - frame["failed"].astype("float64")
    indexed = frame.set_index("finished_at")
    grouped = indexed.groupby("pipeline_id", sort=False)

    def roll(column: str, window: str, how: str) -> np.ndarray:
        rolled = grouped[column].rolling(window, closed="both")
        return getattr(rolled, how)().to_numpy()

    out = pd.DataFrame({
        "pipeline_id": frame["pipeline_id"].to_numpy(),
        "event_timestamp": frame["finished_at"].to_numpy(),
        "avg_execution_time": roll("duration_seconds", short_window, "mean"),
        "success_rate": roll("success", short_window, "mean"),
        "error_count": roll("error_count", short_window, "sum"),
        "avg_cpu_usage": roll("cpu_usage", short_window, "mean"),
        "avg_memory_usage": roll("memory_usage_mb", short_window, "mean"),
        "run_count": roll("success", short_window, "count"),
        "avg_execution_time_7d": roll("duration_seconds", long_window, "mean"),
        "success_rate_7d": roll("success", long_window, "mean"),
        "error_count_7d": roll("error_count", long_window, "sum"),
        "last_duration_seconds": frame["duration_seconds"].to_numpy(dtype="float64"),
        "last_run_failed": frame["failed"].to_numpy(dtype="int64"),
    })
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    for col in ("error_count", "run_count", "error_count_7d"):
        out[col] = out[col].astype("int64")
    out["failure_probability"] = np.nan
    out["created_timestamp"] = out["event_timestamp"]
    return out.sort_values(["event_timestamp", "pipeline_id"], kind="stable").reset_index(drop=True)


def feature_summary(features: pd.DataFrame, columns: Sequence[str] = FEATURE_COLUMNS) -> dict[str, float]:
    """Flat numbers for MLflow/Prometheus: rows, entities and the mean of each feature."""
    summary = {"rows": float(len(features)), "entities": float(features["pipeline_id"].nunique())}
    for col in columns:
        value = features[col].mean()
        if pd.notna(value):
            summary[f"mean_{col}"] = float(value)
    return summary
