"""A rerun on identical training data and parameters registers no new model version (real MLflow, sqlite)."""

import mlflow
import numpy as np
import pandas as pd

from aietl_pipelines.retraining.model import train_failure_model
from aietl_pipelines.retraining.registry import (
    FINGERPRINT_TAG,
    register_model,
    training_fingerprint,
)

FEATURES = ["a", "b"]
PARAMS = {"algorithm": "logistic_regression", "cv": 2, "min_training_rows": 10, "seed": 1}


def _train(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(0, 1, 80), "b": rng.normal(0, 1, 80)})
    return frame.assign(label=(frame["a"] + rng.normal(0, 0.5, 80) > 0).astype(int))


def _register(train: pd.DataFrame, promote: bool) -> str:
    model = train_failure_model(train, FEATURES, PARAMS)
    tags = {FINGERPRINT_TAG: training_fingerprint(train, FEATURES, PARAMS)}
    return register_model(model, "idempotent_model", train[FEATURES].head(3), promote, tags)


def test_identical_training_data_registers_no_new_version(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        first = _register(_train(0), promote=True)
        again = _register(_train(0), promote=False)  # the same data and parameters: the same version
        client = mlflow.MlflowClient()
        assert again == first
        assert len(client.search_model_versions("name='idempotent_model'")) == 1
        assert str(client.get_model_version_by_alias("idempotent_model", "champion").version) == first
        other = _register(_train(1), promote=False)  # new data: a new version
        assert other != first and len(client.search_model_versions("name='idempotent_model'")) == 2
        assert training_fingerprint(_train(0), FEATURES, {**PARAMS, "seed": 2}) != \
            training_fingerprint(_train(0), FEATURES, PARAMS)
    finally:
        mlflow.set_tracking_uri(None)
