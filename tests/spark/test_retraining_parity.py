"""Retraining on Spark: the labelled point-in-time training set equals the pandas path's; batch scoring with
mlflow.pyfunc.spark_udf equals the model's own predict_proba."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.retraining import dataset, model

pytestmark = pytest.mark.spark

FEATURES = ["avg_execution_time", "success_rate", "error_count", "run_count", "last_duration_seconds",
            "last_run_failed", "failure_probability"]


@pytest.fixture(scope="module")
def runs_and_features():
    runs = generate_etl_runs(n_pipelines=5, days=12, seed=11)
    for col in ("started_at", "finished_at"):
        runs[col] = runs[col].dt.floor("us")
    features = compute_pipeline_features(runs)
    features = features.iloc[::2].reset_index(drop=True)  # gaps: some entity rows get older rows or none (ttl)
    return runs, features


def test_training_set_equals_pandas(spark, runs_and_features):
    from aietl_pipelines.spark.retraining import build_training_data

    runs, features = runs_and_features
    expected = dataset.build_training_set(dataset.next_run_failure_labels(runs), features, FEATURES)
    got = build_training_data(runs, features, FEATURES)
    assert len(got) == len(expected)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False, rtol=1e-12)


def test_spark_udf_scores_equal_predict_proba(spark, runs_and_features):
    from aietl_pipelines.spark.retraining import score_failure_probability

    runs, features = runs_and_features
    names = FEATURES[:-1]
    train = dataset.build_training_set(dataset.next_run_failure_labels(runs), features, names).dropna()
    fitted = model.train_failure_model(train, names, {"algorithm": "logistic_regression", "cv": 2, "seed": 0})
    latest = features.sort_values("event_timestamp").drop_duplicates("pipeline_id", keep="last")
    expected = model.predict_failure_probability(fitted, latest)
    scored = score_failure_probability(fitted, latest[["pipeline_id", *names]]).toPandas()
    got = scored.set_index("pipeline_id").loc[latest["pipeline_id"], "failure_probability"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9)
