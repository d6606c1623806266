"""The notebooks run top to bottom on the test environment, show figures, print no library warnings, and stop at
their first cell with one line when the data they read does not exist yet.

The pipelines run once (module fixture) into a temp data folder and MLflow store, as a user would before opening
the notebooks; every notebook then runs in its own kernel in notebooks/, as Jupyter runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tests.notebook_utils import (
    NOTEBOOKS,
    PROJECT_ROOT,
    figures,
    output_text,
    run_notebook,
    warning_lines,
)

KEDRO = str(Path(sys.executable).with_name("kedro"))
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_is_paired_stripped_and_opens_the_project_through_kedro_ipython():
    jupytext = pytest.importorskip("jupytext", reason="jupytext is not installed (make setup installs it)")
    assert NAMES == ["01-dedupe", "02-drift", "03-features", "04-model-review"]
    assert not (NOTEBOOKS / "build_notebooks.py").exists()
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
            f"{name}.ipynb was committed with outputs: strip them (make setup installs nbstripout's git filter)"
        assert code[0].source.startswith("%load_ext kedro.ipython"), f"{name}: the first cell must load the project"
        text = "\n".join(c.source for c in code)
        assert 'matplotlib.use("Agg")' not in text and "notebook_utils import load_catalog" not in text
        paired = jupytext.read(NOTEBOOKS / f"{name}.py")
        assert [(c.cell_type, c.source) for c in paired.cells] == [(c.cell_type, c.source) for c in nb.cells], \
            f"{name}.ipynb and {name}.py differ: run `jupytext --sync notebooks/{name}.ipynb`"


def _kedro_run(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([KEDRO, "run", "--env", "test", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def project_env(tmp_path_factory) -> dict[str, str]:
    """Every pipeline run once on the test environment, then retraining again with another calibration, so that
    the registry holds a champion and a second version (challenger, or the new champion)."""
    data = tmp_path_factory.mktemp("notebook_data")
    env = {**os.environ, "KEDRO_ENV": "test", "AIETL_TEST_DATA": str(data),
           "MLFLOW_TRACKING_URI": f"sqlite:///{data}/mlflow.db", "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    _kedro_run(env)
    _kedro_run(env, "--pipeline", "retraining", "--params",
               "retraining.force=true,retraining.model.calibration=isotonic")
    return {k: env[k] for k in ("KEDRO_ENV", "AIETL_TEST_DATA", "MLFLOW_TRACKING_URI")}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01-dedupe", "02-drift", "03-features", "04-model-review"])
def test_notebook_runs_shows_figures_and_no_library_warnings(name, project_env):
    nb = run_notebook(f"notebooks/{name}.ipynb", **project_env)  # raises at the first failing cell
    assert figures(nb), f"{name}: no figure (image/png or plotly output) in any cell"
    assert not warning_lines(nb), f"{name}: library warnings in the outputs: {warning_lines(nb)[:5]}"
    if name == "04-model-review":
        text = "".join(output_text(o) for c in nb.cells for o in c.get("outputs", []))
        assert "champion version: " in text


@pytest.mark.slow
def test_notebook_without_its_data_stops_at_the_first_cell_naming_the_pipeline(tmp_path):
    empty = {"KEDRO_ENV": "test", "AIETL_TEST_DATA": str(tmp_path), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"}
    with pytest.raises(CellExecutionError) as failure:
        run_notebook("notebooks/01-dedupe.ipynb", **empty)
    assert failure.value.ename == "MissingPipelineOutput"
    message = failure.value.evalue
    assert "kedro run --pipeline data_generation --env test" in message and "kedro run --pipeline dedupe" in message
    code = [c for c in failure.value.notebook.cells if c.cell_type == "code"]
    errors = [o for o in code[0].outputs if o.output_type == "error"]
    assert len(errors) == 1 and len(errors[0].traceback) == 1, "the first cell must stop with one line"
    assert "\n" not in output_text(errors[0]).strip()
    assert all(not c.outputs for c in code[1:]), "cells after the first one ran"
