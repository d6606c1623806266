"""Spark feature computation against the pandas path: identical rows and values (to 1e-9)."""

from __future__ import annotations

import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.features.compute import compute_pipeline_features

pytestmark = pytest.mark.spark


def test_rolling_features_equal_pandas(spark):
    from aietl_pipelines.spark.features import compute_pipeline_features as spark_features
    from aietl_pipelines.spark.features import to_pandas_features

    runs = generate_etl_runs(n_pipelines=6, days=20, seed=5)
    for col in ("started_at", "finished_at"):  # Spark stores microseconds (the generator draws nanoseconds)
        runs[col] = runs[col].dt.floor("us")
    expected = compute_pipeline_features(runs, "24h", "7d")
    got = to_pandas_features(spark_features(runs, "24h", "7d"))
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-9, atol=1e-9)
