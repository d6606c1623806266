"""The retraining steps on Spark: labels and the point-in-time training set built by Spark, the model trained on
a bounded sample on the driver, batch scoring with `mlflow.pyfunc.spark_udf`.

Twins of `aietl_pipelines.retraining.dataset.next_run_failure_labels` / `build_training_set` and of the
`predict_latest` node; tests/spark/test_retraining_parity.py checks that they give the pandas path's rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import pandas as pd

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features import definitions as defs
from aietl_pipelines.spark.drift import as_spark


def next_run_failure_labels(runs: Any) -> Any:
    """pipeline_id, event_timestamp (the run's finish), label (the next run of the pipeline failed)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    runs = as_spark(runs)
    missing = [c for c in ("pipeline_id", "finished_at", "started_at", "failed") if c not in runs.columns]
    if missing:
        raise AietlInputError(f"'etl_runs' lacks column(s) {missing}: the labels need pipeline_id, started_at, "
                              "finished_at and failed.")
    order = Window.partitionBy("pipeline_id").orderBy("started_at")
    labelled = runs.select("pipeline_id", "started_at", F.col("finished_at").cast("timestamp").alias("event_timestamp"),
                           F.lead(F.col("failed").cast("long")).over(order).alias("label"))
    return labelled.where(F.col("label").isNotNull()).drop("started_at")


def point_in_time_join(entity: Any, features: Any, feature_names: Sequence[str], ttl: pd.Timedelta,
                       join_key: str = defs.JOIN_KEY) -> Any:
    """Each entity row gets the latest feature row of its key at or before its timestamp, within ttl (ties on the
    event time: the latest created_timestamp), as the pandas `point_in_time_join` / merge_asof(backward).

    Entity and feature rows are unioned and ordered per key by (time, feature rows before entity rows at the same
    instant, created time); each entity row takes the last feature row before it as one struct, so a null value
    in the latest feature row stays null instead of falling back on an older row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    entity, features = as_spark(entity), as_spark(features)
    unknown = [f for f in feature_names if f not in features.columns]
    if unknown:
        raise AietlInputError(f"Unknown feature(s) {unknown}; available: {features.columns}.")
    created = "created_timestamp" if "created_timestamp" in features.columns else "event_timestamp"
    entity_columns = [c for c in entity.columns if c not in feature_names]
    ent = entity.select(
        *[F.col(c) for c in entity_columns],
        F.col("event_timestamp").cast("timestamp").alias("_t"), F.lit(1).alias("_is_entity"),
        F.lit(None).cast("timestamp").alias("_c"), F.monotonically_increasing_id().alias("_row"),
        F.lit(None).alias("_feature"))
    feat = features.select(
        F.col(join_key), F.col("event_timestamp").cast("timestamp").alias("_t"), F.lit(0).alias("_is_entity"),
        F.col(created).cast("timestamp").alias("_c"), F.lit(None).cast("long").alias("_row"),
        F.struct(F.col("event_timestamp").cast("timestamp").alias("ts"),
                 *[F.col(n) for n in feature_names]).alias("_feature"))
    for col in entity_columns:
        if col != join_key:
            feat = feat.withColumn(col, F.lit(None).cast(entity.schema[col].dataType))
    ent = ent.withColumn("_feature", F.lit(None).cast(feat.schema["_feature"].dataType))
    both = ent.unionByName(feat.select(*ent.columns))
    order = (Window.partitionBy(join_key).orderBy("_t", "_is_entity", F.col("_c").asc_nulls_last())
             .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    joined = both.withColumn("_match", F.last("_feature", ignorenulls=True).over(order)).where("_is_entity = 1")
    ttl_us = int(pd.Timedelta(ttl) / pd.Timedelta(microseconds=1))
    fresh = (F.col("_match").isNotNull()
             & ((F.unix_micros("_t") - F.unix_micros(F.col("_match.ts"))) <= F.lit(ttl_us)))
    return joined.select(
        *[F.col(c) for c in entity_columns], "_row",
        *[F.when(fresh, F.col(f"_match.{n}")).alias(n) for n in feature_names]).orderBy("_row").drop("_row")


def build_training_data(runs: Any, features: Any, feature_names: Sequence[str], max_rows: int = 2_000_000,
                        seed: int = 0) -> pd.DataFrame:
    """The labelled point-in-time training set built on Spark, brought to the driver (a seeded sample when it
    has more than `max_rows` rows) for scikit-learn."""
    training = point_in_time_join(next_run_failure_labels(runs), features, feature_names, pd.Timedelta(defs.TTL))
    n = training.count()
    if n > max_rows:
        training = training.sample(fraction=max_rows / n, seed=seed)
    frame = training.toPandas()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["label"] = frame["label"].astype("int64")
    return frame.sort_values("event_timestamp", kind="stable").reset_index(drop=True)


def score_failure_probability(model: Any, frame: Any) -> Any:
    """failure_probability for each row of a Spark frame with `mlflow.pyfunc.spark_udf` (the model saved as an
    MLflow model whose pyfunc returns predict_proba; executors load it once per Python worker)."""
    import mlflow.pyfunc
    import mlflow.sklearn
    from pyspark.sql import functions as F

    frame = as_spark(frame)
    names = list(getattr(model, "feature_names_", None) or model.feature_names_in_)
    folder = tempfile.mkdtemp(prefix="aietl-spark-model-")
    import skops.io

    # skops (MLflow's safe default format) loads only listed types: the model is the one just trained here
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    mlflow.sklearn.save_model(model, f"{folder}/model", pyfunc_predict_fn="predict_proba",
                              skops_trusted_types=trusted)
    udf = mlflow.pyfunc.spark_udf(frame.sparkSession, f"{folder}/model", result_type="array<double>",
                                  env_manager="local")
    inputs = [F.col(n).cast("double").alias(n) for n in names]
    return frame.withColumn("failure_probability", udf(F.struct(*inputs))[1])
