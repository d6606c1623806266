"""Fault injection on `kedro run --pipeline feature_engineering` (real subprocesses): killed with SIGKILL while
it publishes features to Feast, and several runs at once on one project. After each: the offline source is
whole (or absent), the Feast registry and the SQLite online store are readable, and the next run succeeds."""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.features.compute import compute_pipeline_features
from tests.faults.conftest import ATTEMPTS, report
from tests.test_run import KEDRO, _copy_project

pytestmark = pytest.mark.faults

ARGS = [KEDRO, "run", "--env", "test", "--pipeline", "feature_engineering"]


def _env(project: Path) -> dict[str, str]:
    import os

    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db", "AIETL_TEST_DATA": str(project / "data"),
            "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


@pytest.fixture(scope="module")
def project():
    folder = Path(tempfile.mkdtemp(prefix="aietl-faults-features-"))
    project = _copy_project(folder)
    runs = generate_etl_runs(n_pipelines=6, days=10, runs_per_day=12, seed=5)
    (project / "data" / "01_raw").mkdir(parents=True)
    runs.to_parquet(project / "data" / "01_raw" / "etl_runs.parquet", index=False)
    # MLflow creates its SQLite store with alembic migrations that race when three first runs start at once
    # ("Online migration expected to match one row"): create it before, as a first run would
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    # the experiment too: kedro-mlflow's hook creates it on a first run, and three first runs race on its name
    if client.get_experiment_by_name("aietl_pipelines") is None:
        client.create_experiment("aietl_pipelines")
    yield project, compute_pipeline_features(runs)
    shutil.rmtree(folder, ignore_errors=True)


def start(project: Path) -> subprocess.Popen:
    return subprocess.Popen(ARGS, cwd=project, env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def check_published(project: Path, expected: pd.DataFrame) -> dict[str, object]:
    """What a reader sees now: the offline source whole or absent, registry and online store readable."""
    from aietl_pipelines.features.store import FeatureStoreService

    data = project / "data"
    features = data / "04_feature" / "pipeline_features.parquet"
    state: dict[str, object] = {"offline": "absent"}
    if features.exists():
        frame = pd.read_parquet(features)  # never a partial file
        assert len(frame) == len(expected)
        state["offline"] = "whole"
    online = data / "feast_repo" / "data" / "online_store.db"
    if online.exists():
        with sqlite3.connect(online) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        state["online"] = "ok"
    if (data / "feast_repo" / "data" / "registry.db").exists():
        service = FeatureStoreService(repo_path=data / "feast_repo", features_path=features)
        state["views"] = len(service.store.list_feature_views())  # the registry parses
    return state


def check_served(project: Path, expected: pd.DataFrame) -> None:
    """After a successful run: online values are the latest offline row of each pipeline."""
    from aietl_pipelines.features.store import FeatureStoreService

    data = project / "data"
    service = FeatureStoreService(repo_path=data / "feast_repo", features_path=data / "04_feature" / "pipeline_features.parquet")
    ids = sorted(expected["pipeline_id"].unique())
    online = service.get_pipeline_features(ids, ["avg_execution_time"])
    last = expected.sort_values("event_timestamp").groupby("pipeline_id")["avg_execution_time"].last()
    np.testing.assert_allclose(online["avg_execution_time"].to_numpy(float), last.loc[ids].to_numpy(float))


def test_concurrent_feature_runs_one_killed_mid_publish(project):
    """Three `kedro run --pipeline feature_engineering` at once on one project (they used to share one temp
    file name); the first to start publishing is killed with SIGKILL at a random moment of its save."""
    project, expected = project
    rng = random.Random(3)
    outcomes, kills, survivors_ok, survivors = [], 0, 0, 0
    for _ in range(ATTEMPTS):
        procs = [start(project) for _ in range(3)]
        victim = None
        deadline = time.monotonic() + 600
        while victim is None and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            if list((project / "data").rglob(".pipeline_features.parquet.lock")):  # a save has begun
                time.sleep(rng.uniform(0.0, 1.0))
                victim = procs[0]
            time.sleep(0.01)
        if victim is not None and victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
            kills += 1
        outcomes.append(check_published(project, expected))  # what readers see right after the kill
        outputs = [p.communicate(timeout=900)[0] for p in procs]
        for proc, output in zip(procs, outputs, strict=True):
            if proc.returncode == -signal.SIGKILL:
                continue
            survivors += 1
            survivors_ok += proc.returncode == 0
            assert proc.returncode == 0 and "FileNotFoundError" not in output, output[-3000:]
    assert check_published(project, expected)["offline"] == "whole"
    check_served(project, expected)
    report("3 concurrent kedro run --pipeline feature_engineering, one killed", attempts=ATTEMPTS, kills=kills,
           survivors=survivors, survivors_ok=survivors_ok,
           offline_whole_after_kill=sum(o["offline"] == "whole" for o in outcomes),
           offline_absent_after_kill=sum(o["offline"] == "absent" for o in outcomes))
    assert kills >= 1 and survivors_ok == survivors >= 2
