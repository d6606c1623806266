"""`dedupe.engine: spark`: the dedupe steps that grow with the number of records or pairs, on Spark.

The `Steps` interface (`dedupe/steps.py`) hands every step pandas frames and numpy arrays and expects the same
back, so each step here ships its inputs to Spark, does the heavy part there and returns exactly what the
pandas step returns (same columns, dtypes and row order). The heavy parts are the table functions of
`spark/dedupe_tables.py`, which keep the pairs as Spark DataFrames; `dedupe_tables.run` chains them without
bringing the pairs to the driver (`engine.run` takes it through `Steps.whole_run`), and the steps below are
adapters over the same functions for the `Steps` interface.
Replaced:

- `candidates`: blocking rules (and free text's segments, `pairs.segment_pairs`) as Spark joins on
  (rule, key, row, text); a block larger than `max_block_size`
  is not dropped but joined as a sorted neighbourhood (each row with the next `block_window - 1` in text
  order, as `candidates.blocking_pairs` does), the join salted by buckets of ranks so that one huge key is
  spread over many tasks. Vector candidates: the exact kNN of `candidates.knn_search`, queries split in blocks
  over the executors in `mapInPandas`, the vectors broadcast; above `knn_exact_max` records on the CPU, the
  pandas path's inverted-file index (`partitioned_knn`) with its lists as Spark groups (`_ivf_best`). The
  deeper search of records in crowds (`pairs.deeper_neighbours`, exact-search sizes only) runs on the driver.
  (`dedupe_tables.candidate_table`; the step collects and sorts it.)
- `compare` / `levels`: `scoring.pair_levels` (the existing comparison code) in `mapInPandas` over partitions
  of candidate pairs, the prepared records broadcast to the executors (`dedupe_tables.levels_table`).
- `cluster`: the match graph's connected components with `spark.graph.connected_components` (Large-Star /
  Small-Star); the weak-link splitting of components holding a pair scored below the threshold and the
  optional size cap per component in `applyInPandas` with `dedupe/cluster.py`'s helpers
  (`dedupe_tables.cluster_table`).
- `score`: EM on comparison-pattern counts (`spark/patterns.py`): the candidate levels grouped by pattern on
  Spark, only the (pattern, count) rows on the driver, `score.fit_model(..., counts=counts)` fits them; each
  pair's probability from its levels with the fitted model (a given model, in incremental runs: as pandas).
- `prepare`, `embed`, `golden`: `spark/dedupe_records.py` (normalisation in `mapInPandas`, embeddings of new
  texts only with the cache as a parquet table, golden records per group of clusters).

- `new_candidates` (incremental runs): `spark/incremental.py`, the blocking joins above restricted to the pairs with
  a new record (`new_from`: block sizes over all records, only the blocks holding a new record joined) and the new
  records' vector neighbours by the candidates step's method (exact search in `mapInPandas` with the earlier
  records' k-th cosine radius, as the pandas step; or the inverted-file index's lists as Spark groups).

Not replaced (the pandas step): `label`, used only through the adapters; the whole runs apply the labels on the
tables (`dedupe_tables.labelled_patterns` / `with_labels`).

Who uses these adapters: `engine.run_steps` / `engine.run_incremental_steps`. The whole runs keep the pairs on
Spark and do not go through them for the pairs: `engine.run` (the service, the benchmarks) takes `Steps.whole_run`
(`dedupe_tables.engine_run`) and `engine.run_incremental` (the `dedupe_incremental` pipeline, the service)
`Steps.whole_incremental` (`dedupe_tables.engine_run_incremental`), both collecting the pairs only when a caller
reads `result.pairs`; `train_dedupe_with_labels` (active learning) takes `Steps.label_pairs`
(`dedupe_tables.label_pairs`: scores per comparison pattern on the driver, the pairs a Spark table from which each
question's pair is fetched, one row per question); `pair_nodes`
(`spark/dedupe_nodes.py`) keeps the candidate, scored and clustered pairs as Spark DataFrames in
`kedro run --env spark --pipeline dedupe`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import candidates as cand
from aietl_pipelines.dedupe import pairs as pairing
from aietl_pipelines.dedupe import scoring
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.score import FellegiSunterModel
from aietl_pipelines.dedupe.steps import PANDAS, Steps, register_engine

logger = logging.getLogger(__name__)

#: Candidate pairs compared per Spark task (`mapInPandas`).
PAIRS_PER_TASK = 250_000
#: kNN queries per Spark task (each against all vectors).
QUERIES_PER_TASK = 4096
#: Ranks per salted bucket when joining an oversized block as a sorted neighbourhood.
RANK_BUCKET = 1024


def _session() -> Any:
    from aietl_pipelines.spark.session import get_spark

    return get_spark()


# ---------------------------------------------------------------------------------------------- candidates

def _keyed_records(spark: Any, prepared: pd.DataFrame, rules: list[list[str]]) -> Any:
    """(rule, key, row, text): one row per record and rule whose columns are all present.

    Key values are made strings on the driver with pandas' `astype(str)`, exactly as the pandas path keys its
    blocks; the columns of a rule are joined with \\x1f (as `pairs.oversized_blocks` does)."""
    from pyspark.sql import functions as F

    columns = sorted({c for rule in rules for c in rule})
    alias = {c: f"c{i}" for i, c in enumerate(columns)}
    frame = pd.DataFrame({"row": np.arange(len(prepared), dtype=np.int64)})
    for c in columns:
        values = prepared[c]
        frame[alias[c]] = values.astype(str).where(values.notna(), None).astype(object)
    frame["text"] = (prepared["__text"].astype(str).to_numpy() if "__text" in prepared.columns else "")
    records = spark.createDataFrame(frame)
    parts = []
    for r, rule in enumerate(rules):
        cols = [F.col(alias[c]) for c in rule]
        present = cols[0].isNotNull()
        for col in cols[1:]:
            present = present & col.isNotNull()
        parts.append(records.where(present).select(F.lit(r).alias("rule"), F.concat_ws("\x1f", *cols).alias("key"),
                                                   "row", "text"))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def blocking_pairs(spark: Any, prepared: pd.DataFrame, rules: list[list[str]], max_block_size: int,
                   window: int, new_from: int | None = None) -> tuple[Any, dict[str, float]]:
    """Spark DataFrame (left, right) of the blocking pairs (left < right, maybe repeated across rules), and the
    oversized-block counts (`pairs.oversized_blocks`' keys).

    With `new_from` (incremental runs, `candidates.blocking_pairs(new_from=)`): only the pairs with a row at or
    after that position. Block sizes still count every row, old and new, but only the blocks holding a new row
    are joined (and counted in the report), and each join starts from the new rows' side, so the work grows with
    the new records and the blocks they fall in, not with all blocks."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keyed = _keyed_records(spark, prepared, rules)
    sizes = keyed.groupBy("rule", "key").agg(F.count(F.lit(1)).alias("size"))  # partial aggregation: skew-safe
    if new_from is not None:  # only the blocks holding a new row
        sizes = sizes.join(keyed.where(F.col("row") >= new_from).select("rule", "key").distinct(), ["rule", "key"])
    keyed = keyed.join(sizes, ["rule", "key"]).localCheckpoint()
    big_stats = sizes.where(F.col("size") > max_block_size).agg(F.count(F.lit(1)).alias("blocks"),
                                                                F.sum("size").alias("records")).first()
    report = {"n_dropped_blocks": float(big_stats["blocks"] or 0),
              "n_records_in_dropped_blocks": float(big_stats["records"] or 0)}
    # blocks of at most max_block_size rows: all their pairs (bounded size: no skew)
    small = keyed.where((F.col("size") >= 2) & (F.col("size") <= max_block_size)).select("rule", "key", "row")
    # with new_from, b (the larger row of each pair) is a new row: every pair with a new row exactly once
    a, b = small.alias("a"), (small if new_from is None else small.where(F.col("row") >= new_from)).alias("b")
    found = (a.join(b, (F.col("a.rule") == F.col("b.rule")) & (F.col("a.key") == F.col("b.key"))
                    & (F.col("a.row") < F.col("b.row")))
             .select(F.col("a.row").alias("left"), F.col("b.row").alias("right")))
    if window >= 2 and report["n_dropped_blocks"]:
        # oversized blocks: rank in text order (ties by row, as the pandas lexsort), then each row with the next
        # window - 1 ranks. The join is on (rule, key, bucket of ranks): a row meets its own bucket and, when
        # its window reaches back, the previous one, so a key of millions of rows is spread over many tasks.
        step = max(RANK_BUCKET, window)
        ranked = (keyed.where(F.col("size") > max_block_size)
                  .withColumn("rank", F.row_number().over(Window.partitionBy("rule", "key").orderBy("text", "row")))
                  .select("rule", "key", "row", "rank"))
        starts = ranked.withColumn("bucket", F.floor(F.col("rank") / step))
        ends = ranked.withColumn("bucket", F.explode(F.array_distinct(F.array(
            F.floor(F.col("rank") / step), F.floor(F.greatest(F.col("rank") - (window - 1), F.lit(0)) / step)))))

        def near(starts: Any, ends: Any) -> Any:
            s, e = starts.alias("s"), ends.alias("e")
            return (s.join(e, (F.col("s.rule") == F.col("e.rule")) & (F.col("s.key") == F.col("e.key"))
                           & (F.col("s.bucket") == F.col("e.bucket"))
                           & (F.col("e.rank") - F.col("s.rank")).between(1, window - 1))
                    .select(F.col("s.row").alias("left"), F.col("e.row").alias("right")))

        if new_from is None:
            found = found.unionByName(near(starts, ends))
        else:  # the window pairs whose earlier or later row is new (a pair of two new rows comes twice)
            fresh = F.col("row") >= new_from
            found = found.unionByName(near(starts.where(fresh), ends)).unionByName(near(starts, ends.where(fresh)))
    ordered = found.select(F.least("left", "right").alias("left"), F.greatest("left", "right").alias("right"))
    return ordered, report


def segment_pairs(spark: Any, prepared: pd.DataFrame, config: DedupeConfig, new_from: int | None = None) -> Any:
    """Free text: `pairs.segment_pairs` on Spark (each text segment a blocking key, joined as `blocking_pairs`
    does), as a DataFrame (left, right) of record rows; None when the records have no segments. With `new_from`,
    only the pairs with a record at or after that row (`pairs.segment_pairs(new_from=)`)."""
    from pyspark.sql import functions as F

    keys = pairing._segment_keys(prepared)
    if keys.empty:
        return None
    # the (record, segment) rows are in record order: the new records' rows are those from this position on
    first = None if new_from is None else int(np.searchsorted(keys["row"].to_numpy(), new_from))
    found, _ = blocking_pairs(spark, keys, [["segment"]], config.max_block_size, config.block_window, new_from=first)
    rows = spark.createDataFrame(pd.DataFrame({"k": np.arange(len(keys), dtype=np.int64),
                                               "row": keys["row"].to_numpy(np.int64)}))
    a, b = rows.alias("a"), rows.alias("b")
    records = (found.join(a, F.col("left") == F.col("a.k")).join(b, F.col("right") == F.col("b.k"))
               .select(F.col("a.row").alias("x"), F.col("b.row").alias("y")).where(F.col("x") != F.col("y")))
    return records.select(F.least("x", "y").alias("left"), F.greatest("x", "y").alias("right"))


def _knn_partitions(spark: Any, vectors: np.ndarray, k: int, config: DedupeConfig) -> Any:
    """(row, neighbour, cosine) for the k nearest other rows of every row: `candidates.knn_search` over blocks
    of queries in `mapInPandas`, every block against all (broadcast) vectors. Exact, the pandas path's search."""
    n = len(vectors)
    shared = spark.sparkContext.broadcast(np.ascontiguousarray(vectors, dtype=np.float32))
    precision, device = config.knn_precision, config.device

    def search(batches: Any) -> Any:
        base = shared.value
        for batch in batches:
            for start in batch["id"].tolist():
                stop = min(start + QUERIES_PER_TASK, len(base))
                found = cand.knn_search(base[start:stop], base, k, precision=precision, self_offset=start,
                                        device=device)
                yield pd.DataFrame({"row": np.repeat(np.arange(start, stop, dtype=np.int64), k),
                                    "neighbour": found.indices.reshape(-1).astype(np.int64),
                                    "cosine": found.cosines.reshape(-1).astype(np.float64)})

    blocks = math.ceil(n / QUERIES_PER_TASK)
    starts = spark.range(0, n, QUERIES_PER_TASK, numPartitions=max(1, blocks))
    return starts.mapInPandas(search, "row long, neighbour long, cosine double")


def _ivf_best(spark: Any, vectors: np.ndarray, k: int, config: DedupeConfig) -> Any:
    """`candidates.partitioned_knn` with its lists as Spark groups: the same k-means centroids (fitted on the
    driver on a sample of 64 vectors per list), each vector assigned to its `knn_probes` nearest lists in
    `mapInPandas`, then per list (`groupBy(list).applyInPandas`) every vector routed there meets the list's members
    (those whose nearest list it is); the best k per vector over its lists, exact float32 cosines."""
    import torch
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    n = len(vectors)
    n_lists = max(1, n // config.knn_list_size)
    probes = min(config.knn_probes, n_lists)
    full = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    low = cand.bf16_matmul_is_fast()  # the products in the pandas index's precision, so the same lists are met
    with torch.inference_mode():
        centroids = cand._spherical_kmeans(full, n_lists, 8, 0)
    shared = spark.sparkContext.broadcast(centroids.numpy())

    def as_torch(column: pd.Series) -> Any:
        return torch.from_numpy(np.stack(column.to_numpy()).astype(np.float32))

    def assign(batches: Any) -> Any:
        c = torch.from_numpy(shared.value)
        c = c.to(torch.bfloat16) if low else c
        for b in batches:
            v = as_torch(b["vector"])
            with torch.inference_mode():
                top = torch.topk((v.to(c.dtype) @ c.T), probes, dim=1).indices.numpy()
            yield pd.DataFrame({"row": np.repeat(b["row"].to_numpy(np.int64), probes),
                                "rank": np.tile(np.arange(probes), len(b)), "list": top.reshape(-1).astype(np.int64),
                                "vector": np.repeat(b["vector"].to_numpy(), probes)})

    def search(group: pd.DataFrame) -> pd.DataFrame:
        members = group[group["rank"] == 0]
        if len(members) == 0:
            return pd.DataFrame({"row": [], "neighbour": [], "sim": [], "cosine": []})
        q_full, b_full = as_torch(group["vector"]), as_torch(members["vector"])
        q, b = (q_full.to(torch.bfloat16), b_full.to(torch.bfloat16)) if low else (q_full, b_full)
        with torch.inference_mode():
            sims = (q @ b.T).float()
            own = np.flatnonzero(group["rank"].to_numpy() == 0)  # members meet their own list: never themselves
            sims[torch.from_numpy(own), torch.arange(len(own))] = -2.0
            kk = min(k, len(members))
            top_sim, top_pos = torch.topk(sims, kk, dim=1)
            exact = torch.einsum("bd,bkd->bk", q_full, b_full[top_pos])
        rows = np.repeat(group["row"].to_numpy(np.int64), kk)
        out = pd.DataFrame({"row": rows, "neighbour": members["row"].to_numpy(np.int64)[top_pos.numpy().reshape(-1)],
                            "sim": top_sim.numpy().reshape(-1).astype(np.float64),
                            "cosine": exact.numpy().reshape(-1).astype(np.float64)})
        return out[out["sim"] > -1.5]

    frame = pd.DataFrame({"row": np.arange(n, dtype=np.int64), "vector": list(np.asarray(vectors, np.float32))})
    schema = "row long, rank int, list long, vector array<float>"
    try:
        routed = spark.createDataFrame(frame).mapInPandas(assign, schema)
        found = routed.groupBy("list").applyInPandas(search, "row long, neighbour long, sim double, cosine double")
        best = (found.withColumn("n", F.row_number().over(Window.partitionBy("row").orderBy(F.desc("sim"))))
                .where(F.col("n") <= k).select("row", "neighbour", "n", "cosine").localCheckpoint())
    finally:
        shared.unpersist()
    return best


def _ivf_neighbours(spark: Any, vectors: np.ndarray, k: int, config: DedupeConfig) -> cand.Neighbours:
    """`_ivf_best` collected as the pandas index's `Neighbours` (n x k; fewer than k met: cosine -2)."""
    n = len(vectors)
    best = _ivf_best(spark, vectors, k, config).toPandas()
    indices, cosines = np.zeros((n, k), dtype=np.int64), np.full((n, k), -2.0, dtype=np.float32)
    slot = best["n"].to_numpy() - 1
    indices[best["row"].to_numpy(), slot] = best["neighbour"].to_numpy()
    cosines[best["row"].to_numpy(), slot] = best["cosine"].to_numpy()  # fewer than k met: -2, never a pair
    return cand.Neighbours(indices, cosines, np.zeros((0, 2), dtype=np.int64))


def candidates_with_radius(prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                           ) -> tuple[pd.DataFrame, np.ndarray]:
    """Spark twin of `pairs.candidates_with_radius`: the same pairs frame and k-th neighbour cosines.

    `dedupe_tables.candidate_table` builds the pairs as a Spark table; this `Steps` adapter collects and sorts
    it (the interface carries the pairs as a pandas frame)."""
    from aietl_pipelines.spark.dedupe_tables import candidate_table

    if len(prepared) < 2:
        return PANDAS.candidates(prepared, vectors, config)
    table, kth = candidate_table(_session(), prepared, vectors, config)
    collected = table.toPandas().sort_values(["left", "right"], kind="stable", ignore_index=True)
    pairs = pd.DataFrame({"left": collected["left"].to_numpy(np.int64), "right": collected["right"].to_numpy(np.int64),
                          "cosine": collected["cosine"].to_numpy(np.float64)})
    return pairs, kth


# ---------------------------------------------------------------------------------------------- comparisons

def pair_levels(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                ) -> tuple[np.ndarray, list[str], list[int]]:
    """Spark twin of `scoring.pair_levels`: `dedupe_tables.levels_table` (the same function over partitions of
    pairs in `mapInPandas`), collected in the pairs' order for the `Steps` interface."""
    from aietl_pipelines.spark.dedupe_tables import level_columns, levels_table

    if len(pairs) < 2:
        return scoring.pair_levels(prepared, pairs, vectors, config)
    spark = _session()
    frame = pd.DataFrame({"e": np.arange(len(pairs), dtype=np.int64), "left": pairs["left"].to_numpy(np.int64),
                          "right": pairs["right"].to_numpy(np.int64),
                          "cosine": pairs["cosine"].to_numpy(np.float64)})
    table, names, sizes, dtype = levels_table(spark, prepared, spark.createDataFrame(frame), vectors, config)
    cols = level_columns(len(names))
    result = table.select("e", *cols).toPandas().sort_values("e", kind="stable")
    levels = result[cols].to_numpy().astype(dtype)
    if len(levels) != len(pairs):
        raise RuntimeError(f"spark comparisons returned {len(levels)} rows for {len(pairs)} pairs")
    return levels, names, sizes


def compare(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
            ) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    """Spark twin of `scoring.compare`: candidate and random pairs compared in one Spark job."""
    sample = pairing.pairs_frame(scoring.random_pairs(len(prepared), config), vectors)
    both = pd.concat([pairs[["left", "right", "cosine"]], sample], ignore_index=True)
    levels, names, sizes = pair_levels(prepared, both, vectors, config)
    return levels[: len(pairs)], levels[len(pairs):], names, sizes


# ---------------------------------------------------------------------------------------------- EM

def score(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int], config: DedupeConfig,
          model: FellegiSunterModel | None = None, *, rule_rates: dict[tuple[str, ...], float] | None = None
          ) -> tuple[np.ndarray, FellegiSunterModel]:
    """Spark twin of `scoring.score`: the model fitted on the pattern counts grouped on Spark."""
    from aietl_pipelines.spark.dedupe_tables import fit_patterns
    from aietl_pipelines.spark.patterns import pattern_counts

    if model is None and len(levels):
        patterns, counts = pattern_counts(_session(), levels)
        model = fit_patterns(patterns, counts, random_levels, names, sizes, config,  # scoring.score's options
                             rule_rates=rule_rates)
    return scoring.score(levels, random_levels, names, sizes, config, model)


# ---------------------------------------------------------------------------------------------- clusters

def cluster(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, config: DedupeConfig
            ) -> pd.DataFrame:
    """Spark twin of `cluster.cluster`: `dedupe_tables.cluster_table` over the scored pairs shipped to Spark
    (components on Spark, weak-link splitting and the cap per component in `applyInPandas`)."""
    from aietl_pipelines.spark.dedupe_tables import cluster_table, clusters_frame

    spark = _session()
    scored = spark.createDataFrame(pd.DataFrame({"e": np.arange(len(pairs), dtype=np.int64),  # the edge order
                                                 "left": pairs["left"].to_numpy(np.int64),
                                                 "right": pairs["right"].to_numpy(np.int64),
                                                 "match_probability": np.asarray(probability, dtype=np.float64)}),
                                   "e long, left long, right long, match_probability double")
    labels, components = cluster_table(spark, len(prepared), scored, config.match_threshold, config.max_cluster_size)
    return clusters_frame(prepared, labels, components)


def spark_steps() -> Steps:
    """The Spark engine's steps: the pandas ones with all but labels replaced."""
    from aietl_pipelines.spark import dedupe_records as records
    from aietl_pipelines.spark.dedupe_nodes import SparkPairNodes
    from aietl_pipelines.spark.incremental import new_record_candidates

    return dataclasses.replace(PANDAS, prepare=records.prepare_records, embed=records.embed,
                               candidates=candidates_with_radius, new_candidates=new_record_candidates,
                               compare=compare, levels=pair_levels,
                               score=score, cluster=cluster, golden=records.golden_records,
                               whole_run=SparkPairNodes.engine_run,  # engine.run keeps the pairs on Spark too
                               whole_incremental=SparkPairNodes.engine_run_incremental,  # and run_incremental
                               label_pairs=SparkPairNodes.label_pairs,  # and train_dedupe_with_labels
                               pair_nodes=SparkPairNodes())  # the Kedro nodes keep the pairs on Spark


register_engine("spark", spark_steps)
