import asyncio

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.services import get_drift_monitoring_service


@pytest.fixture
def service(tmp_path):
    return get_drift_monitoring_service(report_dir=tmp_path / "reports", history_path=tmp_path / "history.jsonl")


def _frames(shift: float, n: int = 2000):
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, n), "y": rng.normal(0, 1, n), "label": rng.integers(0, 2, n)})
    cur = pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.normal(shift, 1, n), "label": rng.integers(0, 2, n)})
    return ref, cur


def test_guide_api_detect_summary_and_retraining(service, tmp_path):
    ref, cur = _frames(1.0)
    report = asyncio.run(service.detect_data_drift(ref, cur, target_column="label"))
    assert report["alert_triggered"] and set(report["drifted_columns"]) == {"x", "y"}
    assert report["report_path"].endswith(".html") and (tmp_path / "reports").exists()
    retrain, reason = asyncio.run(service.should_trigger_retraining(report))
    assert retrain and "drift share" in reason
    summary = asyncio.run(service.generate_drift_summary(*_frames(0.0), target_column="label", features=["x"]))
    assert summary["n_columns"] == 2 and not summary["retraining_recommendation"]["should_retrain"]
    history = service.summary_sync(days=7)
    assert history["n_reports"] == 2 and history["n_alerts"] == 1
    assert service.retraining_status_sync()["should_retrain"] is False


def test_unknown_target_is_a_clear_error(service):
    with pytest.raises(AietlInputError, match="target_column 'nope'"):
        service.detect_data_drift_sync(*_frames(0.0), target_column="nope")
