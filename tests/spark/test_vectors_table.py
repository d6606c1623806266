"""The record vectors as a Spark table (`spark.dedupe.vectors_table`): the exact kNN as a blocked cross join, the
deeper search and the pairs' cosines from the table give the pandas search's neighbours, cosines and k-th radii,
ties included, and nothing of the size of the vectors is broadcast (-m spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import candidates as cand
from aietl_pipelines.dedupe import pairs as pairing
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.steps import PANDAS

pytestmark = pytest.mark.spark

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "state": "state", "phone": "phone", "email": "email", "date_of_birth": "date"}
BLOCKING = [["email"], ["phone"], ["date_of_birth", "last_name"], ["postcode", "last_name"]]
BLOCK = 64  # queries and base rows per task here: 3 blocks of queries x 3 of base rows (the last ones larger)


def _sizes(value) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=True).sum())
    if isinstance(value, (tuple, list)):
        return sum(_sizes(v) for v in value)
    return 0


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory, count_collects):
    """The candidates on the table path with the base cut into blocks (a full run and an incremental run) and with
    one base block (every vector in each task: the default up to `BASE_ROWS_PER_TASK` records), with every
    broadcast, every pickled Python function shipped to the executors and every collect recorded."""
    import pyspark.core.rdd as rdd

    from aietl_pipelines.spark import dedupe as sd
    from aietl_pipelines.spark import incremental
    from aietl_pipelines.spark.dedupe_tables import candidate_table

    records = generate_customers(n_entities=120, seed=7)
    copies = records.iloc[::7].copy()  # exact copies of records: equal vectors, ties at the k-th place
    copies["record_id"] = copies["record_id"].astype(str) + "_copy"
    records = pd.concat([records, copies], ignore_index=True)
    config = DedupeConfig(fields=FIELDS, blocking=BLOCKING, knn_max_k=40,  # one deeper round: the time budget
                          cache_dir=str(tmp_path_factory.mktemp("vectors_cache")))
    prepared = PANDAS.prepare(records, config)
    vectors = PANDAS.embed(prepared, config)
    n_old = 150

    broadcasts: list[int] = []
    commands: list[int] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sd, "QUERIES_PER_TASK", BLOCK)
        context = type(spark.sparkContext)
        original_broadcast, original_prepare = context.broadcast, rdd._prepare_for_python_RDD

        def broadcast(self, value):
            broadcasts.append(_sizes(value))
            return original_broadcast(self, value)

        def prepare(sc, command):
            out = original_prepare(sc, command)
            commands.append(len(out[0]))
            return out

        patch.setattr(context, "broadcast", broadcast)
        patch.setattr(rdd, "_prepare_for_python_RDD", prepare)
        collected = count_collects(patch)
        whole, whole_kth = candidate_table(spark, prepared, vectors, config)  # one base block
        patch.setattr(sd, "BASE_ROWS_PER_TASK", BLOCK)
        table, kth = candidate_table(spark, prepared, vectors, config)
        old_kth = PANDAS.candidates(prepared.iloc[:n_old], vectors[:n_old], config)[1]
        new_table, new_kth = incremental.new_candidate_table(spark, prepared, vectors, n_old, old_kth, config)
        runs = [(t.toPandas(), r) for t, r in ((whole, whole_kth), (table, kth), (new_table, new_kth))]
    return {"prepared": prepared, "vectors": vectors, "config": config, "n_old": n_old, "runs": runs,
            "broadcasts": broadcasts, "commands": commands,
            "collected": collected[:-3]}  # the three pair tables collected above for the comparisons


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(["left", "right"], kind="stable", ignore_index=True)
    return pd.DataFrame({"left": frame["left"].to_numpy(np.int64), "right": frame["right"].to_numpy(np.int64),
                         "cosine": frame["cosine"].to_numpy(np.float64)})


def test_table_knn_gives_the_pandas_pairs_cosines_and_radii(runs):
    prepared, vectors, config = runs["prepared"], runs["vectors"], runs["config"]
    pairs, kth = PANDAS.candidates(prepared, vectors, config)
    for found, found_kth in runs["runs"][:2]:  # one base block, then three
        pd.testing.assert_frame_equal(_sorted(found), pairs)  # the cosines bit for bit
        np.testing.assert_array_equal(found_kth, kth)  # bit for bit, the deeper search's radii included
    # not vacuous: queries whose k-th similarity is shared by further rows (exact copies), where the lower-row rule
    # and `torch.topk` keep different neighbours
    n, k = len(vectors), min(config.knn_k, len(vectors) - 1)
    found = cand.knn_search(vectors, vectors, k, self_offset=0)
    import torch

    sims = (torch.from_numpy(vectors) @ torch.from_numpy(vectors).T).numpy()
    np.fill_diagonal(sims, -2.0)
    lower_rows = np.lexsort((np.tile(np.arange(n), (n, 1)), -sims), axis=1)[:, :k]
    differ = sum(set(lower_rows[i]) != set(found.indices[i]) for i in range(n))
    assert differ > 0
    assert len(np.unique(vectors, axis=0)) < n
    assert pairing.deeper_neighbours(vectors, found.cosines.min(axis=1).astype(np.float64), config)[0].size


def test_incremental_table_knn_gives_the_pandas_pairs(runs):
    prepared, vectors, config, n_old = runs["prepared"], runs["vectors"], runs["config"], runs["n_old"]
    _, old_kth = PANDAS.candidates(prepared.iloc[:n_old], vectors[:n_old], config)
    pairs, kth_new = pairing.new_record_candidates(prepared, vectors, n_old, old_kth, config)
    found, found_kth = runs["runs"][2]
    pd.testing.assert_frame_equal(_sorted(found), pairs)
    np.testing.assert_array_equal(found_kth, kth_new)
    assert (pairs["left"] < n_old).any() and len(pairs) > len(prepared) - n_old


def test_no_vectors_broadcast_or_collected(runs):
    """Neither a broadcast nor a pickled function carries the vectors (a quarter of their size at most: the
    command pickles are the functions and their small arguments), and what the driver collects is at most one row
    per record (the radii) or the similarity floor's sample cosines, never a vector column."""
    vectors = runs["vectors"]
    limit = vectors.nbytes // 4
    assert max(runs["broadcasts"], default=0) < limit
    assert runs["commands"] and max(runs["commands"]) < limit
    assert runs["collected"]
    for columns, rows in runs["collected"]:
        assert not any("vector" in c for c in columns), columns
        assert rows <= max(len(vectors), 50_000), (columns, rows)


