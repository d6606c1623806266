"""Fault injection on `kedro run` (real subprocesses, as a user runs it): kill -9 in the middle of a run, a
read-only data folder, an unreadable input file, an unreachable MLflow server. After each: the outputs are
the previous run's, complete, or the new run's, complete (never a mix), the user gets one line, and the next
run succeeds."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.faults.conftest import report
from tests.test_run import KEDRO, _copy_project

pytestmark = pytest.mark.faults

NEW_SEEDS = "data_generation.telemetry.seed=99,data_generation.customers.seed=98"
#: Files the data_generation + drift_monitoring pipelines publish (under the test data folder).
OUTPUTS = (
    "01_raw/etl_runs.parquet",
    "01_raw/customers.parquet",
    "01_raw/customers_new.parquet",
    "08_reporting/drift_column_results.parquet",
    "08_reporting/drift_skipped_columns.json",
    "08_reporting/drift_summary.json",
    "08_reporting/drift_reports/drift_report.html",
    "08_reporting/drift_history.jsonl",
)


def _env(project: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db",
            "AIETL_TEST_DATA": str(project / "data"), "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
            **extra}


def _args(*args: str) -> list[str]:
    return [KEDRO, "run", "--env", "test", *args]


def run(project: Path, *args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_args(*args), cwd=project, env=_env(project, **env), capture_output=True, text=True,
                          timeout=timeout)


def digests(data: Path) -> dict[str, str]:
    return {name: hashlib.sha1((data / name).read_bytes()).hexdigest() for name in OUTPUTS if (data / name).exists()}


def staging_leftovers(data: Path) -> list[Path]:
    return [p for p in data.rglob(".aietl-staging-*")]


def consistent(data: Path) -> bool:
    """The published drift summary was computed from the published etl_runs (same windows fingerprint)."""
    import json

    import yaml

    from aietl_pipelines.drift.summary import data_fingerprint
    from aietl_pipelines.pipelines.drift_monitoring.nodes import select_drift_windows

    conf = data.parent / "conf" / "test" / "parameters_drift_monitoring.yml"
    params = yaml.safe_load(conf.read_text())["drift_monitoring"]
    reference, current = select_drift_windows(pd.read_parquet(data / "01_raw" / "etl_runs.parquet"), params)
    summary = json.loads((data / "08_reporting" / "drift_summary.json").read_text())
    return summary["data_fingerprint"] == data_fingerprint(reference, current)


def _failure_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error:")]


@pytest.fixture(scope="module")
def project() -> Path:
    # not under pytest's tmp_path: pytest sessions running side by side prune each other's old temp folders
    folder = Path(tempfile.mkdtemp(prefix="aietl-faults-runs-"))
    project = _copy_project(folder)
    first = run(project, "--pipelines", "data_generation,drift_monitoring")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    yield project
    _set_read_only(project / "data", False)
    shutil.rmtree(folder, ignore_errors=True)


def _set_read_only(folder: Path, read_only: bool) -> bool:
    """Make `folder` unwritable even for root (chattr +i), or writable again; False when impossible here."""
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod((path.stat().st_mode & ~0o222) if read_only else (path.stat().st_mode | 0o200))
        return True
    if shutil.which("chattr") is None:
        return False
    result = subprocess.run(["chattr", "-R", "+i" if read_only else "-i", str(folder)], capture_output=True)
    return result.returncode == 0


def test_read_only_data_folder_is_one_line_and_loses_nothing(project):
    data = project / "data"
    before = digests(data)
    if not _set_read_only(data, True):
        pytest.skip("faults: cannot make a folder read-only here (root without chattr / immutable attribute)")
    try:
        result = run(project, "--pipeline", "drift_monitoring")
    finally:
        _set_read_only(data, False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    lines = _failure_lines(result)
    assert len(lines) == 1 and "not writable" in lines[0] and str(data) in lines[0], output[-3000:]
    assert "Traceback" not in output and "PermissionError: [Errno" not in output
    assert digests(data) == before and not staging_leftovers(data)
    # the next run (the kill test's runs below, in this module) succeeds on the same folder
    report("read-only data/", error_lines=len(lines), files_changed=0)


def test_kill_9_mid_run_publishes_nothing_and_the_next_run_succeeds(project):
    data = project / "data"
    old = digests(data)
    assert set(old) == set(OUTPUTS) and consistent(data)
    history_lines = len((data / "08_reporting" / "drift_history.jsonl").read_text().splitlines())

    # a run on new data, killed as soon as its drift results are staged (data generated, summary not yet)
    proc = subprocess.Popen(_args("--pipelines", "data_generation,drift_monitoring", "--params", NEW_SEEDS),
                            cwd=project, env=_env(project), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    staged = []
    while time.monotonic() < deadline and proc.poll() is None and not staged:
        staged = list((data / "08_reporting").glob(".aietl-staging-*/drift_column_results.parquet"))
        time.sleep(0.02)
    assert staged, "the run ended (or timed out) before its drift results were staged"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert staging_leftovers(data), "a killed run leaves its staging folder (cleaned by the next run)"
    after_kill = digests(data)
    unchanged = sum(after_kill[k] == old[k] for k in OUTPUTS)
    assert after_kill == old, "the killed run published some of its outputs"
    assert consistent(data)

    rerun = run(project, "--pipelines", "data_generation,drift_monitoring", "--params", NEW_SEEDS)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "Interrupted earlier run cleaned up" in rerun.stdout + rerun.stderr
    new = digests(data)
    changed = sorted(k for k in OUTPUTS if new[k] != old[k])
    assert set(changed) >= {"01_raw/etl_runs.parquet", "01_raw/customers.parquet",
                            "08_reporting/drift_column_results.parquet", "08_reporting/drift_summary.json",
                            "08_reporting/drift_history.jsonl"}
    assert consistent(data)
    assert len((data / "08_reporting" / "drift_history.jsonl").read_text().splitlines()) == history_lines + 1
    assert not staging_leftovers(data) and not list((data / ".runs").glob("*.json"))
    report("kill -9 mid kedro run", outputs=len(OUTPUTS), unchanged_after_kill=unchanged,
           changed_after_rerun=len(changed), leftovers_after_rerun=len(staging_leftovers(data)))


def test_unreadable_parquet_input_is_one_line(project):
    """A 0-byte etl_runs (random bytes and an empty CSV are checked in process: tests/test_hooks.py)."""
    data = project / "data-unreadable"
    shutil.copytree(project / "data" / "01_raw", data / "01_raw")
    (data / "01_raw" / "etl_runs.parquet").write_bytes(b"")
    result = run(project, "--pipeline", "drift_monitoring", AIETL_TEST_DATA=str(data))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    lines = _failure_lines(result)
    assert len(lines) == 1 and "'etl_runs'" in lines[0] and "etl_runs.parquet" in lines[0], output[-3000:]
    assert "the file is empty (0 bytes)" in lines[0]
    assert "Traceback" not in output
    assert not staging_leftovers(data)
    report("unreadable etl_runs (0 bytes)", output_lines=len(output.splitlines()), error_lines=len(lines))


def test_unreachable_mlflow_is_fast_and_one_line(project):
    started = time.monotonic()
    result = run(project, "--pipeline", "retraining", timeout=240, MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    lines = _failure_lines(result)
    assert result.returncode != 0
    assert len(lines) == 1 and "http://127.0.0.1:9" in lines[0] and "unreachable" in lines[0], output[-3000:]
    assert "Traceback" not in output and "Max retries" not in output
    # the 4 min 28 s of MLflow's retries are gone: what is left is Kedro's start-up (slower on a busy machine)
    assert seconds < 120
    report("MLflow unreachable", seconds=round(seconds, 1), output_lines=len(output.splitlines()),
           error_lines=len(lines))
