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


def test_feast_spark_offline_store_equals_the_point_in_time_join(spark, tmp_path):
    """Feast 0.67's Spark offline store (`feast[spark]`: contrib code in feast, pyspark from `make setup`) gives the
    training rows of the project's point-in-time join, on the shared session."""
    import warnings

    from feast import Entity, FeatureStore, FeatureView, Field, RepoConfig, ValueType
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStoreConfig
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    from aietl_pipelines.features import definitions as defs
    from aietl_pipelines.features.store import point_in_time_join
    from aietl_pipelines.retraining.dataset import next_run_failure_labels

    runs = generate_etl_runs(n_pipelines=4, days=10, seed=11)
    for col in ("started_at", "finished_at"):
        runs[col] = runs[col].dt.floor("us")
    every = compute_pipeline_features(runs, "24h", "7d")
    features = every[every.index % 5 != 0]  # gaps: some entity rows fall back on older feature rows
    path = str(tmp_path / "features.parquet")
    features.astype({c: "datetime64[us, UTC]" for c in ("event_timestamp", "created_timestamp")}).to_parquet(path)
    names = ["avg_execution_time", "success_rate", "error_count", "run_count", "last_duration_seconds"]
    labels = next_run_failure_labels(runs)
    expected = point_in_time_join(labels, features, names, pd.Timedelta(defs.TTL))

    entity = Entity(name=defs.ENTITY, join_keys=[defs.JOIN_KEY], value_type=ValueType.STRING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "experimental feature in alpha development"
        source = SparkSource(name="features", path=path, file_format="parquet", timestamp_field="event_timestamp",
                             created_timestamp_column="created_timestamp")
        view = FeatureView(name=defs.FEATURE_VIEW, entities=[entity], ttl=defs.TTL, source=source,
                           schema=[Field(name=n, dtype=defs.BATCH_FIELDS[n]) for n in names])
        store = FeatureStore(config=RepoConfig(
            project="spark_check", registry=str(tmp_path / "registry.db"), provider="local",
            offline_store=SparkOfflineStoreConfig(spark_conf={"spark.sql.session.timeZone": "UTC"}),
            online_store={"type": "sqlite", "path": str(tmp_path / "online.db")},
            entity_key_serialization_version=3))
        store.apply([entity, view])
        got = store.get_historical_features(entity_df=labels,
                                            features=[f"{defs.FEATURE_VIEW}:{n}" for n in names]).to_df()

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.assign(event_timestamp=pd.to_datetime(frame["event_timestamp"], utc=True))
        return frame.sort_values(["pipeline_id", "event_timestamp"]).reset_index(drop=True)[list(expected.columns)]

    assert len(got) == len(expected) == len(labels)
    gaps = expected.merge(every.loc[every.index % 5 == 0, ["pipeline_id", "event_timestamp"]])
    assert len(gaps) and gaps["avg_execution_time"].notna().any()  # the fallback on older rows was exercised
    pd.testing.assert_frame_equal(ordered(got), ordered(expected), check_dtype=False, rtol=1e-9, atol=1e-9)
