"""The drift_monitoring and feature_engineering pipelines with `engine: spark` against `engine: pandas`:
the same Kedro pipelines, only the parameter differs (as in conf/spark/parameters.yml)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.pipelines.drift_monitoring import create_pipeline as drift_pipeline

pytestmark = pytest.mark.spark

PARAMS = {
    "time_column": "started_at", "reference_days": [0, 10], "current_last_days": 5,
    "columns": ["duration_seconds", "cpu_usage", "memory_usage_mb", "error_count", "pipeline_type",
                "source_system", "failed"],
    "target_column": "failed", "alert_threshold": 0.3, "tests": {}, "thresholds": {}, "correction": None,
    "retraining_rules": {"drift_share_threshold": 0.3, "critical_columns": [], "consecutive_windows": 1,
                         "cooldown_days": 0},
}


def _drift(runs: pd.DataFrame, engine: str, folder) -> dict:
    catalog = DataCatalog({
        "etl_runs": MemoryDataset(runs), "params:drift_monitoring": MemoryDataset({**PARAMS, "engine": engine}),
        "drift_history": MemoryDataset([]),
        "drift_summary": JSONDataset(filepath=str(folder / f"{engine}_summary.json")),
        "drift_column_results": ParquetDataset(filepath=str(folder / f"{engine}_columns.parquet")),
    })
    SequentialRunner().run(drift_pipeline(), catalog)
    return {"summary": catalog.load("drift_summary"), "table": catalog.load("drift_column_results")}


def test_drift_pipeline_same_verdicts_on_spark(spark, tmp_path):
    runs = generate_etl_runs(n_pipelines=5, days=20, runs_per_day=12, drift_start_day=14, seed=1)
    for col in ("started_at", "finished_at"):
        runs[col] = runs[col].dt.floor("us")
    on_pandas, on_spark = _drift(runs, "pandas", tmp_path), _drift(runs, "spark", tmp_path)
    assert on_spark["summary"]["drifted_columns"] == on_pandas["summary"]["drifted_columns"]
    assert on_spark["summary"]["alert_triggered"] == on_pandas["summary"]["alert_triggered"]
    assert on_spark["summary"]["drift_share"] == on_pandas["summary"]["drift_share"]
    left = on_pandas["table"].set_index("column").sort_index()
    right = on_spark["table"].set_index("column").sort_index()
    assert right["test"].tolist() == left["test"].tolist()
    np.testing.assert_allclose(right["score"].to_numpy(float), left["score"].to_numpy(float), rtol=1e-9)
