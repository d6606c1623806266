"""Data drift: Evidently's default statistics (and PSI) computed column by column, summaries and rules."""

from aietl_pipelines.drift.statistics import (
    DEFAULT_THRESHOLDS,
    align_frames,
    column_drift,
    compute_drift,
    infer_column_type,
)
from aietl_pipelines.drift.summary import should_trigger_retraining, summarize_drift

__all__ = [
    "DEFAULT_THRESHOLDS",
    "align_frames",
    "column_drift",
    "compute_drift",
    "infer_column_type",
    "should_trigger_retraining",
    "summarize_drift",
]
