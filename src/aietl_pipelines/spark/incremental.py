"""`dedupe.engine: spark`, incremental runs: the candidate pairs of the new records (`Steps.new_candidates`).

The Spark twin of `pairs.new_record_candidates`: the pairs with at least one record at or after row `n_old` (the
new ones) that a full run would find, and each new record's k-th neighbour cosine (kept in the state).

- Blocking: `spark.dedupe.blocking_pairs(new_from=n_old)` (and `segment_pairs` for free text): each rule a join on
  (rule, key) of the new rows against all rows of the blocks that hold a new row; block sizes count every row, old
  and new, so a block above `max_block_size` is the one a full run would find oversized and is joined as a sorted
  neighbourhood (ranked over the whole block, the window pairs of the new rows, salted by buckets of ranks), the
  same skew handling as the full candidates step. The oversized-block report counts the blocks holding a new row,
  as `pairs.oversized_blocks(new_from=)` does.
- Vector neighbours: the method the Spark candidates step would pick for these records (`_exact`):
  - exact (up to `knn_exact_max` records, or on a GPU): `candidates.knn_search` over blocks of new records
    against the vectors table (`spark.dedupe.table_knn`, nothing broadcast), with the earlier records' radii
    max(k-th cosine, `knn_min_cosine`):
    one pass gives each new record's k nearest among all records and the earlier records whose k-th neighbour it
    beats. The same call as the pandas step's (float32), so the same pairs and k-th cosines.
  - above, on the CPU: the inverted-file index of `spark.dedupe._ivf_best` (the same k-means centroids over all
    vectors, the same lists): every record is a member of its nearest list, each new record is routed to its
    `knn_probes` nearest lists (`mapInPandas`), and per list (`groupBy(list).applyInPandas`) the new records meet
    the members: their best k by a window, and the earlier members whose radius they reach (float32 products).
    Approximate as the full run's index is: an earlier record is reached when it is a member of one of the new
    record's lists (the full run reaches it when the new record is in one of its own lists).
- The pairs' cosines joined from the vectors table (`spark.dedupe.pair_cosines_table`), as
  `dedupe_tables.candidate_table`.

`new_candidate_table` returns the pairs as a Spark table; `engine.run_incremental` on the Spark engine
(`dedupe_tables.engine_run_incremental`, `Steps.whole_incremental`) keeps it on Spark through levels, scores and
clusters. The `Steps` adapter `new_record_candidates` collects and sorts it (the interface carries the pairs as a
pandas frame; `engine.run_incremental_steps` and engines that replace only this step use it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import candidates as cand
from aietl_pipelines.dedupe import pairs as pairing
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.spark.session import share


def _exact(n: int, config: DedupeConfig) -> bool:
    """Whether the Spark candidates step (`dedupe_tables.candidate_table`) searches n records exactly."""
    from aietl_pipelines.embeddings import resolve_device

    method = config.knn_method
    if method not in ("auto", "exact", "partitioned"):
        cand.nearest_neighbours(np.zeros((2, 1), np.float32), 1, method)  # the pandas path's error
    return method == "exact" or (method == "auto" and (n <= config.knn_exact_max
                                                       or resolve_device(config.device) != "cpu"))


def _new_exact(spark: Any, vectors: np.ndarray, n_old: int, k: int, radius: np.ndarray, config: DedupeConfig,
               table: Any = None) -> Any:
    """(row, neighbour, cosine, reverse) for the new rows: their k nearest other rows (reverse false) and the
    earlier rows whose radius they reach (reverse true; row = the new row, neighbour = the earlier one):
    `candidates.knn_search(..., precision="float32", radius=)` as the blocked cross join of the vectors table
    (`spark.dedupe.table_knn`: blocks of new rows against blocks of all rows, the radii a column of the base side);
    nothing broadcast."""
    from aietl_pipelines.spark import dedupe as sd

    table = sd.vectors_table(spark, vectors) if table is None else table
    return sd.table_knn(spark, table, len(vectors), vectors.shape[1], k, config, first=n_old, precision="float32",
                        radius=np.asarray(radius, dtype=np.float32)).localCheckpoint()


def _new_ivf(spark: Any, vectors: np.ndarray, n_old: int, k: int, radius: np.ndarray, config: DedupeConfig,
             table: Any = None) -> Any:
    """`_new_exact`'s table from the inverted-file index of `spark.dedupe._ivf_best` (same centroids and lists):
    every record a member of its nearest list, the new records routed to their `knn_probes` nearest lists; per
    list, the new records' best k among the members (by `sim`, the index's products) and the earlier members whose
    radius they reach (float32 products, as the pandas step's search)."""
    import torch
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from aietl_pipelines.spark import dedupe as sd

    n = len(vectors)
    n_lists = max(1, n // config.knn_list_size)
    probes = min(config.knn_probes, n_lists)
    full = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    low = cand.bf16_matmul_is_fast()  # the products in the index's precision, as `_ivf_best`
    with torch.inference_mode():
        centroids = cand._spherical_kmeans(full, n_lists, 8, 0)
    shared = share(spark, (centroids.numpy(), np.asarray(radius, dtype=np.float32)))

    dim = vectors.shape[1]

    def as_torch(column: pd.Series) -> Any:
        return torch.from_numpy(sd.as_matrix(column, dim))

    def assign(batches: Any) -> Any:
        c = torch.from_numpy(shared.value[0])
        c = c.to(torch.bfloat16) if low else c
        for b in batches:
            v = as_torch(b["vector"])
            with torch.inference_mode():
                top = torch.topk((v.to(c.dtype) @ c.T), probes, dim=1).indices.numpy()
            rows = b["row"].to_numpy(np.int64)
            rank = np.tile(np.arange(probes), len(b))
            keep = (rank == 0) | (np.repeat(rows, probes) >= n_old)  # earlier records: members only
            yield pd.DataFrame({"row": np.repeat(rows, probes)[keep], "rank": rank[keep],
                                "list": top.reshape(-1).astype(np.int64)[keep],
                                "vector": np.repeat(b["vector"].to_numpy(), probes)[keep]})

    empty = pd.DataFrame({"row": pd.Series([], dtype=np.int64), "neighbour": pd.Series([], dtype=np.int64),
                          "sim": pd.Series([], dtype=np.float64), "cosine": pd.Series([], dtype=np.float64),
                          "reverse": pd.Series([], dtype=bool)})

    def search(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values("row", kind="stable")  # members in row order, as the pandas index's lists
        members = group[group["rank"] == 0].reset_index(drop=True)
        queries = group[group["row"] >= n_old].reset_index(drop=True)
        if len(members) == 0 or len(queries) == 0:
            return empty
        q_full, b_full = as_torch(queries["vector"]), as_torch(members["vector"])
        q, b = (q_full.to(torch.bfloat16), b_full.to(torch.bfloat16)) if low else (q_full, b_full)
        member_rows = members["row"].to_numpy(np.int64)
        query_rows = queries["row"].to_numpy(np.int64)
        own = pd.Index(member_rows).get_indexer(query_rows)  # a new member meets its own list: never itself
        mine = np.flatnonzero(own >= 0)
        with torch.inference_mode():
            sims = (q @ b.T).float()
            sims[torch.from_numpy(mine), torch.from_numpy(own[mine])] = -2.0
            kk = min(k, len(members))
            top_sim, top_pos = torch.topk(sims, kk, dim=1)
            exact = torch.einsum("bd,bkd->bk", q_full, b_full[top_pos])
            earlier = np.flatnonzero(member_rows < n_old)
            products = (q_full @ b_full[torch.from_numpy(earlier)].T).numpy()
        forward = pd.DataFrame({"row": np.repeat(query_rows, kk),
                                "neighbour": member_rows[top_pos.numpy().reshape(-1)],
                                "sim": top_sim.numpy().reshape(-1).astype(np.float64),
                                "cosine": exact.numpy().reshape(-1).astype(np.float64), "reverse": False})
        limit = shared.value[1][member_rows[earlier]]
        qi, mi = np.nonzero(products >= limit[None, :])
        reverse = pd.DataFrame({"row": query_rows[qi], "neighbour": member_rows[earlier][mi], "sim": np.nan,
                                "cosine": products[qi, mi].astype(np.float64), "reverse": True})
        return pd.concat([forward[forward["sim"] > -1.5], reverse], ignore_index=True)

    table = sd.vectors_table(spark, vectors) if table is None else table
    try:
        routed = table.select("row", "vector").mapInPandas(assign, "row long, rank int, list long, vector binary")
        found = routed.groupBy("list").applyInPandas(
            search, "row long, neighbour long, sim double, cosine double, reverse boolean")
        # the best k per new row over its lists (a member met in two lists counts once: the window keeps distinct
        # neighbours because each record is a member of one list only)
        best = (found.where(~F.col("reverse"))
                .withColumn("n", F.row_number().over(Window.partitionBy("row").orderBy(F.desc("sim"))))
                .where(F.col("n") <= k).select("row", "neighbour", "cosine", "reverse"))
        out = best.unionByName(found.where(F.col("reverse")).select("row", "neighbour", "cosine", "reverse"))
        return out.localCheckpoint()
    finally:
        shared.unpersist()


def new_candidate_table(spark: Any, prepared: pd.DataFrame, vectors: np.ndarray, n_old: int, old_kth: np.ndarray,
                        config: DedupeConfig) -> tuple[Any, np.ndarray]:
    """The pairs with a record at or after row `n_old` as a Spark DataFrame (left long, right long, cosine
    double), distinct with left < right, materialised; and the new records' k-th neighbour cosine.

    The same pairs and cosines as `pairs.new_record_candidates` when the search is exact (see the module)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark import dedupe as sd

    n = len(prepared)
    rules = pairing.blocking_rules(prepared, config)
    found, report = sd.blocking_pairs(spark, prepared, rules, config.max_block_size, config.block_window,
                                      new_from=n_old)
    segments = sd.segment_pairs(spark, prepared, config, new_from=n_old)
    if segments is not None:
        found = found.unionByName(segments)
    pairing._log_dropped(pairing.oversized_blocks(prepared, config, new_from=n_old) if config.mode == "text"
                         else report, config)
    k = min(config.knn_k, n - 1)
    kth_new = np.full(n - n_old, np.inf)
    table = sd.vectors_table(spark, vectors) if vectors.shape[1] else None
    if vectors.shape[1] and k > 0:
        radius = np.maximum(old_kth, config.knn_min_cosine)
        exact = _exact(n, config)
        searched = (_new_exact if exact else _new_ivf)(spark, vectors, n_old, k, radius, config, table)
        forward = searched.where(~F.col("reverse"))
        kth = forward.groupBy("row").agg(F.min("cosine").alias("kth"), F.count(F.lit(1)).alias("met")).toPandas()
        rows = kth["row"].to_numpy(np.int64) - n_old
        if exact:
            kth_new[rows] = kth["kth"].to_numpy(np.float64)
        else:  # fewer than k met: -2, the index's filler (as `candidate_table`)
            kth_new = np.full(n - n_old, -2.0)
            kth_new[rows] = np.where(kth["met"].to_numpy() < k, -2.0, kth["kth"].to_numpy(np.float64))
        near = searched.where(F.col("reverse") | (F.col("cosine") >= config.knn_min_cosine))
        found = found.unionByName(near.select(F.least("row", "neighbour").alias("left"),
                                              F.greatest("row", "neighbour").alias("right")))
    pairs = found.select(F.col("left").cast("long"), F.col("right").cast("long")).distinct()
    if not vectors.shape[1]:
        return pairs.withColumn("cosine", F.lit(float("nan"))).localCheckpoint(), kth_new
    return sd.pair_cosines_table(pairs, table, vectors.shape[1]).localCheckpoint(), kth_new


def new_record_candidates(prepared: pd.DataFrame, vectors: np.ndarray, n_old: int, old_kth: np.ndarray,
                          config: DedupeConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """Spark twin of `pairs.new_record_candidates` (`Steps.new_candidates`): `new_candidate_table` collected and
    sorted by (left, right), as the pandas step returns it."""
    from aietl_pipelines.dedupe.steps import PANDAS
    from aietl_pipelines.spark import dedupe as sd

    if len(prepared) < 2 or n_old >= len(prepared):
        return PANDAS.new_candidates(prepared, vectors, n_old, old_kth, config)
    table, kth_new = new_candidate_table(sd._session(), prepared, vectors, n_old, old_kth, config)
    collected = table.toPandas().sort_values(["left", "right"], kind="stable", ignore_index=True)
    pairs = pd.DataFrame({"left": collected["left"].to_numpy(np.int64), "right": collected["right"].to_numpy(np.int64),
                          "cosine": collected["cosine"].to_numpy(np.float64)})
    return pairs, kth_new
