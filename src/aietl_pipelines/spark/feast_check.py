"""Historical features of the retraining labels three ways on the data of a `kedro run --env spark`: Feast's Spark
offline store (`offline_store="spark"`), the project's join on the driver (`offline_store="file"`) and the project's
Spark join (`spark/retraining.py`); checks that the three agree and prints their times.

    python -m aietl_pipelines.spark.feast_check [--runs data/01_raw/spark/etl_runs.parquet]
        [--features data/04_feature/pipeline_features.parquet] [--master local[2]]

The Feast store is registered in a temporary repository (the project's `feast_repo` is not touched).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pandas as pd


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = step()
    return time.perf_counter() - start, value


def compare(runs_path: str, features_path: str, master: str) -> dict[str, Any]:
    """Rows and seconds of each path; raises AssertionError when a path's frame differs from the driver join's."""
    from aietl_pipelines.features import definitions as defs
    from aietl_pipelines.features.store import FeatureStoreService
    from aietl_pipelines.retraining.dataset import next_run_failure_labels
    from aietl_pipelines.spark import retraining
    from aietl_pipelines.spark.session import get_spark

    spark = get_spark({"spark.master": master})
    labels = next_run_failure_labels(pd.read_parquet(runs_path))
    names = list(defs.BATCH_FIELDS)
    repo = tempfile.mkdtemp(prefix="aietl-feast-check-")
    on_spark = FeatureStoreService(repo_path=repo, features_path=features_path, offline_store="spark")
    on_spark.apply()
    driver = FeatureStoreService(repo_path=repo, features_path=features_path)
    t_driver, expected = _timed(lambda: driver.get_historical_features(labels, names))
    t_feast, got = _timed(lambda: on_spark.get_historical_features(labels, names))
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=0)
    features = spark.read.parquet(features_path)
    t_join, joined = _timed(lambda: retraining.point_in_time_join(labels, features, names, pd.Timedelta(defs.TTL))
                            .toPandas())
    assert len(joined) == len(expected)
    return {"entity_rows": len(labels), "feature_rows": features.count(), "driver_join_s": t_driver,
            "feast_spark_store_s": t_feast, "project_spark_join_s": t_join}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="data/01_raw/spark/etl_runs.parquet")
    parser.add_argument("--features", default="data/04_feature/pipeline_features.parquet")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    result = compare(args.runs, args.features, args.master)
    print(f"{result['entity_rows']:,} entity rows x {result['feature_rows']:,} feature rows: every row equal; "
          f"driver join {result['driver_join_s']:.2f} s, Feast Spark offline store "
          f"{result['feast_spark_store_s']:.1f} s, project Spark join {result['project_spark_join_s']:.1f} s")


if __name__ == "__main__":
    main()
