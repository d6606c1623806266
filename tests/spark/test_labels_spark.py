"""Labelled mode on the Spark tables (`dedupe.labels` with `dedupe_tables.run`, `engine.run` and the Kedro pair
nodes of `--env spark`): the pandas path's clusters, probabilities, model and state (-m spark)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.services import train_dedupe_with_labels

pytestmark = pytest.mark.spark

# few fields (as tests/dedupe/test_labels.py): the unsupervised model is unsure about many pairs
FIELDS = {"first_name": "name", "last_name": "name", "city": "text", "state": "state", "date_of_birth": "date"}
BLOCKING = [["last_name"], ["first_name", "state"]]
BASE = {"id_column": "record_id", "fields": FIELDS, "blocking": BLOCKING, "use_embeddings": False,
        "u_sample_pairs": 400}


def _frame_class(spark: Any) -> type:
    return type(spark.range(1))


@pytest.fixture(scope="module")
def case():
    """100 generated people (174 records); 10 labels from active learning with the truth as the labeler
    (`train_dedupe_with_labels`, both answers: the labelled model is fitted), plus a "no" on a pair the labelled
    run matches (a certain non-match splitting its cluster) and a "yes" on two records that are no candidate pair
    (appended after the candidates), so that the labels change the clusters."""
    records = generate_customers(n_entities=100, seed=7)
    truth = dict(zip(records["record_id"], records["true_cluster_id"], strict=True))
    labels = train_dedupe_with_labels(records, lambda a, b: truth[a["record_id"]] == truth[b["record_id"]],
                                      max_labels=10, **BASE)
    assert {True, False} <= {x["match"] for x in labels}
    learned = engine.run_steps(records, DedupeConfig(**BASE, labels=labels))
    ids = learned.prepared["record_id"].to_numpy()
    pairs = learned.pairs
    matched = pairs[(pairs["match_probability"] >= 0.9) & (pairs["match_probability"] < 1)].iloc[0]  # not a label
    candidates = set(zip(pairs["left"].tolist(), pairs["right"].tolist(), strict=True))
    clusters = learned.clusters["cluster_id"].to_numpy()
    left, right = next((a, b) for a in range(len(ids)) for b in range(a + 1, len(ids))
                       if (a, b) not in candidates and clusters[a] != clusters[b])
    forced = [{"left_id": ids[int(matched["left"])], "right_id": ids[int(matched["right"])], "match": False},
              {"left_id": ids[right], "right_id": ids[left], "match": True}]
    return records, [*labels, *forced]


@pytest.fixture(scope="module")
def pandas_runs(case):
    records, labels = case
    return (engine.run_steps(records, DedupeConfig(**BASE)),
            engine.run_steps(records, DedupeConfig(**BASE, labels=labels), keep_state=True))


def _spark_config(labels: list[dict]) -> DedupeConfig:
    return DedupeConfig(**BASE, labels=labels, engine="spark")


@pytest.fixture(scope="module")
def spark_engine_run(spark, case, count_collects):
    """`engine.run` on the Spark engine with the labels and the state, once for the two tests that read it, every
    `toPandas`/`collect` counted (columns, rows): (result, the table run inside it (`dedupe_tables.run`'s
    `SparkDedupeRun`), what was collected during the table run, before the pairs were read, and in all)."""
    from aietl_pipelines.spark import dedupe_tables

    records, labels = case
    table_run = dedupe_tables.run
    inside: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        collected = count_collects(patch)

        def recorded_run(*args, **kwargs):
            start = len(collected)
            inside["run"] = table_run(*args, **kwargs)
            inside["collected"] = collected[start:]
            return inside["run"]

        patch.setattr(dedupe_tables, "run", recorded_run)
        result = engine.run(records, _spark_config(labels), keep_state=True)
        before = list(collected)
        _ = result.pairs  # the read: collects the pairs (counted)
    return result, inside["run"], inside["collected"], before, collected


def _assert_pairs_equal(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(found.drop(columns="match_probability"),
                                  expected[["left", "right", "cosine"]].reset_index(drop=True), check_dtype=False)
    np.testing.assert_allclose(found["match_probability"].to_numpy(), expected["match_probability"].to_numpy(),
                               rtol=1e-9, atol=1e-12)


def test_table_run_applies_the_labels_as_pandas(case, pandas_runs, spark_engine_run):
    """`dedupe_tables.run` with labels (the one `engine.run` made, `spark_engine_run`): the pandas path's
    probabilities (labelled model per pattern, labelled pairs certain, the missed ones appended in its order) and
    clusters; only the labelled pairs found among the candidates reach the driver as pairs during it."""
    from aietl_pipelines.spark import dedupe_tables

    _, labels = case
    unlabelled, labelled = pandas_runs
    n_candidates = len(unlabelled.pairs)
    assert len(labelled.pairs) == n_candidates + 1  # the "yes" on a non-candidate pair is appended
    assert not labelled.clusters.equals(unlabelled.clusters)  # the labels change the clusters: not vacuous
    _, result, collected, _, _ = spark_engine_run
    assert collected  # the counting was on during the table run
    pair_tables = [rows for columns, rows in collected if {"left", "right"} <= set(columns)]
    assert max(pair_tables, default=0) <= len(labels)  # the labelled candidate pairs, never the candidate table
    # the labelled pairs compared on the tables: no prepared record collected (2 rows for the comparison names)
    assert not any(set(FIELDS) & set(columns) and rows > 2 for columns, rows in collected)
    assert "e" in result.pairs.columns
    _assert_pairs_equal(dedupe_tables.collect_pairs(result.pairs), labelled.pairs)
    pd.testing.assert_frame_equal(result.clusters, labelled.clusters)
    assert result.model.prior == pytest.approx(labelled.model.prior, rel=1e-9)


def test_engine_run_on_spark_keeps_the_pairs_until_read(case, pandas_runs, spark_engine_run):
    """`engine.run` with `dedupe.engine: spark` goes through `Steps.whole_run` (the table run): the clusters,
    model, metrics and incremental state of the pandas engine, and the pairs collected only when read."""
    _, labels = case
    _, labelled = pandas_runs
    assert engine.steps_for(_spark_config(labels)).whole_run is not None
    result, table_run, _, before, collected = spark_engine_run
    assert result.pair_table is table_run.pairs  # through the table run
    pairs = result.pairs  # collected in the fixture (counted there)
    assert isinstance(result, engine.PairsOnRead)
    # before the read: no candidate table (only the labelled candidates and the state's matches / evidence)
    n_evidence = len(labelled.state.matches)
    assert max((rows for columns, rows in before if "cosine" in columns), default=0) == 0
    assert max((rows for columns, rows in before if {"left", "right"} <= set(columns)), default=0) <= max(
        len(labels), n_evidence)
    assert len(collected) == len(before) + 1 and collected[-1][1] == len(labelled.pairs)  # the read: all pairs
    _assert_pairs_equal(pairs, labelled.pairs)
    pd.testing.assert_frame_equal(result.clusters, labelled.clusters)
    assert result.metrics == labelled.metrics
    assert result.model.prior == pytest.approx(labelled.model.prior, rel=1e-9)
    pd.testing.assert_frame_equal(result.state.matches, labelled.state.matches, check_exact=False, rtol=1e-9)
    np.testing.assert_array_equal(result.state.kth_cosine, labelled.state.kth_cosine)


def test_spark_env_pipeline_with_labels_path_gives_the_pandas_clusters(spark, case, tmp_path, run_dedupe_pipeline):
    """`kedro run --env spark --pipeline dedupe` with `dedupe.labels_path`: the pair nodes score the labelled pairs
    on Spark; the scored table (through the env's SparkDatasetV2 parquet), clusters, state and metrics equal the
    pandas nodes'."""
    from kedro_datasets.spark import SparkDatasetV2

    from aietl_pipelines.dedupe.labels import save_labels

    records, labels = case
    save_labels(labels, tmp_path / "labels.json")
    params = {**BASE, "labels_path": str(tmp_path / "labels.json"), "truth_column": "true_cluster_id",
              "cache_dir": str(tmp_path / "cache")}
    kept = ("dedupe_clusters", "dedupe_metrics", "dedupe_state", "dedupe_match_model")
    pandas_out = run_dedupe_pipeline(records, params, None, kept)
    spark_out = run_dedupe_pipeline(records, {**params, "engine": "spark"}, SparkDatasetV2(
        filepath=str(tmp_path / "scored_pairs"), file_format="parquet", save_args={"mode": "overwrite"}), kept)
    scored = spark_out["dedupe_scored_pairs"]
    assert isinstance(scored, _frame_class(spark))
    pandas_scored = pandas_out["dedupe_scored_pairs"]
    s_scored = scored.toPandas().sort_values(["e", "left", "right"], ignore_index=True).drop(columns="e")
    assert list(s_scored.columns) == list(pandas_scored.columns)
    pd.testing.assert_frame_equal(s_scored.drop(columns="match_probability"),
                                  pandas_scored.drop(columns="match_probability"), check_dtype=False)
    np.testing.assert_allclose(s_scored["match_probability"], pandas_scored["match_probability"], rtol=1e-9,
                               atol=1e-12)
    pd.testing.assert_frame_equal(spark_out["dedupe_clusters"], pandas_out["dedupe_clusters"])
    pd.testing.assert_frame_equal(spark_out["dedupe_state"].matches, pandas_out["dedupe_state"].matches,
                                  check_exact=False, rtol=1e-9)
    for key, value in pandas_out["dedupe_metrics"].items():
        assert spark_out["dedupe_metrics"][key] == pytest.approx(value, rel=1e-9), key


def test_active_learning_on_spark_asks_the_pandas_questions(spark, case, monkeypatch, count_collects):
    """`train_dedupe_with_labels` with `dedupe.engine: spark` goes through `Steps.label_pairs` (the pairs stay a
    Spark table; per question one job returns one pair): with the truth as the labeler it asks the pandas
    engine's questions in the same order and gets the same answers (the `case` labels), and collects no candidate
    table: the only pair rows collected are the chosen pair of each question. The per-pattern scores are the
    pandas engine's bit for bit (same patterns in the same order, same EM model), and looking up labelled pairs
    (earlier labels) gives the pandas patterns."""
    from aietl_pipelines.dedupe import labels as labelled
    from aietl_pipelines.spark import dedupe_tables

    records, labels = case
    asked = labels[:-2]  # the case's active-learning labels (pandas engine), without the two forced ones
    truth = dict(zip(records["record_id"], records["true_cluster_id"], strict=True))
    assert engine.steps_for(_spark_config([])).label_pairs is not None
    made = {}
    build = dedupe_tables.label_pairs

    def recorded(*args, **kwargs):
        made["pairs"] = build(*args, **kwargs)
        return made["pairs"]

    monkeypatch.setattr(dedupe_tables, "label_pairs", recorded)
    collected = count_collects(monkeypatch)
    found = train_dedupe_with_labels(records, lambda a, b: truth[a["record_id"]] == truth[b["record_id"]],
                                     max_labels=10, **BASE, engine="spark")
    assert found == asked  # same pairs, answers and records shown, in the same order
    assert max((rows for columns, rows in collected if "cosine" in columns), default=0) == 0
    pair_rows = [rows for columns, rows in collected if {"left", "right"} <= set(columns)]
    assert len(pair_rows) == len(asked) and max(pair_rows) == 1  # one row per question, nothing else
    on_spark = made["pairs"]
    in_memory = labelled.pandas_candidates(records, DedupeConfig(**BASE))
    assert on_spark.n_pairs == in_memory.n_pairs
    np.testing.assert_array_equal(on_spark.patterns, in_memory.patterns)
    np.testing.assert_array_equal(on_spark.probability, in_memory.probability)  # exactly
    np.testing.assert_array_equal(on_spark.weight, in_memory.weight)
    some = [(int(a), int(b)) for a, b in zip(in_memory.left[::97], in_memory.right[::97], strict=True)]
    lookup = [*some, (0, len(records) - 1)]  # and (most likely) no candidate pair
    assert on_spark.patterns_of(lookup) == in_memory.patterns_of(lookup)
