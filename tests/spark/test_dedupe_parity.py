"""`dedupe.engine: spark` gives the pandas engine's candidates, comparison levels and clusters (-m spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig, project_root
from aietl_pipelines.dedupe.evaluate import pairwise_scores
from aietl_pipelines.dedupe.steps import PANDAS, steps_for

pytestmark = pytest.mark.spark

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "state": "state", "phone": "phone", "email": "email", "date_of_birth": "date"}
# [state] makes blocks of dozens of records: above max_block_size, so they are joined as sorted neighbourhoods
BLOCKING = [["email"], ["phone"], ["date_of_birth", "last_name"], ["postcode", "last_name"],
            ["first_name", "last_name"], ["state"]]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    records = generate_customers(n_entities=120, seed=7)
    config = DedupeConfig(fields=FIELDS, blocking=BLOCKING, truth_column="true_cluster_id",
                          cache_dir=str(tmp_path_factory.mktemp("embedding_cache")))
    prepared = PANDAS.prepare(records, config)
    return records, config, prepared, PANDAS.embed(prepared, config)


def test_spark_steps_equal_the_pandas_steps(spark, sample, monkeypatch):
    from aietl_pipelines.spark import dedupe as spark_dedupe

    # small tasks, so that several kNN blocks, comparison partitions and rank buckets are exercised
    monkeypatch.setattr(spark_dedupe, "QUERIES_PER_TASK", 100)
    monkeypatch.setattr(spark_dedupe, "PAIRS_PER_TASK", 20_000)
    monkeypatch.setattr(spark_dedupe, "RANK_BUCKET", 8)
    _, config, prepared, vectors = sample
    on_spark = steps_for(DedupeConfig(**{**config.__dict__, "engine": "spark"}))
    assert on_spark.candidates is spark_dedupe.candidates_with_radius

    pairs, kth = PANDAS.candidates(prepared, vectors, config)
    s_pairs, s_kth = on_spark.candidates(prepared, vectors, config)
    assert engine.oversized_blocks(prepared, config)["n_dropped_blocks"] > 0  # the skew path ran
    assert len(pairs) > len(prepared)
    pd.testing.assert_frame_equal(s_pairs, pairs)
    np.testing.assert_array_equal(s_kth, kth)

    levels, random_levels, names, sizes = PANDAS.compare(prepared, pairs, vectors, config)
    s_levels, s_random, s_names, s_sizes = on_spark.compare(prepared, pairs, vectors, config)
    assert (s_names, s_sizes) == (names, sizes)
    assert s_levels.dtype == levels.dtype
    np.testing.assert_array_equal(s_levels, levels)
    np.testing.assert_array_equal(s_random, random_levels)

    probability, model = PANDAS.score(levels, random_levels, names, sizes, config)
    s_probability, s_model = on_spark.score(levels, random_levels, names, sizes, config)  # EM on pattern counts
    np.testing.assert_allclose(s_probability, probability, rtol=1e-9, atol=1e-12)
    assert s_model.prior == pytest.approx(model.prior, rel=1e-9)
    assert s_model.threshold == pytest.approx(model.threshold, rel=1e-9)
    clusters = PANDAS.cluster(prepared, pairs, probability, config)
    s_clusters = on_spark.cluster(prepared, pairs, probability, config)
    pd.testing.assert_frame_equal(s_clusters, clusters)
    assert clusters["cluster_id"].nunique() < len(prepared)  # duplicates were merged: not vacuous


def _spark_env_params() -> dict:
    """The `dedupe` parameters of `kedro run --env spark` (conf/base soft-merged with conf/spark)."""
    from kedro.config import OmegaConfigLoader

    from aietl_pipelines.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(project_root() / "conf"),
                               **{**CONFIG_LOADER_ARGS, "default_run_env": "spark"})
    return dict(loader["parameters"]["dedupe"])


def test_partitioned_knn_on_spark_finds_the_pandas_index_pairs(spark, sample, monkeypatch):
    """Above knn_exact_max the pandas path uses its inverted-file index; the Spark engine runs the same index with
    its lists as Spark groups (same centroids and lists: the same pairs up to ties at the k-th place, e.g. between
    identical copies of a record: 8 of 1,457 pairs differed here). In float32 products: with bfloat16 ones (8-bit
    mantissa) many more similarities tie and each side breaks ties its own way (71 of 1,460 differed)."""
    from aietl_pipelines.dedupe import candidates as cand
    from aietl_pipelines.spark import dedupe as spark_dedupe

    monkeypatch.setattr(cand, "bf16_matmul_is_fast", lambda: False)

    _, config, prepared, vectors = sample
    config = DedupeConfig(**{**config.__dict__, "knn_method": "partitioned", "knn_list_size": 40, "knn_probes": 2,
                             "blocking": [["email"]]})
    pairs, kth = PANDAS.candidates(prepared, vectors, config)
    s_pairs, s_kth = spark_dedupe.candidates_with_radius(prepared, vectors, config)
    found = {tuple(p) for p in pairs[["left", "right"]].to_numpy().tolist()}
    s_found = {tuple(p) for p in s_pairs[["left", "right"]].to_numpy().tolist()}
    assert len(found) > len(prepared)
    assert len(found ^ s_found) <= 0.01 * len(found)
    assert np.mean(np.isclose(s_kth, kth, rtol=0, atol=1e-6)) >= 0.99


def test_free_text_on_spark_equals_pandas(spark, monkeypatch):
    """Free text: the segments as blocking keys (some blocks oversized: sorted neighbourhoods) and the EM with
    related parts on pattern counts give the pandas engine's pairs, probabilities and clusters."""
    from aietl_pipelines.spark import dedupe as spark_dedupe

    monkeypatch.setattr(spark_dedupe, "RANK_BUCKET", 8)
    people = generate_customers(n_entities=80, seed=3)
    records = pd.DataFrame({"record_id": people["record_id"], "true_cluster_id": people["true_cluster_id"],
                            "text": (people["first_name"].fillna("") + " " + people["last_name"].fillna("") + ", "
                                     + people["street"].fillna("") + ", " + people["city"].fillna("") + ", "
                                     + people["state"].fillna("") + " " + people["phone"].fillna(""))})
    config = DedupeConfig(text_column="text", use_embeddings=False, max_block_size=8)
    on_spark = steps_for(DedupeConfig(**{**config.__dict__, "engine": "spark"}))
    prepared = PANDAS.prepare(records, config)
    vectors = PANDAS.embed(prepared, config)
    pairs, kth = PANDAS.candidates(prepared, vectors, config)
    s_pairs, s_kth = on_spark.candidates(prepared, vectors, config)
    assert engine.oversized_blocks(prepared, config)["n_dropped_blocks"] > 0  # segment blocks above the cap
    pd.testing.assert_frame_equal(s_pairs, pairs)
    levels, random_levels, names, sizes = PANDAS.compare(prepared, pairs, vectors, config)
    probability, model = PANDAS.score(levels, random_levels, names, sizes, config)
    s_probability, _ = on_spark.score(levels, random_levels, names, sizes, config)
    np.testing.assert_allclose(s_probability, probability, rtol=1e-9, atol=1e-12)
    clusters = PANDAS.cluster(prepared, pairs, probability, config)
    pd.testing.assert_frame_equal(on_spark.cluster(prepared, pairs, s_probability, config), clusters)
    assert clusters["cluster_id"].nunique() < len(prepared)


