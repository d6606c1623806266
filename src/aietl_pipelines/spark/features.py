"""Per-pipeline features from ETL run telemetry on Spark (twin of `features.compute.compute_pipeline_features`).

Each time-based rolling window of the pandas path (`rolling("24h", closed="both")` per pipeline, ordered by
`finished_at`) is a Spark window `partitionBy(pipeline_id).orderBy(epoch microseconds).rangeBetween(-w, 0)`: both
ends included, as with closed="both". Rows of one pipeline that finish at the same instant are peers in Spark's
range frame (pandas includes only the earlier ones); telemetry with one run per pipeline and instant, as ETL
run logs are, gives the same values (tests/spark/test_features_parity.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from aietl_pipelines.features.compute import REQUIRED
from aietl_pipelines.spark.drift import as_spark
from aietl_pipelines.validation import check_frame


def compute_pipeline_features(runs: Any, short_window: str = "24h", long_window: str = "7d") -> Any:
    """Rolling per-pipeline features, one row per run, as a Spark DataFrame with the pandas path's columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    runs = as_spark(runs)
    missing = [c for c in REQUIRED if c not in runs.columns]
    if missing:  # same one-line message as the pandas path
        check_frame(pd.DataFrame(columns=runs.columns), "etl_runs", REQUIRED)
    frame = (runs.select(*REQUIRED)
             .withColumn("finished_at", F.col("finished_at").cast("timestamp"))
             .withColumn("success", 1.0 - F.col("failed").cast("double"))
             .withColumn("t", F.unix_micros(F.col("finished_at"))))

    def window(span: str) -> Any:
        micros = int(pd.Timedelta(span) / pd.Timedelta(microseconds=1))
        return Window.partitionBy("pipeline_id").orderBy("t").rangeBetween(-micros, 0)

    short, long = window(short_window), window(long_window)
    out = frame.select(
        "pipeline_id",
        F.col("finished_at").alias("event_timestamp"),
        F.avg("duration_seconds").over(short).alias("avg_execution_time"),
        F.avg("success").over(short).alias("success_rate"),
        F.sum("error_count").over(short).cast("long").alias("error_count"),
        F.avg("cpu_usage").over(short).alias("avg_cpu_usage"),
        F.avg("memory_usage_mb").over(short).alias("avg_memory_usage"),
        F.count("success").over(short).cast("long").alias("run_count"),
        F.avg("duration_seconds").over(long).alias("avg_execution_time_7d"),
        F.avg("success").over(long).alias("success_rate_7d"),
        F.sum("error_count").over(long).cast("long").alias("error_count_7d"),
        F.col("duration_seconds").cast("double").alias("last_duration_seconds"),
        F.col("failed").cast("long").alias("last_run_failed"),
    )
    return (out.withColumn("failure_probability", F.lit(None).cast("double"))
               .withColumn("created_timestamp", F.col("event_timestamp")))


def to_pandas_features(features: Any) -> pd.DataFrame:
    """The Spark features as the pandas frame the Feast dataset writes (UTC timestamps, pandas path's order)."""
    frame = features.toPandas()
    for col in ("event_timestamp", "created_timestamp"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.sort_values(["event_timestamp", "pipeline_id"], kind="stable").reset_index(drop=True)
