"""Project hooks: clear input errors, metrics logged to MLflow and Prometheus."""

import mlflow
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node
from kedro_datasets.pandas import ParquetDataset

from aietl_pipelines import monitoring
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.hooks import InputValidationHooks, MetricsHooks, flatten_metrics


def _catalog(path) -> DataCatalog:
    ds = ParquetDataset(
        filepath=str(path), metadata={"aietl": {"required_columns": ["run_id", "pipeline_id"]}}
    )
    return DataCatalog(datasets={"etl_runs": ds})


def _pipeline() -> Pipeline:
    return Pipeline([node(len, "etl_runs", "n_runs", name="count_runs")])


def test_missing_input_file_names_dataset_and_fix(tmp_path):
    hooks = InputValidationHooks()
    path = tmp_path / "nowhere" / "etl_runs.parquet"
    with pytest.raises(AietlInputError) as err:
        hooks.before_pipeline_run({}, _pipeline(), _catalog(path))
    message = str(err.value)
    assert "'etl_runs'" in message and str(path) in message and "kedro run" in message


def test_wrong_columns_and_empty_file(tmp_path):
    path = tmp_path / "etl_runs.parquet"
    hooks = InputValidationHooks()
    catalog = _catalog(path)
    pd.DataFrame({"run_id": ["a"], "pipeline": ["p"]}).to_parquet(path)
    hooks.before_pipeline_run({}, _pipeline(), catalog)  # the file exists: no error yet
    with pytest.raises(AietlInputError, match=r"missing column\(s\) \['pipeline_id'\]"):
        hooks.after_dataset_loaded("etl_runs", catalog.load("etl_runs"))

    pd.DataFrame({"run_id": pd.Series([], dtype=str), "pipeline_id": pd.Series([], dtype=str)}).to_parquet(path)
    with pytest.raises(AietlInputError, match="has no rows"):
        hooks.after_dataset_loaded("etl_runs", catalog.load("etl_runs"))

    pd.DataFrame({"run_id": ["a"], "pipeline_id": ["p"]}).to_parquet(path)
    hooks.after_dataset_loaded("etl_runs", catalog.load("etl_runs"))  # a good frame passes


def test_flatten_metrics_keeps_finite_numbers_only():
    flat = flatten_metrics("m", {"f1": 0.9, "n": 3, "ok": True, "bad": float("nan"), "sub": {"x": 1}, "s": "t"})
    assert flat == {"m.f1": 0.9, "m.n": 3.0, "m.ok": 1.0, "m.sub.x": 1.0}


def test_metrics_outputs_reach_mlflow_and_prometheus(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        with mlflow.start_run() as run:
            MetricsHooks().after_node_run({"drift_metrics": {"drift_share": 0.25}, "other": {"x": 1.0}})
        logged = mlflow.get_run(run.info.run_id).data.metrics
    finally:
        mlflow.set_tracking_uri(None)
    assert logged == {"drift_metrics.drift_share": 0.25}
    assert monitoring.REGISTRY.get_sample_value("aietl_metric", {"name": "drift_metrics.drift_share"}) == 0.25
