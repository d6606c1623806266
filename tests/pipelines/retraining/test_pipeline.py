"""Retraining end to end on generated telemetry with a known drift episode, MLflow on a temp sqlite store."""

from __future__ import annotations

import mlflow
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.datasets import (
    ChampionModelDataset,
    FailurePredictionsDataset,
    FeastFeatureViewDataset,
    JSONLinesDataset,
    RegisteredModelDataset,
)
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.features.store import FeatureStoreService
from aietl_pipelines.pipelines.drift_monitoring.nodes import (
    build_drift_summary,
    detect_column_drift,
    select_drift_windows,
)
from aietl_pipelines.pipelines.retraining import create_pipeline
from aietl_pipelines.retraining.audit import load_audit_log

MODEL = "failure_model_test"
FEATURES = ["avg_execution_time", "success_rate", "error_count", "avg_cpu_usage", "avg_memory_usage",
            "run_count", "avg_execution_time_7d", "success_rate_7d", "last_duration_seconds", "last_run_failed"]
PARAMS = {"force": False, "model_name": MODEL, "features": FEATURES, "holdout_days": 4, "train_days": 10,
          "promotion_metric": "roc_auc", "promotion_margin": 0.01,
          "model": {"algorithm": "hist_gradient_boosting", "calibration": "sigmoid", "cv": 3, "seed": 42,
                    "max_iter": 100, "min_training_rows": 100}}
DRIFT = {"time_column": "started_at", "reference_days": [0, 14], "current_last_days": 7,
         "columns": ["duration_seconds", "cpu_usage", "memory_usage_mb", "pipeline_type", "source_system"],
         "target_column": None, "alert_threshold": 0.3, "tests": {}, "thresholds": {}, "correction": None,
         "retraining_rules": {"drift_share_threshold": 0.3, "critical_columns": [], "consecutive_windows": 1, "cooldown_days": 0}}


def drift_summary(runs):
    ref, cur = select_drift_windows(runs, DRIFT)
    table, skipped = detect_column_drift(ref, cur, DRIFT)
    return build_drift_summary(table, skipped, [], DRIFT, ref, cur)


def run_retraining(runs, tmp_path, tag):
    features = compute_pipeline_features(runs)
    feature_ds = FeastFeatureViewDataset(features_path=str(tmp_path / f"features_{tag}.parquet"), repo_path=str(tmp_path / "repo"))
    feature_ds.save(features)
    catalog = DataCatalog({
        "etl_runs": MemoryDataset(runs), "pipeline_features": feature_ds,
        "drift_summary": MemoryDataset(drift_summary(runs)), "params:retraining": MemoryDataset(PARAMS),
        "champion_model": ChampionModelDataset(MODEL), "registered_failure_model": RegisteredModelDataset(MODEL),
        "retraining_audit_entry": JSONLinesDataset(str(tmp_path / "audit.jsonl")),
        "retraining_evaluation": JSONDataset(filepath=str(tmp_path / f"evaluation_{tag}.json")),
        "failure_predictions": FailurePredictionsDataset(str(tmp_path / "pred.parquet"), repo_path=str(tmp_path / "repo"),
                                                         features_path=str(tmp_path / f"features_{tag}.parquet")),
    })
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog.load("retraining_evaluation")


@pytest.fixture
def tracking(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    yield mlflow.MlflowClient()
    mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_retrains_after_drift_and_moves_the_alias(tmp_path, tracking):
    full = generate_etl_runs(n_pipelines=12, days=42, runs_per_day=12, drift_start_day=28, seed=5)
    before = full[~full["in_drift_episode"]]
    first = run_retraining(before, tmp_path, "before")
    assert first["decision"]["train"] and first["promote"]  # no champion yet: first model becomes champion
    assert str(tracking.get_model_version_by_alias(MODEL, "champion").version) == "1"

    after = run_retraining(full, tmp_path, "after")
    assert after["decision"]["train"] and "drift share" in after["decision"]["reason"]
    assert after["candidate"]["roc_auc"] > after["champion"]["roc_auc"] + 0.01  # stale champion loses post-drift
    assert after["promote"]
    assert str(tracking.get_model_version_by_alias(MODEL, "champion").version) == "2"

    audit = load_audit_log(tmp_path / "audit.jsonl")
    assert audit["result"].tolist() == ["promoted", "promoted"]
    online = FeatureStoreService(repo_path=tmp_path / "repo", features_path=tmp_path / "features_after.parquet")
    served = online.get_pipeline_features(["pipeline_001"], ["failure_probability"])["failure_probability"].iloc[0]
    assert 0 <= served <= 1


@pytest.mark.slow
def test_no_drift_no_retraining_and_same_seed_same_metrics(tmp_path, tracking):
    runs = generate_etl_runs(n_pipelines=10, days=30, runs_per_day=12, drift_start_day=None, seed=9)
    first = run_retraining(runs, tmp_path, "a")  # bootstraps the champion
    second = run_retraining(runs, tmp_path, "b")
    assert second["decision"]["train"] is False and not second["promote"]
    assert second["champion"] == first["candidate"]  # the champion scores exactly as when it was trained
    assert len(tracking.search_model_versions(f"name='{MODEL}'")) == 1
    assert load_audit_log(tmp_path / "audit.jsonl")["result"].tolist() == ["promoted", "skipped"]
