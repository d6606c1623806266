"""Inputs drift can be computed on but that make the result unreliable get a warning in the result; inputs it
cannot be computed on get one clear error."""

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.drift.statistics import compute_drift, input_warnings
from aietl_pipelines.drift.windows import split_windows
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.services import get_drift_monitoring_service


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(0, 1, n), "y": rng.normal(0, 1, n),
                         "kind": rng.choice(["a", "b", "c"], n)})


@pytest.fixture
def service(tmp_path):
    return get_drift_monitoring_service(report_dir=tmp_path / "reports", history_path=tmp_path / "history.jsonl")


def test_extra_current_column_is_listed(service):
    ref, cur = _frame(500), _frame(500, 1).assign(new_col=1.0)
    report = service.detect_data_drift_sync(ref, cur, save_report=False)
    assert any("['new_col'] that the reference lacks: not monitored" in w for w in report["warnings"])
    assert "new_col" not in {row["column"] for row in report["per_column"]}


def test_all_columns_skipped_is_an_error_not_a_zero_share():
    when = pd.DataFrame({"when": pd.date_range("2026-01-01", periods=50, freq="h")})
    with pytest.raises(AietlInputError, match=r"No column could be tested for drift \('when': datetime"):
        compute_drift(when, when)


def test_subset_small_sample_and_missing_timestamps_warn(service):
    ref = _frame(2000)
    assert any("subset of the reference" in w for w in input_warnings(ref, ref.iloc[100:600]))
    assert not any("subset" in w for w in input_warnings(ref, _frame(500, 1)))
    report = service.detect_data_drift_sync(ref, _frame(1, 1), save_report=False)
    assert any("only 1 current row(s) against 2,000 reference row(s)" in w for w in report["warnings"])
    stamps = pd.Series(pd.date_range("2026-01-01", periods=2000, freq="min"))
    stamps[::2] = pd.NaT
    notes = input_warnings(ref.assign(at=stamps), _frame(2000, 1).assign(at=stamps))
    assert any("reference column 'at' has 1,000 of 2,000 timestamps missing (NaT)" in w for w in notes)


def test_duplicate_columns_are_a_clear_error():
    ref = _frame(100)
    twice = pd.concat([ref, ref[["x"]]], axis=1)
    with pytest.raises(AietlInputError, match=r"current data has duplicate column name\(s\) \['x'\]"):
        compute_drift(ref, twice)
    with pytest.raises(AietlInputError, match=r"reference data has duplicate column name\(s\) \['x'\]"):
        compute_drift(twice, ref)


def test_windows_with_missing_timestamps(caplog):
    frame = _frame(200).assign(at=pd.date_range("2026-01-01", periods=200, freq="h"))
    frame.loc[::2, "at"] = pd.NaT
    reference, current = split_windows(frame, "at", (0, 3), 2)
    assert "100 of 200 timestamps missing" in caplog.text and len(reference) + len(current) <= 100
    with pytest.raises(AietlInputError, match="has no timestamps"):
        split_windows(frame.assign(at=pd.NaT), "at", (0, 3), 2)


def test_a_rerun_on_identical_frames_adds_no_history_window(service):
    ref, cur = _frame(500), _frame(500, 1)
    first = service.detect_data_drift_sync(ref, cur, save_report=False)
    service.detect_data_drift_sync(ref, cur, save_report=False)
    assert len(service.history.load()) == 1 and first["data_fingerprint"]
    service.detect_data_drift_sync(ref, _frame(500, 2), save_report=False)
    assert len(service.history.load()) == 2


def test_service_retraining_advice_on_bad_reports_is_a_clear_error(service):
    with pytest.raises(AietlInputError, match="must be a dict"):
        service.should_trigger_retraining_sync(["drift"])
    with pytest.raises(AietlInputError, match="'drift_share' must be a number between 0 and 1, got 'high'"):
        service.should_trigger_retraining_sync({"drift_share": "high"})


def test_pipeline_summary_lists_rows_without_a_timestamp(tmp_path):
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    from aietl_pipelines.datagen.telemetry import generate_etl_runs
    from aietl_pipelines.pipelines.drift_monitoring import create_pipeline

    params = {"time_column": "started_at", "reference_days": [0, 10], "current_last_days": 5,
              "columns": ["duration_seconds", "cpu_usage", "failed"], "alert_threshold": 0.3,
              "retraining_rules": {}}
    runs = generate_etl_runs(n_pipelines=3, days=20, runs_per_day=12, drift_start_day=14, seed=1)
    runs.loc[runs.index[::2], "started_at"] = pd.NaT
    catalog = DataCatalog({"etl_runs": MemoryDataset(runs), "params:drift_monitoring": MemoryDataset(params),
                           "drift_history": MemoryDataset([]), "drift_summary": MemoryDataset()})
    pipeline = create_pipeline().to_outputs("drift_summary")
    SequentialRunner().run(pipeline, catalog)
    warnings = catalog.load("drift_summary")["warnings"]
    assert any(f"'started_at' has {len(runs) // 2:,} of {len(runs):,} timestamps missing (NaT)" in w for w in warnings)
