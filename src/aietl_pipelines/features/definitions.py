"""Feast objects of the project, built for a given offline source path (used by feast_repo/ and the adapter)."""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_source import DataSource
from feast.types import Float64, Int64

PROJECT = "aietl"
ENTITY = "pipeline"
JOIN_KEY = "pipeline_id"
FEATURE_VIEW = "pipeline_features"
REALTIME_VIEW = "pipeline_realtime_features"
PUSH_SOURCE = "pipeline_realtime_push_source"
FEATURE_SERVICE = "pipeline_failure_service"
TTL = timedelta(days=7)

BATCH_FIELDS = {
    "avg_execution_time": Float64, "success_rate": Float64, "error_count": Int64, "avg_cpu_usage": Float64,
    "avg_memory_usage": Float64, "run_count": Int64, "avg_execution_time_7d": Float64,
    "success_rate_7d": Float64, "error_count_7d": Int64, "last_duration_seconds": Float64,
    "last_run_failed": Int64, "failure_probability": Float64,
}
REALTIME_FIELDS = {"current_cpu_usage": Float64, "current_memory_usage": Float64, "anomaly_detected": Int64}


OFFLINE_STORES = ("file", "spark")


def _source(offline_store: str, name: str, path: str, created_timestamp_column: str = "") -> DataSource:
    """A FileSource on the parquet at `path`, or for `offline_store="spark"` a SparkSource on it (Feast's Spark
    offline store reads only SparkSources; the parquet must hold microsecond timestamps)."""
    options = {"name": name, "path": path, "timestamp_field": "event_timestamp",
               "created_timestamp_column": created_timestamp_column}
    if offline_store == "file":
        return FileSource(**options)  # type: ignore[arg-type]
    import warnings

    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "experimental feature in alpha development"
        return SparkSource(file_format="parquet", **options)  # type: ignore[arg-type]


def build_definitions(features_path: str, realtime_path: str, offline_store: str = "file") -> dict[str, object]:
    """Entity, sources, feature views and the feature service.

    Args:
        features_path: Parquet written by the feature_engineering pipeline (the batch source).
        realtime_path: Parquet that offline pushes append to (the push source's batch source).
        offline_store: "file" (FileSources, the default) or "spark" (SparkSources on the same files).
    """
    pipeline = Entity(
        name=ENTITY, join_keys=[JOIN_KEY], value_type=ValueType.STRING, description="An ETL pipeline"
    )
    batch = _source(offline_store, "pipeline_features_source", features_path, "created_timestamp")
    realtime_batch = _source(offline_store, "pipeline_realtime_batch_source", realtime_path)
    push = PushSource(name=PUSH_SOURCE, batch_source=realtime_batch)
    features = FeatureView(
        name=FEATURE_VIEW, entities=[pipeline], ttl=TTL, source=batch, online=True,
        schema=[Field(name=n, dtype=t) for n, t in BATCH_FIELDS.items()],
        description="Rolling per-pipeline run statistics (24h and 7d) and the predicted failure probability",
    )
    realtime = FeatureView(
        name=REALTIME_VIEW, entities=[pipeline], ttl=timedelta(hours=1), source=push, online=True,
        schema=[Field(name=n, dtype=t) for n, t in REALTIME_FIELDS.items()],
        description="Real-time resource usage pushed by the event stream",
    )
    service = FeatureService(name=FEATURE_SERVICE, features=[features, realtime])
    return {"entity": pipeline, "batch_source": batch, "push_source": push, "feature_view": features,
            "realtime_view": realtime, "feature_service": service}
