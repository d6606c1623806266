"""The engine-dependent feature step, one implementation per engine, chosen by `feature_engineering.engine`
(pandas in process; spark with `kedro run --env spark`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from aietl_pipelines.engine_registry import EngineRegistry
from aietl_pipelines.features.compute import compute_pipeline_features


def _spark_features(runs, short_window: str, long_window: str) -> pd.DataFrame:
    from aietl_pipelines.spark.features import compute_pipeline_features as on_spark
    from aietl_pipelines.spark.features import to_pandas_features

    # computed on Spark; collected for the Feast dataset, which writes the offline source and the online store
    return to_pandas_features(on_spark(runs, short_window, long_window))


# values are factories (the steps themselves are plain functions)
_ENGINES: EngineRegistry[Callable[..., pd.DataFrame]] = EngineRegistry(
    "feature", "feature_engineering.engine",
    {"pandas": lambda: compute_pipeline_features, "spark": lambda: _spark_features},
)


def feature_builder(name: str | None = "pandas") -> Callable[..., pd.DataFrame]:
    """`compute_pipeline_features(runs, short_window, long_window)` of engine `name`."""
    return _ENGINES.get(name)
