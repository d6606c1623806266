"""The schedule: `kedro airflow create` (kedro-airflow, our template) writes one DAG per scheduled pipeline with the
cadence of conf/base/airflow.yml; Airflow's own DagBag (in .venv-airflow) loads them, and each DAG's tasks cover
every node once, in the order the data flows. A pipeline name that does not exist fails with the list of names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.schedule import SCHEDULED_PIPELINES, check_pipeline_names, crontab_lines

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEDRO = str(Path(sys.executable).with_name("kedro"))
AIRFLOW_PYTHON = PROJECT_ROOT / ".venv-airflow" / "bin" / "python"
CONFIG = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "airflow.yml").read_text())


def _cadence(name: str) -> str:
    return {**CONFIG["default"], **CONFIG.get(name, {})}["schedule"]


def test_the_guides_cadence_is_configuration():
    assert _cadence("drift_monitoring").endswith("*/6 * * *") and _cadence("retraining").endswith("*/6 * * *")
    for daily in ("dedupe", "feature_engineering"):
        minute, hour, *rest = _cadence(daily).split()
        assert rest == ["*", "*", "*"] and hour.isdigit() and minute.isdigit()


def test_unknown_pipeline_names_are_one_line_with_the_registered_names():
    with pytest.raises(AietlInputError, match=r"Unknown pipeline 'nope': the registered pipelines are "
                                               r"data_generation, dedupe, .*retraining\.$"):
        check_pipeline_names(["dedupe", "nope"], ["dedupe", "data_generation", "retraining", "__default__"])
    check_pipeline_names(["__default__", "dedupe"], ["dedupe"])


def test_crontab_lines_follow_the_same_schedule(tmp_path):
    lines = crontab_lines(CONFIG, SCHEDULED_PIPELINES, tmp_path, "/venv/bin/kedro", "local")
    assert len(lines) == 4
    for name, line in zip(SCHEDULED_PIPELINES, lines, strict=True):
        assert line.startswith(_cadence(name) + " ")
        assert f"/venv/bin/kedro run --env local --pipeline {name} " in line and f"aietl-{name}.lock" in line


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "KEDRO_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1"}


def _create(tmp_path: Path, pipelines: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEDRO, "airflow", "create", "--pipelines", pipelines, "--group-by", "memory",
         "--jinja-file", "deploy/airflow/dag_template.j2", "--target-dir", str(tmp_path / "dags"),
         "--params", f"project_path={PROJECT_ROOT},kedro_bin={KEDRO}"],
        cwd=PROJECT_ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_dag_for_an_unknown_pipeline_fails_with_the_list_of_names(tmp_path):
    done = _create(tmp_path, "dedupe,no_such_pipeline")
    assert done.returncode != 0
    assert "Unknown pipeline 'no_such_pipeline': the registered pipelines are data_generation, dedupe," in done.stderr
    assert not (tmp_path / "dags").exists() or not any((tmp_path / "dags").iterdir())


@pytest.mark.slow
def test_generated_dags_load_in_airflows_dagbag_with_the_cadence_tasks_and_order(tmp_path):
    done = _create(tmp_path, ",".join(SCHEDULED_PIPELINES))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "dags").glob("*.py"))
    assert files == [f"aietl_pipelines_{name}_dag.py" for name in sorted(SCHEDULED_PIPELINES)]
    if not AIRFLOW_PYTHON.exists() or subprocess.run([str(AIRFLOW_PYTHON), "-c", "import airflow"],
                                                     capture_output=True).returncode != 0:
        pytest.skip("Airflow is not installed: `make airflow-venv` builds .venv-airflow (Airflow's pins clash "
                    "with the project's); the DAG files were generated but not loaded")
    home = tmp_path / "airflow_home"
    home.mkdir()
    report = subprocess.run(
        [str(AIRFLOW_PYTHON), str(Path(__file__).with_name("dagbag_report.py")), str(tmp_path / "dags")],
        env={"PATH": os.environ.get("PATH", ""), "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        capture_output=True, text=True, timeout=300)
    line = next((ln for ln in report.stdout.splitlines() if ln.startswith("DAGBAG_REPORT ")), None)
    assert line, report.stdout[-2000:] + report.stderr[-2000:]
    bag = json.loads(line.split(" ", 1)[1])
    assert bag["import_errors"] == {}
    assert set(bag["dags"]) == {f"aietl_pipelines_{name}" for name in SCHEDULED_PIPELINES}

    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    for name in SCHEDULED_PIPELINES:
        dag = bag["dags"][f"aietl_pipelines_{name}"]
        assert dag["schedule"] == _cadence(name) and dag["max_active_runs"] == 1 and dag["catchup"] is False
        # every node of the pipeline runs in exactly one task
        task_of = {}
        for task_id, task in dag["tasks"].items():
            assert f"--pipeline {name} --nodes " in task["bash_command"]
            for node in task["bash_command"].rsplit("--nodes ", 1)[1].strip("'").split(","):
                assert node not in task_of, f"{node} runs in two tasks"
                task_of[node] = task_id
        pipeline = pipelines[name]
        assert set(task_of) == {n.name for n in pipeline.nodes}
        # a task runs after every task whose nodes write what its nodes read
        order = dag["topological"]
        for node, parents in pipeline.node_dependencies.items():
            for parent in parents:
                a, b = task_of[parent.name], task_of[node.name]
                if a != b:
                    assert a in dag["tasks"][b]["upstream"], f"{name}: {a} must run before {b}"
                    assert order.index(a) < order.index(b)
