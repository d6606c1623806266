"""`kedro viz build` (kedro-viz's static export) shows the four pipelines and every one of their datasets,
so that the README's `make viz` promise cannot break silently."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEDRO = Path(sys.executable).with_name("kedro")
PIPELINES = ("dedupe", "drift_monitoring", "feature_engineering", "retraining")


def _registered_datasets() -> dict[str, set[str]]:
    """Dataset names of each pipeline as the project registers them (parameters excluded)."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    return {name: {d for d in pipelines[name].datasets() if not d.startswith("params:") and d != "parameters"}
            for name in PIPELINES}


@pytest.mark.slow
def test_kedro_viz_build_exports_the_four_pipelines_and_their_datasets(tmp_path):
    if not KEDRO.exists() or shutil.which("kedro", path=str(KEDRO.parent)) is None:
        pytest.skip("kedro is not installed in this interpreter's environment")
    pytest.importorskip("kedro_viz", reason="kedro-viz is not installed (make setup installs it)")
    # a copy of the project's metadata and configuration, so the export lands in tmp_path/build
    for name in ("pyproject.toml", ".telemetry"):
        if (PROJECT_ROOT / name).exists():
            shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()
    shutil.copytree(PROJECT_ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    done = subprocess.run([str(KEDRO), "viz", "build"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    api = tmp_path / "build" / "api"
    assert (tmp_path / "build" / "index.html").exists()
    main = json.loads((api / "main").read_text())
    exported = {p["id"] for p in main["pipelines"]}
    assert set(PIPELINES) <= exported, f"pipelines missing from the export: {set(PIPELINES) - exported}"
    for name, datasets in _registered_datasets().items():
        graph = json.loads((api / "pipelines" / name).read_text())
        assert graph["selected_pipeline"] == name
        data_nodes = {n["name"] for n in graph["nodes"] if n["type"] == "data"}
        tasks = [n for n in graph["nodes"] if n["type"] == "task"]
        assert tasks, f"{name}: no nodes in the export"
        assert datasets, f"{name}: the registered pipeline has no datasets"
        assert datasets <= data_nodes, f"{name}: datasets missing from the export: {sorted(datasets - data_nodes)}"