def _assert_table_run_equals(result, pandas_run: engine.DedupeResult) -> None:
    """The table run's pairs (sorted), probabilities (to 1e-9) and clusters are the pandas run's."""
    pairs = result.pairs.select("left", "right", "match_probability").toPandas().sort_values(
        ["left", "right"], ignore_index=True)
    np.testing.assert_array_equal(pairs[["left", "right"]].to_numpy(), pandas_run.pairs[["left", "right"]].to_numpy())
    np.testing.assert_allclose(pairs["match_probability"].to_numpy(),
                               pandas_run.pairs["match_probability"].to_numpy(), rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(result.clusters, pandas_run.clusters)


def test_table_run_keeps_the_pairs_on_spark(spark, sample, monkeypatch, count_collects):
    """`dedupe_tables.run` with the `dedupe` parameters of `kedro run --env spark` (conf/spark switches only the
    engine): the pandas engine's pairs, probabilities and clusters, with the prepared records, their vectors, the
    pairs, their levels and probabilities as Spark tables; what reaches the driver (every toPandas/collect counted)
    is the pattern table, the random-pair levels and one row per record at most (its id, k-th cosine, cluster),
    never a table of pairs, of prepared records or of vectors."""
    from aietl_pipelines.spark import dedupe_tables

    records, config, _, _ = sample
    config = DedupeConfig(**{**config.__dict__, "u_sample_pairs": 400})
    params = _spark_env_params()
    assert params["engine"] == "spark" and params["fields"]  # conf/spark switches only the engine
    spark_config = DedupeConfig.from_params({**params, "fields": FIELDS, "blocking": BLOCKING,
                                            "cache_dir": config.cache_dir, "truth_column": config.truth_column,
                                            "u_sample_pairs": 400})
    frame_class = type(spark.range(1))
    with monkeypatch.context() as patch:
        collected = count_collects(patch)
        result = dedupe_tables.run(records, spark_config)
        n_pairs = result.pairs.count()
    assert isinstance(result.pairs, frame_class)
    assert {"left", "right", "cosine", "match_probability", *dedupe_tables.level_columns(len(result.names))} \
        <= set(result.pairs.columns)
    assert n_pairs > 2 * len(records) and result.counts.sum() == n_pairs
    assert collected and max(rows for _, rows in collected) <= max(len(records), config.u_sample_pairs)
    assert not any({"left", "right"} <= set(columns) for columns, _ in collected)  # no pair table collected
    fields = {*FIELDS, "__text", "__original", "vector"}
    assert not any(fields & set(columns) and rows > 2 for columns, rows in collected)  # nor records nor vectors

    pandas_run = engine.run(records, config)
    _assert_table_run_equals(result, pandas_run)
    truth = records.set_index("record_id")["true_cluster_id"]
    assert pairwise_scores(result.clusters["cluster_id"].to_numpy(),
                           result.clusters["record_id"].map(truth).to_numpy())["f1"] > 0.8


def test_table_run_reads_a_spark_table_of_free_text(spark, tmp_path, monkeypatch):
    """The records as a Spark DataFrame read from parquet (as `spark.SparkDatasetV2` reads a table): free text
    (segments as blocking keys, some blocks oversized) gives the pandas engine's pairs, clusters and block counts."""
    from aietl_pipelines.spark import dedupe as spark_dedupe
    from aietl_pipelines.spark import dedupe_tables

    monkeypatch.setattr(spark_dedupe, "RANK_BUCKET", 8)
    people = generate_customers(n_entities=60, seed=5)
    records = pd.DataFrame({"record_id": people["record_id"],
                            "text": (people["first_name"].fillna("") + " " + people["last_name"].fillna("") + ", "
                                     + people["street"].fillna("") + ", " + people["city"].fillna("") + " "
                                     + people["phone"].fillna(""))})
    records.to_parquet(tmp_path / "records.parquet", index=False)
    config = DedupeConfig(text_column="text", use_embeddings=False, max_block_size=8, u_sample_pairs=500)
    result = dedupe_tables.run(spark.read.parquet(str(tmp_path / "records.parquet")),
                               DedupeConfig(**{**config.__dict__, "engine": "spark"}))
    pandas_run = engine.run(records, config)
    assert pandas_run.metrics["n_dropped_blocks"] > 0  # segment blocks above the cap: the skew path ran
    assert result.metrics["n_dropped_blocks"] == pandas_run.metrics["n_dropped_blocks"]
    _assert_table_run_equals(result, pandas_run)
    assert pandas_run.clusters["cluster_id"].nunique() < len(records)  # duplicates merged: not vacuous


def test_cluster_table_splits_weak_links_and_caps_as_pandas(spark):
    """Weak-link splitting and the size cap, per component in applyInPandas, give `cluster_with_components`'
    labels and components on a random graph where both happen."""
    from aietl_pipelines.dedupe.cluster import cluster_with_components
    from aietl_pipelines.spark.dedupe_tables import cluster_table

    rng = np.random.default_rng(11)
    n, threshold = 80, 0.9
    left = rng.integers(0, n, 200)
    right = (left // 10) * 10 + rng.integers(0, 10, 200)  # inside groups of 10: small components, few CC rounds
    pairs = np.unique(np.stack([np.minimum(left, right), np.maximum(left, right)], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    probability = np.where(rng.random(len(pairs)) < 0.7, rng.uniform(0.9, 1.0, len(pairs)),
                           rng.uniform(0.0, 0.9, len(pairs)))
    scored = spark.createDataFrame(pd.DataFrame({"left": pairs[:, 0], "right": pairs[:, 1],
                                                 "match_probability": probability}))
    for cap in (None, 4):  # 8 of 11 components split; with the cap, clusters of 5-8 records are cut too
        labels, components = cluster_with_components(n, pairs[:, 0], pairs[:, 1], probability, threshold, cap)
        s_labels, s_components = cluster_table(spark, n, scored, threshold, cap)
        np.testing.assert_array_equal(s_components, components)
        np.testing.assert_array_equal(s_labels, labels)
        assert pd.Series(labels).groupby(components).nunique().max() > 1  # components were split: not vacuous


def _golden(frame: pd.DataFrame) -> pd.DataFrame:
    """Golden records sorted by cluster id, member ids as lists."""
    frame = frame.sort_values("cluster_id", ignore_index=True)
    return frame.assign(member_ids=frame["member_ids"].map(list), cluster_id=frame["cluster_id"].astype(np.int64),
                        cluster_size=frame["cluster_size"].astype(np.int64))


def test_spark_env_pipeline_keeps_the_pairs_on_spark(spark, sample, tmp_path, monkeypatch, count_collects,
                                                     run_dedupe_pipeline):
    """`kedro run --env spark --pipeline dedupe`: the engine's pair nodes (`spark/dedupe_nodes.py`) read the records
    as a Spark table (a parquet file pandas wrote: one file, so Spark numbers its rows in the pandas order), hand the
    prepared records, the candidate and scored pairs between the nodes as Spark tables, the scored pairs and the
    golden records are written by the env's SparkDatasetV2 entries, no pair table is collected (labelled mode
    aside), and the clusters, golden records, model, state and metrics (truth mapped by record id) equal the
    pandas nodes'."""
    from kedro_datasets.spark import SparkDatasetV2

    from aietl_pipelines.dedupe.state import load_state, save_state
    from aietl_pipelines.pipelines.dedupe.nodes import pair_nodes
    from aietl_pipelines.spark.dedupe_nodes import SparkPairNodes

    records, config, _, _ = sample
    records = records[records["true_cluster_id"] < 60].reset_index(drop=True)  # small: the suite's time budget
    params = {**{k: v for k, v in config.__dict__.items() if k not in ("labels",)}, "u_sample_pairs": 400,
              "use_embeddings": False}  # kNN on Spark: the tests above
    spark_params = {**params, "engine": "spark"}
    assert isinstance(pair_nodes(DedupeConfig(**spark_params)), SparkPairNodes)
    kept = ("dedupe_candidates", "dedupe_clusters", "dedupe_metrics", "dedupe_state", "dedupe_match_model",
            "golden_records")
    pandas_out = run_dedupe_pipeline(records, params, None, kept)
    frame_class = type(spark.range(1))
    # microsecond timestamps: Spark does not read parquet's nanosecond ones
    records.to_parquet(tmp_path / "customers.parquet", index=False, coerce_timestamps="us")
    table = spark.read.parquet(str(tmp_path / "customers.parquet"))
    with monkeypatch.context() as patch:
        counted = count_collects(patch)
        spark_out = run_dedupe_pipeline(table, spark_params, SparkDatasetV2(
            filepath=str(tmp_path / "scored_pairs"), file_format="parquet", save_args={"mode": "overwrite"}), kept)
    collected = [columns for columns, _ in counted]
    # candidate / scored pair tables never collected (the state's matches and evidence pairs are, by design)
    assert collected and not any("cosine" in columns for columns in collected)
    assert isinstance(spark_out["dedupe_candidates"], frame_class)
    scored = spark_out["dedupe_scored_pairs"]  # read back from the parquet the dataset wrote
    assert isinstance(scored, frame_class)
    pandas_scored = pandas_out["dedupe_scored_pairs"]
    assert scored.columns == list(pandas_scored.columns)
    s_scored = scored.toPandas().sort_values(["left", "right"], ignore_index=True)
    pd.testing.assert_frame_equal(s_scored.drop(columns="match_probability"),
                                  pandas_scored.drop(columns="match_probability"), check_dtype=False)
    np.testing.assert_allclose(s_scored["match_probability"], pandas_scored["match_probability"], rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(spark_out["dedupe_clusters"], pandas_out["dedupe_clusters"])
    assert pandas_out["dedupe_clusters"]["cluster_id"].nunique() < len(records)
    pd.testing.assert_frame_equal(spark_out["dedupe_state"].matches, pandas_out["dedupe_state"].matches,
                                  check_exact=False, rtol=1e-9)
    # the prepared records never collected (2 rows for the comparison names): the state keeps the Spark tables,
    # which save_state has the executors write; load_state reads back the pandas state
    assert not any(set(FIELDS) & set(columns) and rows > 2 for columns, rows in counted)
    for name, out in (("pandas", pandas_out), ("spark", spark_out)):
        save_state(out["dedupe_state"], tmp_path / f"state_{name}")
    assert (tmp_path / "state_spark" / "vectors.parquet").is_dir()
    s_state, p_state = load_state(tmp_path / "state_spark"), load_state(tmp_path / "state_pandas")
    pd.testing.assert_frame_equal(s_state.prepared, p_state.prepared)
    np.testing.assert_array_equal(s_state.vectors, p_state.vectors)
    np.testing.assert_array_equal(s_state.kth_cosine, p_state.kth_cosine)
    golden = SparkDatasetV2(filepath=str(tmp_path / "golden"), file_format="parquet", save_args={"mode": "overwrite"})
    assert isinstance(spark_out["golden_records"], frame_class)  # not collected by the node
    golden.save(spark_out["golden_records"])  # as conf/spark/catalog.yml's golden_records writes it
    expected, got = _golden(pandas_out["golden_records"]), _golden(golden.load().toPandas())
    assert (expected["cluster_size"] > 1).any() and list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert "f1" in pandas_out["dedupe_metrics"]
    assert spark_out["dedupe_match_model"]["prior"] == pytest.approx(pandas_out["dedupe_match_model"]["prior"], rel=1e-9)
    assert spark_out["dedupe_metrics"].keys() == pandas_out["dedupe_metrics"].keys()
    for key, value in pandas_out["dedupe_metrics"].items():
        assert spark_out["dedupe_metrics"][key] == pytest.approx(value, rel=1e-9), key
