"""Project hooks: clear input errors, metrics logged to MLflow and Prometheus."""

import os

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


# --- a run's outputs are published together or not at all (aietl_pipelines.publish) -------------------------
def _publish_run(tmp_path, fail: bool, value: int):
    """Run a 3-node pipeline with file outputs (parquet, json, append-mode jsonl, a folder) through the
    staging hooks, failing in the last node when `fail`."""
    import json as _json

    from kedro.framework.hooks.manager import _create_hook_manager
    from kedro.runner import SequentialRunner

    from aietl_pipelines.publish import RunPublishHooks

    out = tmp_path / "out"
    config = {
        "table": {"type": "pandas.ParquetDataset", "filepath": str(out / "table.parquet")},
        "summary": {"type": "json.JSONDataset", "filepath": str(out / "reports" / "summary.json")},
        "history": {"type": "aietl_pipelines.datasets.JSONLinesDataset", "filepath": str(out / "history.jsonl")},
    }
    catalog = DataCatalog.from_config(config)

    def last(table: pd.DataFrame) -> dict:
        if fail:
            raise RuntimeError("boom")
        return {"n": int(table["x"].sum())}

    pipeline = Pipeline([
        node(lambda: pd.DataFrame({"x": [value] * 3}), None, "table", name="make_table"),
        node(lambda t: [{"v": int(t["x"].iloc[0])}], "table", "history", name="append_history"),
        node(last, "table", "summary", name="summarize"),
    ])
    hooks = RunPublishHooks(journal_dir=tmp_path / "runs")
    manager = _create_hook_manager()
    hooks.before_pipeline_run(pipeline, catalog)
    try:
        SequentialRunner().run(pipeline, catalog, manager)
    except Exception:
        hooks.on_pipeline_error()
        raise
    hooks.after_pipeline_run()
    return out, _json


def test_a_failed_run_publishes_none_of_its_outputs(tmp_path):
    out, json = _publish_run(tmp_path, fail=False, value=1)
    assert pd.read_parquet(out / "table.parquet")["x"].tolist() == [1, 1, 1]
    assert json.loads((out / "reports" / "summary.json").read_text()) == {"n": 3}
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    with pytest.raises(Exception, match="boom"):
        _publish_run(tmp_path, fail=True, value=2)  # table and history were saved before the failure
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(out.rglob(".aietl-staging-*")) and not list((tmp_path / "runs").glob("*.json"))

    _publish_run(tmp_path, fail=False, value=3)
    assert pd.read_parquet(out / "table.parquet")["x"].tolist() == [3, 3, 3]
    assert json.loads((out / "reports" / "summary.json").read_text()) == {"n": 9}
    assert [json.loads(line)["v"] for line in (out / "history.jsonl").read_text().splitlines()] == [1, 3]


def test_an_interrupted_run_is_undone_or_finished_by_the_next(tmp_path):
    """A journal whose owner died: 'staging' → its staged files are deleted; 'publishing' → the renames are
    finished (files and folders)."""
    import json

    from aietl_pipelines.publish import RunJournal, recover_interrupted_runs

    final_file, final_dir = tmp_path / "a.parquet", tmp_path / "state"
    final_file.write_text("old")
    final_dir.mkdir()
    (final_dir / "model.json").write_text("old")

    died_staging = RunJournal(tmp_path / "runs")
    died_staging.open()
    died_staging.stage(final_file).write_text("new-a")
    os.close(died_staging._lock_fd)  # the process dies: its lock goes
    assert recover_interrupted_runs(tmp_path / "runs") == [f"run {died_staging.run_id}: discarded 1 unpublished output(s)"]
    assert final_file.read_text() == "old" and not list(tmp_path.glob(".aietl-staging-*"))

    died_publishing = RunJournal(tmp_path / "runs")
    died_publishing.open()
    died_publishing.stage(final_file).write_text("new-a")
    staged_dir = died_publishing.stage(final_dir)
    staged_dir.mkdir()
    (staged_dir / "model.json").write_text("new-state")
    died_publishing._write("publishing")
    os.close(died_publishing._lock_fd)
    live = RunJournal(tmp_path / "runs")
    live.open()  # a run still alive is left alone
    assert len(recover_interrupted_runs(tmp_path / "runs")) == 1
    assert final_file.read_text() == "new-a" and (final_dir / "model.json").read_text() == "new-state"
    assert not list(tmp_path.glob(".aietl-staging-*"))
    assert [p.name for p in (tmp_path / "runs").glob("*.json")] == [f"{live.run_id}.json"]
    assert json.loads(live.journal_path.read_text())["state"] == "staging"
    live.discard()


def test_unwritable_output_folder_is_one_clear_error(tmp_path):
    from aietl_pipelines.publish import RunPublishHooks

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    catalog = DataCatalog.from_config(
        {"table": {"type": "pandas.ParquetDataset", "filepath": str(blocker / "table.parquet")}})
    pipeline = Pipeline([node(lambda: pd.DataFrame({"x": [1]}), None, "table", name="make_table")])
    with pytest.raises(AietlInputError, match=r"Output folder '.*not_a_folder' is not writable"):
        RunPublishHooks(journal_dir=tmp_path / "runs").before_pipeline_run(pipeline, catalog)
    assert not list((tmp_path / "runs").glob("*.json"))


