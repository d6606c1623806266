"""The main job as a user runs it: `kedro run` in a copy of the project, then the MLflow run it left."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def _copy_project(dest: Path) -> Path:
    for item in ("conf", "feast_repo", "pyproject.toml"):
        src = PROJECT_ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("local", "data", "*.db"))
        elif src.exists():
            shutil.copy(src, dest / item)
    (dest / "conf" / "local").mkdir(exist_ok=True)
    (dest / "src").mkdir()  # Kedro wants a source dir; the package itself is the installed one
    return dest


def kedro_run(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db",
        "AIETL_TEST_DATA": str(project / "data"),
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }
    return subprocess.run(
        [KEDRO, "run", "--env", "test", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return _copy_project(tmp_path_factory.mktemp("project"))


@pytest.mark.slow
def test_kedro_run_runs_every_pipeline_and_tracks_an_mlflow_run(project):
    result = kedro_run(project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = project / "data"
    runs = pd.read_parquet(data / "01_raw" / "etl_runs.parquet")
    assert len(runs) == 8 * 21 * 12
    customers = pd.read_parquet(data / "01_raw" / "customers.parquet")
    golden = pd.read_parquet(data / "07_model_output" / "dedupe" / "golden_records.parquet")
    assert sorted(m for ids in golden["member_ids"] for m in ids) == sorted(customers["record_id"])
    assert (data / "08_reporting" / "drift_reports" / "drift_report.html").exists()
    assert (data / "04_feature" / "pipeline_features.parquet").exists()
    assert (data / "08_reporting" / "retraining_audit.jsonl").exists()
    assert not (data / "08_reporting" / "metrics.prom").exists()  # no Pushgateway configured: no metrics file

    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    try:
        found = mlflow.search_runs(experiment_names=["aietl_pipelines"], output_format="list")
        client = mlflow.MlflowClient()
        champion = client.get_model_version_by_alias("pipeline_failure_model", "champion")
        artifacts = [a.path for a in client.list_artifacts(found[0].info.run_id)]
    finally:
        mlflow.set_tracking_uri(None)
    assert len(found) == 1
    run = found[0]
    assert run.data.tags["kedro.pipeline"] == "__default__" and run.data.tags["git.commit"]
    assert run.data.params["data_generation.telemetry.n_pipelines"] == "8"
    assert run.data.metrics["dedupe_metrics.f1"] > 0.9
    assert "drift_metrics.drift_share" in run.data.metrics
    assert "retraining_metrics.candidate_roc_auc" in run.data.metrics
    assert champion.run_id == run.info.run_id
    assert "drift_reports" in artifacts


@pytest.mark.slow
def test_rerun_on_identical_data_adds_no_model_version_and_no_drift_window(project):
    """After the full run: drift + retraining again on the same data register nothing new."""
    data = project / "data"
    if not (data / "08_reporting" / "drift_history.jsonl").exists():
        pytest.skip("needs the full `kedro run` of the previous test")
    history = (data / "08_reporting" / "drift_history.jsonl").read_text().splitlines()

    def versions() -> list[str]:
        mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
        try:
            found = mlflow.MlflowClient().search_model_versions("name='pipeline_failure_model'")
        finally:
            mlflow.set_tracking_uri(None)
        return sorted(str(v.version) for v in found)

    before = versions()
    result = kedro_run(project, "--pipelines", "drift_monitoring,retraining")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert versions() == before
    assert (data / "08_reporting" / "drift_history.jsonl").read_text().splitlines() == history
    assert not list(data.rglob(".aietl-staging-*"))


@pytest.mark.slow
def test_incremental_dedupe_adds_the_held_back_records(project):
    """After the full run: `kedro run --pipeline dedupe_incremental` on the records data_generation held back."""
    data = project / "data"
    if not (data / "07_model_output" / "dedupe" / "state" / "model.json").exists():
        pytest.skip("needs the full `kedro run` of the previous test")
    old = pd.read_parquet(data / "01_raw" / "customers.parquet")
    new = pd.read_parquet(data / "01_raw" / "customers_new.parquet")
    assert len(new) > 0 and not set(new["record_id"]) & set(old["record_id"])
    result = kedro_run(project, "--pipeline", "dedupe_incremental")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    clusters = pd.read_parquet(data / "07_model_output" / "dedupe" / "clusters.parquet")
    assert clusters["record_id"].tolist() == [*old["record_id"].astype(str), *new["record_id"].astype(str)]
    truth = pd.concat([old, new], ignore_index=True)["true_cluster_id"]
    from aietl_pipelines.dedupe.evaluate import pairwise_scores

    assert pairwise_scores(clusters["cluster_id"].to_numpy(), pd.factorize(truth)[0])["f1"] > 0.9
    again = kedro_run(project, "--pipeline", "dedupe_incremental")  # the same records twice: a clear error
    assert again.returncode != 0 and "already in the earlier run" in again.stdout + again.stderr


@pytest.mark.slow
def test_missing_raw_file_gives_one_clear_message(tmp_path):
    result = kedro_run(_copy_project(tmp_path), "--pipeline", "drift_monitoring")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Input dataset(s) missing: 'etl_runs'" in output
    assert "etl_runs.parquet" in output


@pytest.mark.parametrize("env", ["base", "test"])
def test_dedupe_outputs_and_metrics_follow_the_output_dir(env, tmp_path):
    """`--params dedupe.output_dir=...` (a run on a user's file) writes every dedupe output there, metrics
    included: the sample's metrics are not overwritten."""
    from kedro.config import OmegaConfigLoader
    from omegaconf.resolvers import oc

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env,
                               custom_resolvers={"oc.env": oc.env},
                               runtime_params={"dedupe": {"output_dir": str(tmp_path / "mine")}})
    catalog = loader["catalog"]
    written = [name for name in catalog if name.startswith("dedupe_") and "filepath" in catalog[name]]
    assert {"dedupe_metrics", "dedupe_incremental_metrics", "dedupe_clusters"} <= set(written)
    for name in written:
        assert catalog[name]["filepath"].startswith(str(tmp_path / "mine")), (name, catalog[name]["filepath"])
