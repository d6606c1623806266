import pandas as pd
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.retraining.decision import decide_retraining
from aietl_pipelines.retraining.evaluate import is_better
from aietl_pipelines.retraining.model import train_failure_model
from aietl_pipelines.retraining.registry import load_champion
from aietl_pipelines.tracking import check_tracking_server


def test_too_few_rows_or_one_class_is_refused():
    frame = pd.DataFrame({"x": range(300), "label": [0] * 300})
    with pytest.raises(AietlInputError, match="one class only"):
        train_failure_model(frame, ["x"], {"min_training_rows": 10})
    with pytest.raises(AietlInputError, match="Only 5 labelled rows"):
        train_failure_model(frame.head(5), ["x"], {"min_training_rows": 10})


def test_decision_and_promotion_rules():
    drift = {"drift_share": 0.5, "retraining_recommendation": {"should_retrain": True, "reason": "drift"}}
    calm = {"drift_share": 0.0, "retraining_recommendation": {"should_retrain": False, "reason": "calm"}}
    assert decide_retraining(drift)["train"] and not decide_retraining(calm)["train"]
    assert decide_retraining(calm, force=True)["reason"].startswith("forced")
    assert decide_retraining(calm, has_champion=False)["train"]
    assert is_better({"roc_auc": 0.8}, None, "roc_auc", 0.01)[0]
    assert not is_better({"roc_auc": 0.805}, {"roc_auc": 0.8}, "roc_auc", 0.01)[0]
    assert is_better({"brier": 0.05}, {"brier": 0.08}, "brier", 0.01)[0]


def test_unreachable_mlflow_names_the_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(AietlInputError, match=r"http://127.0.0.1:9/.*unreachable"):
        check_tracking_server()
    with pytest.raises(AietlInputError, match="unreachable"):
        load_champion("any")
