"""The Spark drift engine against the pandas path: identical tests and verdicts, scores within 1e-9 relative."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.drift.statistics import compute_drift
from aietl_pipelines.drift.windows import split_windows

pytestmark = pytest.mark.spark

COLUMNS = ["duration_seconds", "cpu_usage", "memory_usage_mb", "error_count", "rows_processed", "retry_count",
           "pipeline_type", "source_system", "failed"]


def _assert_same(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    expected = expected.set_index("column").sort_index()
    got = got.set_index("column").sort_index()
    assert list(got.index) == list(expected.index)
    for col in ("column_type", "test", "drifted", "psi_band", "n_reference", "n_current"):
        assert got[col].tolist() == expected[col].tolist(), col
    for col in ("score", "psi", "threshold"):
        np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float), rtol=1e-9, atol=1e-12,
                                   err_msg=col)


@pytest.fixture(scope="module")
def telemetry() -> pd.DataFrame:
    return generate_etl_runs(n_pipelines=12, days=56, seed=3)


@pytest.mark.parametrize("reference_days", [(0, 28), (0, 2)])  # > 1000 rows (Wasserstein/JS) and <= 1000 (KS/chi²/z)
def test_windows_and_default_tests_match_pandas(spark, telemetry, reference_days):
    from aietl_pipelines.spark import drift as spark_drift

    ref_pd, cur_pd = split_windows(telemetry, "started_at", reference_days, 7)
    ref_sp, cur_sp = spark_drift.split_windows(spark.createDataFrame(telemetry), "started_at", reference_days, 7)
    assert (ref_sp.count(), cur_sp.count()) == (len(ref_pd), len(cur_pd))
    expected, skipped = compute_drift(ref_pd[COLUMNS], cur_pd[COLUMNS])
    got, got_skipped = spark_drift.compute_drift(ref_sp.select(COLUMNS), cur_sp.select(COLUMNS))
    assert got_skipped == skipped
    _assert_same(expected, got)
    assert set(expected["test"]) == ({"wasserstein", "jensenshannon"} if reference_days[1] == 28
                                     else {"ks", "chisquare", "z"}) or len(ref_pd) <= 1000


def test_distributed_passes_match_pandas(spark):
    """Numeric columns with more distinct values than the collect limit go through the two mapInPandas passes."""
    from aietl_pipelines.spark import drift as spark_drift

    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 6000).round(3), "y": rng.exponential(2, 6000)})
    cur = pd.DataFrame({"x": rng.normal(0.2, 1.1, 5000).round(3), "y": rng.exponential(2.2, 5000)})
    ref.loc[::97, "y"] = np.nan
    cur.loc[::89, "x"] = np.inf
    expected, _ = compute_drift(ref, cur, tests={"y": "psi"})
    got, _ = spark_drift.compute_drift(spark.createDataFrame(ref).repartition(3), spark.createDataFrame(cur),
                                       tests={"y": "psi"}, collect_limit=10, partitions=5)
    _assert_same(expected, got)


def test_bad_input_is_one_clear_line(spark):
    from aietl_pipelines.errors import AietlInputError
    from aietl_pipelines.spark import drift as spark_drift

    ref = spark.createDataFrame(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    cur = spark.createDataFrame(pd.DataFrame({"a": ["1", "2"], "b": ["x", "y"]}))
    with pytest.raises(AietlInputError, match="Cast both"):
        spark_drift.compute_drift(ref, cur)
    with pytest.raises(AietlInputError, match="do not have the same columns"):
        spark_drift.compute_drift(ref, cur.select("b"))
