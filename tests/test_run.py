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
def test_kedro_run_generates_data_and_tracks_an_mlflow_run(project):
    result = kedro_run(project, "--pipeline", "data_generation")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = pd.read_parquet(project / "data" / "01_raw" / "etl_runs.parquet")
    assert len(runs) == 8 * 21 * 12
    customers = pd.read_parquet(project / "data" / "01_raw" / "customers.parquet")
    assert customers["record_id"].is_unique and len(customers) > 150

    mlflow.set_tracking_uri(f"sqlite:///{project}/mlflow.db")
    try:
        found = mlflow.search_runs(experiment_names=["aietl_pipelines"], output_format="list")
    finally:
        mlflow.set_tracking_uri(None)
    assert len(found) == 1
    tags = found[0].data.tags
    assert tags["kedro.pipeline"] == "data_generation"
    assert tags["git.commit"]
    assert found[0].data.params["data_generation.telemetry.n_pipelines"] == "8"


@pytest.mark.slow
def test_missing_raw_file_gives_one_clear_message(tmp_path):
    result = kedro_run(_copy_project(tmp_path), "--pipeline", "drift_monitoring")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Input dataset(s) missing: 'etl_runs'" in output
    assert "etl_runs.parquet" in output
