"""The drift_monitoring pipeline on an in-memory catalog with SequentialRunner."""

from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.pipelines.drift_monitoring import create_pipeline

PARAMS = {
    "time_column": "started_at", "reference_days": [0, 10], "current_last_days": 5,
    "columns": ["duration_seconds", "cpu_usage", "memory_usage_mb", "pipeline_type", "source_system", "failed"],
    "target_column": "failed", "alert_threshold": 0.3, "tests": {}, "thresholds": {}, "correction": None,
    "retraining_rules": {"drift_share_threshold": 0.3, "critical_columns": [], "consecutive_windows": 1, "cooldown_days": 0},
}


def _run(runs, tmp_path):
    catalog = DataCatalog({
        "etl_runs": MemoryDataset(runs), "params:drift_monitoring": MemoryDataset(PARAMS),
        "drift_history": MemoryDataset([]),
        "drift_summary": JSONDataset(filepath=str(tmp_path / "summary.json")),
    })
    result = SequentialRunner().run(create_pipeline(), catalog)
    out = {name: ds.load() if hasattr(ds, "load") else ds for name, ds in result.items()}
    out["drift_summary"] = catalog.load("drift_summary")
    return out


def test_drift_episode_raises_alert_and_recommends_retraining(tmp_path):
    out = _run(generate_etl_runs(n_pipelines=6, days=20, runs_per_day=12, drift_start_day=14, seed=1), tmp_path)
    summary = out["drift_summary"]
    assert summary["alert_triggered"]
    assert {"duration_seconds", "cpu_usage", "memory_usage_mb", "source_system"} <= set(summary["drifted_columns"])
    assert summary["retraining_recommendation"]["should_retrain"]
    assert out["drift_metrics"]["drift_share"] == summary["drift_share"]
    assert "ALERT" in out["drift_report_html"] and "duration_seconds" in out["drift_report_html"]
    assert out["drift_history_new_entry"][0]["drift_share"] == summary["drift_share"]


def test_evidently_report_by_parameter(tmp_path):
    PARAMS["report_engine"] = "evidently"
    try:
        out = _run(generate_etl_runs(n_pipelines=3, days=20, runs_per_day=6, drift_start_day=14, seed=1), tmp_path)
    finally:
        PARAMS.pop("report_engine")
    html = out["drift_report_html"]
    assert "root_metric_" in html and "Drifted" in html and "ALERT" not in html  # Evidently's page, not ours


def test_no_drift_no_alert(tmp_path):
    out = _run(generate_etl_runs(n_pipelines=6, days=20, runs_per_day=12, drift_start_day=None, seed=1), tmp_path)
    assert not out["drift_summary"]["alert_triggered"]
    assert not out["drift_summary"]["retraining_recommendation"]["should_retrain"]
