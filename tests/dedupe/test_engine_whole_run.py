"""`engine.run` uses an engine's whole run when its `Steps` have one (`Steps.whole_run`), without a branch on the
engine; `PairsOnRead` builds its pairs frame only when read."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.steps import _ENGINES, PANDAS, register_engine

RECORDS = pd.DataFrame({"id": ["1", "2", "3", "4"], "name": ["Ann Lee", "Ann Lee", "Bob Stone", "Bob Stone"],
                        "city": ["Oslo", "Oslo", "Rome", "Rome"]})


def _config(engine_name: str = "pandas") -> DedupeConfig:
    return DedupeConfig(id_column="id", fields={"name": "name", "city": "text"}, blocking=[["city"]], use_embeddings=False,
                        engine=engine_name)


@pytest.fixture
def whole_run_engine():
    """An engine whose Steps are the pandas ones plus a whole run that returns the pandas result as a
    PairsOnRead (the pairs frame built on read, counted)."""
    reads: list[int] = []

    def whole_run(records: pd.DataFrame, config: DedupeConfig, keep_state: bool = False) -> engine.DedupeResult:
        found = engine.run_steps(records, config, keep_state)

        def collect() -> pd.DataFrame:
            reads.append(1)
            return found.pairs

        return engine.PairsOnRead(found.prepared, collect, found.clusters, found.model, found.state, found.metrics,
                                  pair_table="table")

    register_engine("whole-run-test", dataclasses.replace(PANDAS, whole_run=whole_run))
    yield reads
    _ENGINES._engines.pop("whole-run-test", None)
    _ENGINES._built.pop("whole-run-test", None)


def test_the_pandas_engine_has_no_whole_run():
    assert PANDAS.whole_run is None
    result = engine.run(RECORDS, _config())
    assert type(result) is engine.DedupeResult
    pd.testing.assert_frame_equal(result.clusters, engine.run_steps(RECORDS, _config()).clusters)


def test_engine_run_takes_the_whole_run_and_reads_pairs_once(whole_run_engine):
    reads = whole_run_engine
    expected = engine.run_steps(RECORDS, _config(), keep_state=True)
    result = engine.run(RECORDS, _config("whole-run-test"), keep_state=True)
    assert isinstance(result, engine.PairsOnRead) and isinstance(result, engine.DedupeResult)
    assert reads == [] and "not collected" in repr(result)  # repr does not collect
    pd.testing.assert_frame_equal(result.clusters, expected.clusters)
    assert result.metrics == expected.metrics and result.pair_table == "table"
    assert result.state is not None
    pd.testing.assert_frame_equal(result.pairs, expected.pairs)
    pd.testing.assert_frame_equal(result.pairs, expected.pairs)
    assert reads == [1]  # collected once, on the first read
    replaced = pd.DataFrame({"left": [0], "right": [1]})
    result.pairs = replaced
    assert result.pairs is replaced


def test_run_incremental_takes_the_whole_incremental_run_when_set():
    """`engine.run_incremental` calls `Steps.whole_incremental` when an engine has one (the pandas engine has none:
    `run_incremental_steps`), without a branch on the engine."""
    assert PANDAS.whole_incremental is None
    state = engine.run(RECORDS.iloc[:3], _config(), keep_state=True).state
    new = RECORDS.iloc[3:].reset_index(drop=True)
    expected = engine.run_incremental_steps(new, state, _config())
    pd.testing.assert_frame_equal(engine.run_incremental(new, state, _config()).clusters, expected.clusters)
    calls = []

    def whole_incremental(new_records, earlier, config):
        calls.append(config.engine)
        return engine.run_incremental_steps(new_records, earlier, dataclasses.replace(config, engine="pandas"))

    register_engine("whole-incremental-test", dataclasses.replace(PANDAS, whole_incremental=whole_incremental))
    try:
        result = engine.run_incremental(new, state, _config("whole-incremental-test"))
    finally:
        _ENGINES._engines.pop("whole-incremental-test", None)
        _ENGINES._built.pop("whole-incremental-test", None)
    assert calls == ["whole-incremental-test"]
    pd.testing.assert_frame_equal(result.clusters, expected.clusters)
    pd.testing.assert_frame_equal(result.pairs, expected.pairs)
