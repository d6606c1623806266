"""The project's feature store on Feast's Spark offline store (`offline_store="spark"`, conf/spark) against the
default path (the project's NumPy point-in-time join and bulk SQLite materialization): the same historical
features for every entity row, in order, and the same online values after materialization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.features import definitions as defs
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.retraining.dataset import next_run_failure_labels

pytestmark = pytest.mark.spark

REFS = [f"{defs.FEATURE_VIEW}:{n}" for n in defs.BATCH_FIELDS] + [f"{defs.REALTIME_VIEW}:current_cpu_usage"]


def _entity_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """Labels in shuffled order with repeated rows, an unknown pipeline and a row before any feature."""
    labels = next_run_failure_labels(runs)
    rows = pd.concat([labels, labels.iloc[:7]], ignore_index=True).sample(frac=1.0, random_state=3)
    extra = pd.DataFrame({"pipeline_id": ["no_such_pipeline", labels["pipeline_id"].iloc[0]],
                          "event_timestamp": [labels["event_timestamp"].max(), pd.Timestamp("2000-01-01", tz="UTC")],
                          "label": [0, 1]})
    return pd.concat([rows, extra], ignore_index=True)


@pytest.fixture(scope="module")
def stores(spark, tmp_path_factory):
    """(spark-offline-store service, default service, features, entity rows) on the same telemetry."""
    from aietl_pipelines.features.store import FeatureStoreService

    root = tmp_path_factory.mktemp("feast_spark")
    runs = generate_etl_runs(n_pipelines=4, days=10, seed=11)
    for col in ("started_at", "finished_at"):  # Spark stores microseconds (the generator draws nanoseconds)
        runs[col] = runs[col].dt.floor("us")
    every = compute_pipeline_features(runs, "24h", "7d")
    features = every[every.index % 5 != 0].reset_index(drop=True)  # gaps: fall back on older rows
    features = features.assign(failure_probability=np.linspace(0.0, 1.0, len(features)))
    pushed = features[["pipeline_id", "event_timestamp"]].iloc[::9].assign(
        current_cpu_usage=0.5, current_memory_usage=100.0, anomaly_detected=0)
    services = []
    for name, offline in (("spark", "spark"), ("file", "file")):
        service = FeatureStoreService(repo_path=root / name, features_path=root / name / "features.parquet",
                                      offline_store=offline)
        service.write_offline_source(features)
        service.apply()
        service.push_features(defs.PUSH_SOURCE, pushed, to="offline")
        services.append(service)
    return services[0], services[1], features, _entity_rows(runs)


def test_historical_features_equal_the_pandas_join(stores, spark):
    on_spark, default, _, entity = stores
    before = spark.conf.get("spark.sql.parser.quotedRegexColumnNames")
    got = on_spark.get_historical_features(entity, REFS)
    # Feast turns on regex column names on the session it uses; the adapter puts the shared session back
    assert spark.conf.get("spark.sql.parser.quotedRegexColumnNames") == before
    expected = default.get_historical_features(entity, REFS)
    assert len(got) == len(entity)
    assert got["event_timestamp"].equals(entity["event_timestamp"].reset_index(drop=True))  # order kept
    assert got["avg_execution_time"].iloc[-2:].isna().all()  # the unknown pipeline, the row before any feature
    assert got["current_cpu_usage"].notna().any()  # the second (push source) view was joined
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0)


def test_spark_engine_materialization_serves_the_same_online_values(stores):
    on_spark, default, features, _ = stores
    start = features["event_timestamp"].min().to_pydatetime()
    end = (features["event_timestamp"].max() + pd.Timedelta(seconds=1)).to_pydatetime()
    assert on_spark.materialize(start, end) == default.materialize(start, end) == features["pipeline_id"].nunique()
    ids = sorted(features["pipeline_id"].unique()) + ["no_such_pipeline"]
    got, expected = on_spark.get_pipeline_features(ids), default.get_pipeline_features(ids)
    pd.testing.assert_frame_equal(got, expected)
    assert got["avg_execution_time"].notna().sum() == len(ids) - 1
