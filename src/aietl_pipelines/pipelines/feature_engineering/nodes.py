"""Nodes of the feature_engineering pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aietl_pipelines.features.compute import feature_summary
from aietl_pipelines.features.engines import feature_builder


def build_pipeline_features(runs: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Rolling per-pipeline features, one row per run, point-in-time safe.

    Args:
        runs: ETL run telemetry.
        params: ``feature_engineering`` parameters (short_window, long_window).
    """
    return feature_builder(params.get("engine"))(runs, params["short_window"], params["long_window"])


def summarize_features(features: pd.DataFrame) -> dict[str, float]:
    """Rows, entities and feature means for MLflow and Prometheus."""
    return feature_summary(features)
