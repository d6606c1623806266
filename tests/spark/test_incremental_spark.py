"""Incremental dedupe with `dedupe.engine: spark`: the Spark `new_candidates` step (`spark/incremental.py`) gives
the pandas step's pairs and k-th cosines, and `run_incremental` on Spark the pandas engine's pairs and clusters
(-m spark)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe import pairs as pairing
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.evaluate import pairwise_scores
from aietl_pipelines.dedupe.steps import PANDAS, register_engine, steps_for

pytestmark = pytest.mark.spark

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "state": "state", "phone": "phone", "email": "email", "date_of_birth": "date"}
# [state] makes blocks of dozens of records: above max_block_size, so they are joined as sorted neighbourhoods
BLOCKING = [["email"], ["phone"], ["date_of_birth", "last_name"], ["postcode", "last_name"],
            ["first_name", "last_name"], ["state"]]


def _spark(config: DedupeConfig) -> DedupeConfig:
    return dataclasses.replace(config, engine="spark")


def _small_tasks(monkeypatch) -> None:
    """Several kNN query blocks and rank buckets, so that the splitting is exercised on a few hundred records."""
    from aietl_pipelines.spark import dedupe as spark_dedupe

    monkeypatch.setattr(spark_dedupe, "QUERIES_PER_TASK", 16)
    monkeypatch.setattr(spark_dedupe, "RANK_BUCKET", 8)


def _all_records(state: engine.DedupeState, new: pd.DataFrame, config: DedupeConfig
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """What `run_incremental` hands `new_candidates`: the earlier and the new records, prepared and embedded."""
    prepared_new = PANDAS.prepare(new, config)
    prepared = pd.concat([state.prepared, prepared_new], ignore_index=True)
    vectors = np.concatenate([state.vectors, PANDAS.embed(prepared_new, config)])
    return prepared, vectors


def _pair_set(pairs: pd.DataFrame) -> set[tuple[int, int]]:
    return {tuple(p) for p in pairs[["left", "right"]].to_numpy().tolist()}


def _groups(clusters: pd.DataFrame) -> set[frozenset]:
    return {frozenset(ids) for _, ids in clusters.groupby("cluster_id")["record_id"]}


def _recording(patch: pytest.MonkeyPatch, engine_name: str) -> list[tuple[tuple, tuple]]:
    """Record the (inputs, outputs) of every `new_candidates` call of `engine_name`'s steps in `run_incremental`
    (the engine's own step is called: the recorder only keeps what it was given and gave back)."""
    calls: list[tuple[tuple, tuple]] = []
    steps_of = engine.steps_for

    def recorded_steps(config: DedupeConfig):
        steps = steps_of(config)
        if config.engine != engine_name:
            return steps

        def new_candidates(*args):
            out = steps.new_candidates(*args)
            calls.append((args, out))
            return out
        return dataclasses.replace(steps, new_candidates=new_candidates)

    patch.setattr(engine, "steps_for", recorded_steps)
    return calls


def _assert_inputs_are_the_pandas_engines(args: tuple, state: engine.DedupeState, new: pd.DataFrame,
                                          config: DedupeConfig) -> None:
    """The records and vectors `run_incremental` handed the step: those of the pandas engine's prepare and embed."""
    prepared, vectors = _all_records(state, new, config)
    pd.testing.assert_frame_equal(args[0], prepared)
    np.testing.assert_array_equal(args[1], vectors)
    assert args[2] == len(state.prepared)
    np.testing.assert_array_equal(args[3], state.kth_cosine)


@pytest.fixture(scope="module")
def customers(tmp_path_factory):
    """120 generated people (seed 7), shuffled; the first 80% are an earlier pandas run (its state), the rest plus
    a copy of an earlier record arrive as new records."""
    records = generate_customers(n_entities=120, seed=7).sample(frac=1.0, random_state=3).reset_index(drop=True)
    cut = int(0.8 * len(records))
    base = records.iloc[:cut].reset_index(drop=True)
    copy = base.iloc[[5]].assign(record_id="copy-of-5", source="web")
    new = pd.concat([records.iloc[cut:], copy], ignore_index=True)
    config = DedupeConfig(fields=FIELDS, blocking=BLOCKING, cache_dir=str(tmp_path_factory.mktemp("embedding_cache")))
    state = engine.run(base, config, keep_state=True).state
    return records, base, new, config, state


def _recording_tables(patch: pytest.MonkeyPatch) -> list[tuple[tuple, tuple]]:
    """Record the (inputs, outputs) of every `incremental.new_candidate_table` call (the Spark engine's
    `run_incremental`, `dedupe_tables.engine_run_incremental`, calls it; the table itself is not collected here)."""
    from aietl_pipelines.spark import incremental

    calls: list[tuple[tuple, tuple]] = []
    table = incremental.new_candidate_table

    def recorded(*args):
        out = table(*args)
        calls.append((args[1:], out))  # without the session: (prepared, vectors, n_old, old_kth, config)
        return out

    patch.setattr(incremental, "new_candidate_table", recorded)
    return calls


def _collected_step(out: tuple) -> tuple[pd.DataFrame, np.ndarray]:
    """A recorded `new_candidate_table` output as `Steps.new_candidates` returns it (collected, sorted)."""
    table, kth = out
    found = table.toPandas().sort_values(["left", "right"], kind="stable", ignore_index=True)
    return pd.DataFrame({"left": found["left"].to_numpy(np.int64), "right": found["right"].to_numpy(np.int64),
                         "cosine": found["cosine"].to_numpy(np.float64)}), kth


@pytest.fixture(scope="module")
def spark_incremental(spark, customers, count_collects):
    """`run_incremental` on the Spark engine (small tasks), once for the two tests that read it: its result, the
    (inputs, collected outputs) of its `new_candidate_table` call, the oversized-block report of its blocking
    joins, and the Spark collects (columns, rows) during the run and after `result.pairs` was read.

    It runs before any pandas incremental run: its embed step writes the vectors of the new texts to the
    content-hash cache, which the pandas runs then read, so both engines see the same vectors (Spark's encoder
    batches differ from the pandas ones by up to 1e-5, `test_dedupe_records.py`)."""
    from aietl_pipelines.spark import dedupe as spark_dedupe

    _, _, new, config, state = customers
    reports = []
    blocking_pairs = spark_dedupe.blocking_pairs

    def blocking(*args, **kwargs):
        found, report = blocking_pairs(*args, **kwargs)
        reports.append(report)
        return found, report

    with pytest.MonkeyPatch.context() as patch:
        _small_tasks(patch)
        patch.setattr(spark_dedupe, "blocking_pairs", blocking)
        calls = _recording_tables(patch)
        collected = count_collects(patch)
        result = engine.run_incremental(new, state, _spark(config))
        before = list(collected)
        _ = result.pairs  # the read: collects the pairs (counted)
    assert len(calls) == 1 and len(reports) == 1
    (args, out), = calls
    return result, args, _collected_step(out), reports[0], before, collected


def test_new_candidates_on_spark_equal_the_pandas_step(customers, spark_incremental):
    """Blocking joins of the new records against all (oversized [state] blocks as sorted neighbourhoods, counted
    over all records) and the exact kNN with the earlier records' radii: the pandas step's frame and k-th cosines.
    The Spark table's call is the one `run_incremental` made on the Spark engine (`spark_incremental`): its inputs
    are the pandas engine's records and vectors, its outputs (collected) the pandas step's on them."""
    from aietl_pipelines.spark import incremental

    _, base, new, config, state = customers
    assert steps_for(_spark(config)).new_candidates is incremental.new_record_candidates
    _, args, (s_pairs, s_kth), s_report, _, _ = spark_incremental
    _assert_inputs_are_the_pandas_engines(args, state, new, config)
    prepared, vectors = _all_records(state, new, config)
    n_old = len(base)
    pairs, kth = PANDAS.new_candidates(prepared, vectors, n_old, state.kth_cosine, config)
    pd.testing.assert_frame_equal(s_pairs, pairs)
    np.testing.assert_array_equal(s_kth, kth)
    # not vacuous: pairs of old and new records, oversized blocks holding a new record, and earlier records
    # reached only through their radius (not among the new record's k nearest nor sharing a key)
    assert (pairs["left"] < n_old).sum() > len(new) and (pairs["right"] >= n_old).all()
    report = pairing.oversized_blocks(prepared, config, new_from=n_old)
    assert report["n_dropped_blocks"] > 0
    assert s_report == report  # the Spark blocking joins' report (`blocking_pairs(new_from=)`) in that call


def test_run_incremental_on_spark_gives_the_pandas_pairs_and_clusters(customers, spark_incremental):
    """`run_incremental` with `dedupe.engine: spark` (`Steps.whole_incremental`: prepare, embed, new candidates,
    levels, saved-model scores and clusters on Spark tables) from the same earlier state: the pandas engine's pairs
    (same order), probabilities, clusters, state and metrics; no candidate pair reaches the driver before
    `result.pairs` is read, then one collect of all of them. The new records end in their people's clusters (the
    copy of an earlier record in that record's).

    The Spark run (`spark_incremental`) goes first: both engines see the same vectors (see the fixture); the
    comparison is of the steps after embed."""
    _, base, new, config, state = customers
    assert engine.steps_for(_spark(config)).whole_incremental is not None
    on_spark, _, _, _, before, collected = spark_incremental
    in_pandas = engine.run_incremental(new, state, config)
    assert isinstance(on_spark, engine.PairsOnRead) and on_spark.pair_table is not None
    # before the read: no pair table with cosines; pairs only as the state's new evidence (matches and the
    # below-threshold pairs inside their components)
    n_evidence = len(in_pandas.state.matches)
    assert before and max((rows for columns, rows in before if "cosine" in columns), default=0) == 0
    assert max((rows for columns, rows in before if {"left", "right"} <= set(columns)), default=0) <= n_evidence
    assert len(collected) == len(before) + 1 and collected[-1][1] == len(in_pandas.pairs)  # the read: all pairs
    pd.testing.assert_frame_equal(on_spark.pairs, in_pandas.pairs, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(on_spark.clusters, in_pandas.clusters)
    np.testing.assert_array_equal(on_spark.state.kth_cosine, in_pandas.state.kth_cosine)
    pd.testing.assert_frame_equal(on_spark.state.matches, in_pandas.state.matches, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(on_spark.state.prepared, in_pandas.state.prepared)
    np.testing.assert_array_equal(on_spark.state.vectors, in_pandas.state.vectors)
    assert on_spark.model is state.model and in_pandas.model is state.model  # the saved model, not refitted
    assert on_spark.metrics == in_pandas.metrics

    labels = dict(zip(on_spark.clusters["record_id"], on_spark.clusters["cluster_id"], strict=True))
    assert labels["copy-of-5"] == labels[str(base["record_id"].iloc[5])]
    truth = pd.factorize(pd.concat([base, new], ignore_index=True)["true_cluster_id"])[0]  # the copy: its original's
    f1 = pairwise_scores(on_spark.clusters["cluster_id"].to_numpy(), truth)["f1"]
    full = engine.run(pd.concat([base, new], ignore_index=True), config)
    full_f1 = pairwise_scores(full.clusters["cluster_id"].to_numpy(), truth)["f1"]
    assert f1 >= 0.97 and f1 >= full_f1 - 0.01
    new_ids = set(new["record_id"].astype(str))
    merged = [g for g in _groups(on_spark.clusters) if g & new_ids and len(g) > 1]
    assert len(merged) > len(new) // 4  # not vacuous: many new records joined a cluster


def test_labelled_run_incremental_on_spark_equals_pandas(customers, spark_incremental):
    """Labelled mode (`dedupe.labels`) in `run_incremental` on Spark: the labelled model fitted over the saved
    model's comparison patterns (`dedupe_tables.labelled_patterns`), labelled new pairs made certain and the
    labelled pairs that are not new candidates appended (`with_labels`), clustered after the earlier matches: the
    pandas engine's pairs (order included), probabilities, clusters, state and metrics. Labels: the truth on 12
    new candidate pairs (6 yes, 6 no), a "no" on a matched new pair, a "yes" on a new record and an earlier one
    that are no candidate pair, and a "yes" on two earlier records that are no earlier match."""
    _, base, new, config, state = customers
    plain = engine.run_incremental(new, state, config)  # after the Spark run: the same cached vectors
    ids = plain.prepared["record_id"].to_numpy()
    truth = pd.concat([base, new], ignore_index=True)["true_cluster_id"].to_numpy()
    pairs = plain.pairs
    same = truth[pairs["left"].to_numpy()] == truth[pairs["right"].to_numpy()]
    chosen = pd.concat([pairs[same].iloc[:6], pairs[~same].iloc[:6]])
    labels = [{"left_id": ids[a], "right_id": ids[b], "match": bool(truth[a] == truth[b])}
              for a, b in zip(chosen["left"].tolist(), chosen["right"].tolist(), strict=True)]
    matched = pairs[pairs["match_probability"] >= config.match_threshold].iloc[-1]
    labels.append({"left_id": ids[int(matched["left"])], "right_id": ids[int(matched["right"])], "match": False})
    candidates = set(zip(pairs["left"].tolist(), pairs["right"].tolist(), strict=True))
    n_old = len(base)
    a, b = next((a, b) for a in range(n_old) for b in range(n_old, len(ids)) if (a, b) not in candidates)
    earlier = set(zip(state.matches["left_id"], state.matches["right_id"], strict=True))
    c, d = next((c, d) for c in range(n_old) for d in range(c + 1, n_old) if (ids[c], ids[d]) not in earlier
                and (ids[d], ids[c]) not in earlier)
    labels += [{"left_id": ids[b], "right_id": ids[a], "match": True}, {"left_id": ids[c], "right_id": ids[d],
                                                                        "match": True}]
    labelled = dataclasses.replace(config, labels=labels)
    in_pandas = engine.run_incremental(new, state, labelled)
    on_spark = engine.run_incremental(new, state, _spark(labelled))
    assert len(in_pandas.pairs) == len(pairs) + 2  # the two non-candidate labelled pairs appended
    assert not in_pandas.clusters.equals(plain.clusters)  # the labels change the clusters: not vacuous
    assert "e" in on_spark.pair_table.columns
    pd.testing.assert_frame_equal(on_spark.pairs, in_pandas.pairs, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(on_spark.clusters, in_pandas.clusters)
    pd.testing.assert_frame_equal(on_spark.state.matches, in_pandas.state.matches, check_exact=False, rtol=1e-9)
    assert on_spark.metrics == in_pandas.metrics


def test_partitioned_index_new_candidates_give_the_exact_clusters(spark, customers, monkeypatch):
    """Above knn_exact_max the Spark candidates step uses its inverted-file index; the incremental step then does
    too, while the pandas step always searches exactly. With every list probed the index search is exhaustive: the
    pandas step's pairs up to ties at the k-th place (records with identical vectors, cosines equal to 1e-7, ranked
    in another order by products summed in another order: 3 of 797 pairs swapped for tied ones here). With 2 of 5
    lists probed the index misses some of the k nearest (by design: 215 pairs in the symmetric difference with the
    pandas step's 797 here, all of cosine 0.82 or less, the 10th neighbours of 210 records), so the clusters of
    `run_incremental` with the Spark `new_candidates` (every other step pandas's) are compared with the pandas
    engine's: pairwise F1 within 0.002."""
    from aietl_pipelines.dedupe import candidates as cand
    from aietl_pipelines.spark import incremental

    monkeypatch.setattr(cand, "bf16_matmul_is_fast", lambda: False)  # float32 products: no bf16 ties
    _, base, new, config, _ = customers
    config = dataclasses.replace(config, knn_method="partitioned", knn_list_size=40, knn_probes=2,
                                 blocking=[["email"]])
    state = engine.run(base, config, keep_state=True).state
    # run_incremental with the Spark `new_candidates` (every other step pandas's); its step call is recorded and
    # checked below (2 probes), so the index search runs once for both checks
    only_candidates = dataclasses.replace(PANDAS, new_candidates=incremental.new_record_candidates)
    register_engine("spark-new-candidates-only", only_candidates)
    calls = _recording(monkeypatch, "spark-new-candidates-only")
    mixed = engine.run_incremental(new, state, dataclasses.replace(config, engine="spark-new-candidates-only"))
    (args, (s_pairs, _)), = calls
    _assert_inputs_are_the_pandas_engines(args, state, new, config)
    prepared, vectors = _all_records(state, new, config)
    n_old = len(base)
    pairs, kth = PANDAS.new_candidates(prepared, vectors, n_old, state.kth_cosine, config)
    n_lists = len(prepared) // config.knn_list_size
    exhaustive = dataclasses.replace(config, knn_probes=n_lists)
    e_pairs, e_kth = incremental.new_record_candidates(prepared, vectors, n_old, state.kth_cosine, exhaustive)
    np.testing.assert_allclose(e_kth, kth, rtol=0, atol=1e-6)
    found, e_found = _pair_set(pairs), _pair_set(e_pairs)
    assert len(found ^ e_found) <= 0.01 * len(found), (len(found), len(e_found), len(found ^ e_found))

    s_found = _pair_set(s_pairs)
    assert len(found) > len(new) and (s_pairs["right"] >= n_old).all()
    close = _pair_set(pairs[pairs["cosine"] >= 0.85])
    assert close and close <= s_found  # the near neighbours (the duplicates) are all found
    assert len(found ^ s_found) <= 0.3 * len(found), (len(found), len(s_found), len(found ^ s_found))

    in_pandas = engine.run_incremental(new, state, config)
    truth = pd.factorize(pd.concat([base, new], ignore_index=True)["true_cluster_id"])[0]
    f1 = [pairwise_scores(r.clusters["cluster_id"].to_numpy(), truth)["f1"] for r in (in_pandas, mixed)]
    assert f1[0] > 0.9 and abs(f1[0] - f1[1]) <= 0.002, f1


def test_free_text_febrl_incremental_on_spark_equals_pandas(spark, tmp_path, monkeypatch):
    """FEBRL 1 as free text (400 records, no embeddings, `max_block_size: 3` and `block_window: 3`, so three blocks
    holding a new record are oversized and joined as sorted neighbourhoods): the Spark step's pairs (segments and the text rules, new_from) and `run_incremental`'s pairs and
    clusters equal the pandas engine's."""
    from aietl_pipelines.dedupe.febrl import load_febrl, render_free_text
    from aietl_pipelines.spark import incremental

    _small_tasks(monkeypatch)
    frame = load_febrl(1).iloc[:400]
    records = pd.DataFrame({"record_id": frame["rec_id"].to_numpy(), "full_text": render_free_text(frame).to_numpy(),
                            "true_cluster_id": frame["true_cluster_id"].to_numpy()})
    records = records.sample(frac=1.0, random_state=5).reset_index(drop=True)
    base, new = records.iloc[:320].reset_index(drop=True), records.iloc[320:].reset_index(drop=True)
    config = DedupeConfig(text_column="full_text", use_embeddings=False, max_block_size=3, block_window=3)
    state = engine.run(base, config, keep_state=True).state
    calls = _recording_tables(monkeypatch)  # the Spark table's call in run_incremental, checked against pandas's
    on_spark = engine.run_incremental(new, state, _spark(config))
    (args, out), = calls
    s_pairs, s_kth = _collected_step(out)
    assert args[4].engine == "spark" and steps_for(args[4]).new_candidates is incremental.new_record_candidates
    _assert_inputs_are_the_pandas_engines(args, state, new, config)
    prepared, vectors = _all_records(state, new, config)
    pairs, kth = PANDAS.new_candidates(prepared, vectors, len(base), state.kth_cosine, config)
    assert pairing.oversized_blocks(prepared, config, new_from=len(base))["n_dropped_blocks"] > 0
    assert len(pairs) > len(new) // 2
    pd.testing.assert_frame_equal(s_pairs, pairs)
    np.testing.assert_array_equal(s_kth, kth)

    in_pandas = engine.run_incremental(new, state, config)
    pd.testing.assert_frame_equal(on_spark.pairs, in_pandas.pairs, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(on_spark.clusters, in_pandas.clusters)
    pd.testing.assert_frame_equal(on_spark.state.matches, in_pandas.state.matches, check_exact=False, rtol=1e-9)
    assert on_spark.metrics == in_pandas.metrics
    truth = pd.factorize(pd.concat([base, new], ignore_index=True)["true_cluster_id"])[0]
    assert pairwise_scores(on_spark.clusters["cluster_id"].to_numpy(), truth)["f1"] > 0.8
