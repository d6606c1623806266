"""Feast's Spark offline store and `spark.engine` batch engine behind the project's feature store adapter
(`features.store.FeatureStoreService(offline_store="spark")`, chosen by `conf/spark/catalog.yml`).

Historical retrieval is Feast's own point-in-time SQL on Spark (`SparkOfflineStore`); materialization is Feast's
`spark.engine` (the latest row per entity computed on Spark, written to the online store by the executors).
What the adapter adds: the entity rows come back exactly once each, in the caller's order, with the pandas path's
columns and dtypes (a row number travels through the join), and Spark reads the parquet sources, which are
written with microsecond timestamps (Spark rejects nanosecond INT64 timestamps).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.features import definitions as defs

ROW = "_aietl_row"
#: Feast sets this on the session it finds (backquoted names become regexes); restored after each Feast call.
_FEAST_SESSION_KEYS = ("spark.sql.parser.quotedRegexColumnNames",)


def repo_settings(online_is_sqlite: bool) -> dict[str, Any]:
    """`offline_store` and `batch_engine` for RepoConfig: Feast's SparkOfflineStoreConfig and SparkComputeEngineConfig
    over the process's session (`spark.get_spark`, the session of `kedro run --env spark`). A SQLite online store
    is written by one task (SQLite has one writer); other online stores by every partition."""
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStoreConfig

    from aietl_pipelines.spark.session import DEFAULT_CONF

    conf = dict(DEFAULT_CONF)
    # RepoConfig takes the engine as a dict (its `type` names feast's SparkComputeEngine) and builds the config
    engine = {"type": "spark.engine", "spark_conf": conf, "partitions": 1 if online_is_sqlite else 0}
    return {"offline_store": SparkOfflineStoreConfig(spark_conf=conf), "batch_engine": engine}


def microsecond_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its tz-aware timestamp columns at microsecond resolution (floored), as Spark reads them."""
    out = frame.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            out[name] = out[name].dt.floor("us").astype(pd.DatetimeTZDtype("us", dtype.tz))
        elif pd.api.types.is_datetime64_dtype(dtype):
            out[name] = out[name].dt.floor("us").astype("datetime64[us]")
    return out


@contextmanager
def _feast_on_spark() -> Iterator[None]:
    """A call into Feast's Spark code: its "experimental feature in alpha development" warnings silenced (once per
    source and call), and the settings it changes on the shared session undone afterwards."""
    import warnings

    from aietl_pipelines.spark.session import get_spark

    spark = get_spark()
    before = {key: spark.conf.get(key, None) for key in _FEAST_SESSION_KEYS}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*experimental feature in alpha", category=RuntimeWarning)
            yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _feature_column(values: pd.Series, dtype: Any) -> pd.Series:
    """A retrieved feature as the pandas path types it: float64, or int64 for an integer feature found for every
    row (missing integers are NaN, as with merge_asof)."""
    numbers = values.astype("float64")
    if str(dtype) == "Int64" and not numbers.isna().any():
        return numbers.astype("int64")
    return numbers


def historical_features(store: Any, entity_df: pd.DataFrame, timestamps: pd.Series,
                        refs: Sequence[str], fields: Mapping[str, Any]) -> pd.DataFrame:
    """Point-in-time features of each entity row through Feast's Spark offline store, as the pandas path returns
    them: entity_df's own columns (minus the requested feature names), then each feature, one row per entity row
    in the caller's order.

    Args:
        store: The Feast FeatureStore configured with the Spark offline store (its views on SparkSources).
        entity_df: The caller's rows (validated: pipeline ids, UTC timestamps).
        timestamps: entity_df's event_timestamp parsed to UTC.
        refs: `view:feature` references.
        fields: Feature name -> Feast type (Int64 features come back int64 when found for every row).
    """
    names = [ref.split(":", 1)[1] for ref in refs]
    entity = pd.DataFrame({ROW: np.arange(len(entity_df), dtype="int64"),
                           defs.JOIN_KEY: entity_df[defs.JOIN_KEY].astype(str).to_numpy(),
                           "event_timestamp": timestamps.to_numpy()})
    entity = microsecond_timestamps(entity.assign(event_timestamp=pd.to_datetime(entity["event_timestamp"], utc=True)))
    with _feast_on_spark():
        job = store.get_historical_features(entity_df=entity, features=list(refs))
        got = job.to_spark_df().select(ROW, *names).toPandas()
    got = got.sort_values(ROW, kind="stable")
    if len(got) != len(entity) or not np.array_equal(got[ROW].to_numpy(), entity[ROW].to_numpy()):
        raise RuntimeError(f"Feast's Spark offline store returned {len(got)} rows for {len(entity)} entity rows.")
    result = entity_df.drop(columns=[n for n in names if n in entity_df.columns]).reset_index(drop=True)
    for name in names:
        result[name] = _feature_column(got[name].reset_index(drop=True), fields[name])
    return result


def materialize(store: Any, view: str, source: Path, start: datetime, end: datetime) -> int:
    """Feast's own `materialize` of one view between the dates (inclusive) through the `spark.engine` batch engine
    (the interval is recorded in the registry); returns the number of entities with rows in the interval."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark.session import get_spark

    with _feast_on_spark():
        store.materialize(start_date=start, end_date=end, feature_views=[view])
    rows = get_spark().read.parquet(str(source))
    stamp = F.col("event_timestamp")
    return rows.where((stamp >= F.lit(start)) & (stamp <= F.lit(end))).select(defs.JOIN_KEY).distinct().count()
