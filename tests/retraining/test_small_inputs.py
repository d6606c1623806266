"""`retraining` on too little telemetry: one clear line, not scikit-learn's 'Found array with 0 sample(s)'."""

import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.pipelines.retraining.nodes import build_training_data, split_train_holdout

PARAMS = {"features": ["avg_execution_time", "success_rate", "error_count"], "holdout_days": 3, "train_days": 14}


def test_one_row_of_runs_is_a_clear_error():
    runs = generate_etl_runs(n_pipelines=1, days=1, runs_per_day=1, seed=1).head(1)
    features = compute_pipeline_features(runs, "24h", "7d")
    training = build_training_data(runs, features, PARAMS)
    with pytest.raises(AietlInputError, match="'etl_runs' gives no labelled rows .* at least two runs"):
        split_train_holdout(training, PARAMS)


def test_runs_shorter_than_the_holdout_is_a_clear_error():
    runs = generate_etl_runs(n_pipelines=2, days=2, runs_per_day=6, seed=1)
    training = build_training_data(runs, compute_pipeline_features(runs, "24h", "7d"), PARAMS)
    with pytest.raises(AietlInputError, match="nothing is left to train on before the 3-day holdout"):
        split_train_holdout(training, PARAMS)