def test_vectors_table_is_built_once_per_array(spark):
    from aietl_pipelines.spark import dedupe as sd

    vectors = np.eye(3, 4, dtype=np.float32)
    table = sd.vectors_table(spark, vectors)
    assert sd.vectors_table(spark, vectors) is table
    found = table.toPandas().sort_values("row")
    np.testing.assert_array_equal(sd.as_matrix(found["vector"], 4), vectors)


def test_record_vectors_assembled_on_the_executors_equal_the_array(spark, runs):
    """`dedupe_records.record_vectors_table`: the records' vectors summed per record on the executors from an
    embedding table (key, vector) equal the array `prepare.embed` assembles on the driver, bit for bit."""
    from aietl_pipelines.dedupe.prepare import embedded_values
    from aietl_pipelines.embeddings import embed_texts, text_key
    from aietl_pipelines.spark import dedupe as sd
    from aietl_pipelines.spark.dedupe_records import record_vectors_table

    prepared, vectors, config = runs["prepared"], runs["vectors"], runs["config"]
    texts = sorted(set(embedded_values(prepared, config)[1]))
    cached = embed_texts(texts, cache_dir=config.cache_dir, device=config.device,  # all in the cache: no model run
                         precision=config.embed_precision)
    stored = spark.createDataFrame(pd.DataFrame({"key": [text_key(t) for t in texts], "vector": list(cached)}),
                                   "key string, vector array<float>")
    found = record_vectors_table(spark, prepared, config, stored).toPandas().sort_values("row")
    assert found["row"].tolist() == list(range(len(prepared)))
    np.testing.assert_array_equal(sd.as_matrix(found["vector"], vectors.shape[1]), vectors)