# --- MLflow unreachable: one line, fast --------------------------------------------------------------------
def test_unreachable_tracking_server_fails_fast_with_the_uri():
    import time

    from aietl_pipelines.tracking import TrackingCheckHooks, check_tracking_server

    class Context:  # what the hook reads of Kedro's context: the resolved mlflow.yml
        config_loader = {"mlflow": {"server": {"mlflow_tracking_uri": "http://127.0.0.1:9"}}}

    started = time.monotonic()
    with pytest.raises(AietlInputError, match=r"'http://127\.0\.0\.1:9' is unreachable \(ConnectionRefusedError"):
        TrackingCheckHooks().after_context_created(Context())
    with pytest.raises(AietlInputError, match="127.0.0.1:9"):
        check_tracking_server("http://127.0.0.1:9")
    assert time.monotonic() - started < 10


def test_reachable_sqlite_store_passes(tmp_path):
    from aietl_pipelines.tracking import TrackingCheckHooks, check_tracking_server

    class Context:
        config_loader = {"mlflow": {"server": {"mlflow_tracking_uri": f"sqlite:///{tmp_path}/m.db"}}}

    TrackingCheckHooks().after_context_created(Context())
    check_tracking_server(f"sqlite:///{tmp_path}/m.db")


# --- unreadable inputs: one line naming the dataset, the file, the problem and the fix ----------------------
def test_unreadable_files_are_described_in_one_line(tmp_path):
    from aietl_pipelines.cli import describe_load_error, find_input_error
    from aietl_pipelines.datasets import TableDataset

    def failure(dataset):
        with pytest.raises(Exception) as err:  # noqa: B017 - Kedro wraps the reader's error
            dataset.load()
        return err.value

    empty = tmp_path / "etl_runs.parquet"
    empty.write_bytes(b"")
    line = describe_load_error(failure(ParquetDataset(filepath=str(empty))), "etl_runs")
    assert line.startswith(f"cannot read 'etl_runs' ({empty}): the file is empty (0 bytes).") and "\n" not in line
    garbage = tmp_path / "random.parquet"
    garbage.write_bytes(os.urandom(512))
    line = describe_load_error(failure(ParquetDataset(filepath=str(garbage))), "etl_runs")
    assert "ArrowInvalid" in line and str(garbage) in line and "\n" not in line
    assert describe_load_error(RuntimeError("not a load failure")) is None

    (tmp_path / "empty.csv").write_bytes(b"")
    assert "is empty (0 bytes)" in str(find_input_error(failure(TableDataset(str(tmp_path / "empty.csv")))))
    assert "not a readable parquet file" in str(find_input_error(failure(TableDataset(str(garbage)))))


def test_latin1_csv_message_names_the_right_byte_and_its_fix_works(tmp_path):
    from aietl_pipelines.cli import find_input_error
    from aietl_pipelines.datasets import TableDataset

    rows = ["record_id,name", *[f"{i},name {i}" for i in range(50_000)], "50000,José Núñez"]
    path = tmp_path / "people.csv"
    raw = "\n".join(rows).encode("latin-1")
    path.write_bytes(raw)
    with pytest.raises(Exception) as err:  # noqa: B017
        TableDataset(str(path)).load()
    message = str(find_input_error(err.value))
    offset = raw.index("é".encode("latin-1"))
    assert f"undecodable byte at offset {offset:,}" in message
    assert "load_args: {encoding: latin-1}" in message
    frame = TableDataset(str(path), load_args={"encoding": "latin-1"}).load()  # the suggested fix
    assert frame["name"].iloc[-1] == "José Núñez" and len(frame) == 50_001


def test_concurrent_runs_never_share_a_staging_name_and_each_publishes_whole(tmp_path):
    """Eight runs at once on the same outputs (threads: the journal and rename logic is the same as for
    processes): every run publishes without error, and the outputs are all from one run, never mixed."""
    import threading

    from aietl_pipelines.publish import RunJournal

    finals = [tmp_path / "out" / "a.parquet", tmp_path / "out" / "b.json", tmp_path / "out" / "state"]
    errors: list[BaseException] = []

    def one_run(i: int) -> None:
        try:
            journal = RunJournal(tmp_path / "runs")
            journal.open()
            for final in finals:
                staged = journal.stage(final)
                if final.suffix:
                    staged.write_text(f"run {i}")
                else:
                    staged.mkdir()
                    (staged / "model.json").write_text(f"run {i}")
            journal.publish()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one_run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    published = {finals[0].read_text(), finals[1].read_text(), (finals[2] / "model.json").read_text()}
    assert len(published) == 1, published  # all three outputs from the same run
    assert not list((tmp_path / "out").glob(".aietl-staging-*"))
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["publish.lock"]
