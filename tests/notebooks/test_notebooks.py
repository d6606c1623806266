"""Every notebook runs top to bottom on small data (KEDRO_ENV=test)."""

import mlflow
import pandas as pd
import pytest

from aietl_pipelines.retraining.model import train_failure_model
from aietl_pipelines.retraining.registry import register_model
from tests.notebook_utils import run_notebook


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01-dedupe-exploration", "02-drift-exploration", "03-feature-exploration"])
def test_notebook_runs(name, tmp_path):
    nb = run_notebook(f"notebooks/{name}.ipynb", env="test", AIETL_TEST_DATA=str(tmp_path))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.slow
def test_model_review_notebook_reads_runs_and_champion(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    try:
        frame = pd.DataFrame({"x": range(200), "label": [0, 1] * 100})
        model = train_failure_model(frame, ["x"], {"algorithm": "logistic_regression", "min_training_rows": 10})
        for promote in (True, False):
            register_model(model, "pipeline_failure_model", frame[["x"]].head(3).astype(float), promote,
                           tags={"holdout_roc_auc": "0.7", "holdout_brier": "0.1"})
    finally:
        mlflow.set_tracking_uri(None)
    nb = run_notebook("notebooks/04-model-review.ipynb", env="test", MLFLOW_TRACKING_URI=uri, AIETL_TEST_DATA=str(tmp_path))
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "champion version: 1" in text
