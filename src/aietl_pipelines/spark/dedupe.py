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
  spread over many tasks. Vector candidates, from the vectors as a Spark table (`vectors_table`; nothing
  broadcast): the exact kNN of `candidates.knn_search` as a cross join of query blocks and base blocks
  (`table_knn`: with one base block, the pandas call itself per query block); above `knn_exact_max` records on
  the CPU, the pandas path's inverted-file index (`partitioned_knn`) with its lists as Spark groups
  (`_ivf_best`); the deeper search of records in crowds on the table too (`deeper_table`); the pairs' cosines
  joined from the table (`pair_cosines_table`). (`dedupe_tables.candidate_table`; the step collects and sorts
  it.)
- `compare` / `levels`: `scoring.pair_levels` (the existing comparison code) per bucket of candidate pairs,
  cogrouped with the prepared records the bucket references (a table joined to the pairs; word and value counts
  counted on Spark: `spark/dedupe_levels.py`, `dedupe_tables.levels_table`).
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
from aietl_pipelines.spark.session import parallelism, partitions_of, share

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

def _keyed_records(spark: Any, prepared: Any, rules: list[list[str]]) -> Any:
    """(rule, key, row, text): one row per record and rule whose columns are all present, from the records table
    (`record_tables.records_table`).

    The prepared columns are strings, so their values are the keys pandas' `astype(str)` makes for the pandas
    path's blocks (a missing `__text` is "None" there); the columns of a rule are joined with \x1f (as
    `pairs.oversized_blocks` does)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark.record_tables import records_table

    prepared = records_table(spark, prepared)
    columns = sorted({c for rule in rules for c in rule})
    alias = {c: f"c{i}" for i, c in enumerate(columns)}
    text = F.coalesce(F.col("__text"), F.lit("None")) if "__text" in prepared.columns else F.lit("")
    records = prepared.table.select(F.col("__row").alias("row"), *[F.col(f"`{c}`").alias(alias[c]) for c in columns],
                                    text.alias("text"))
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


def blocking_pairs(spark: Any, prepared: Any, rules: list[list[str]], max_block_size: int,
                   window: int, new_from: int | None = None) -> tuple[Any, dict[str, float]]:
    """Spark DataFrame (left, right) of the blocking pairs (left < right, maybe repeated across rules), and the
    oversized-block counts (`pairs.oversized_blocks`' keys).

    With `new_from` (incremental runs, `candidates.blocking_pairs(new_from=)`): only the pairs with a row at or
    after that position. Block sizes still count every row, old and new, but only the blocks holding a new row
    are joined (and counted in the report), and each join starts from the new rows' side, so the work grows with
    the new records and the blocks they fall in, not with all blocks."""
    return keyed_blocking_pairs(_keyed_records(spark, prepared, rules), max_block_size, window, new_from)


def keyed_blocking_pairs(keyed: Any, max_block_size: int, window: int, new_from: int | None = None
                         ) -> tuple[Any, dict[str, float]]:
    """`blocking_pairs` of keyed rows (rule, key, row, text): the pairs of rows sharing a (rule, key)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

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


def segment_pairs(spark: Any, prepared: Any, config: DedupeConfig, new_from: int | None = None,
                  report: dict[str, float] | None = None) -> Any:
    """Free text: `pairs.segment_pairs` on Spark (each text segment a blocking key, joined as `blocking_pairs`
    does), as a DataFrame (left, right) of record rows; None when the records have no segments. With `new_from`,
    only the pairs with a record at or after that row (`pairs.segment_pairs(new_from=)`). `report`: the
    segments' oversized blocks are added to it (`blocking_pairs`' counts)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark.record_tables import records_table

    prepared = records_table(spark, prepared)
    if "segments" not in prepared.columns:
        return None
    # each (record, segment) keyed by the record's row itself: the same blocks as the pandas path's (record,
    # segment) rows, in which a record holds a segment once
    keyed = prepared.table.select(F.lit(0).alias("rule"), F.explode("segments").alias("key"),
                                  F.col("__row").alias("row"), F.coalesce(F.col("__text"), F.lit("None")).alias("text"))
    found, counted = keyed_blocking_pairs(keyed, config.max_block_size, config.block_window, new_from=new_from)
    _add_counts(report, counted)
    return found.where(F.col("left") != F.col("right"))


def _add_counts(report: dict[str, float] | None, counted: dict[str, float]) -> None:
    if report is not None:
        for key, value in counted.items():
            report[key] = report.get(key, 0.0) + value


# ---------------------------------------------------------------------------------------------- vectors table

#: Base rows per task in the exact kNN (`table_knn`): up to this many records, each task holds every vector (1.5 GB
#: of float32 at 384 dimensions) and runs the pandas search itself on its block of queries; above, the base is cut
#: into blocks of this many rows and the per-block best merged.
BASE_ROWS_PER_TASK = 1_000_000
#: Rows per partition of a vectors table.
VECTORS_PER_PARTITION = 8192
#: `candidates.knn_search`'s query block (its products run this many queries at a time).
SEARCH_BLOCK = 2048
#: Queries whose last places tie (equal similarities) take the neighbours `torch.topk` picks from their whole row
#: of similarities, as the pandas search does (`table_knn`); False: the lower rows, without the second pass.
TIES_AS_PANDAS = True

_TABLES: dict[int, tuple[Any, Any]] = {}  # id(array) -> (weak reference to the array, its vectors table)


def vectors_table(spark: Any, vectors: np.ndarray) -> Any:
    """The record vectors as a Spark table (row long, vector binary: the row's float32 values, little-endian
    bytes), materialised on the executors (local checkpoint), built once per array: the table registered for this
    array (`register_vectors_table`, e.g. by the embed step) or a new one shipped from it (`createDataFrame`,
    never a broadcast)."""
    found = _TABLES.get(id(vectors))
    if found is not None and found[0]() is vectors and found[1].sparkSession is spark:
        return found[1]
    matrix = np.ascontiguousarray(vectors, dtype="<f4")
    frame = pd.DataFrame({"row": np.arange(len(matrix), dtype=np.int64), "vector": [r.tobytes() for r in matrix]})
    table = spark.createDataFrame(frame, "row long, vector binary")  # partitions of consecutive rows
    parts = max(parallelism(spark), math.ceil(len(matrix) / VECTORS_PER_PARTITION))
    have = partitions_of(table)
    if have is None or parts > have:
        table = table.repartition(parts)
    table = table.localCheckpoint()
    register_vectors_table(vectors, table)
    return table


def register_vectors_table(vectors: np.ndarray, table: Any) -> None:
    """Make `table` (row long, vector binary) the vectors table of the array `vectors` (`vectors_table`)."""
    import weakref

    _TABLES[id(vectors)] = (weakref.ref(vectors), table)
    weakref.finalize(vectors, _TABLES.pop, id(vectors), None)


def as_matrix(column: pd.Series, dim: int) -> np.ndarray:
    """The float32 matrix of a `vector` column of a vectors table (one row per value)."""
    if not len(column):
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(column.tolist()), dtype="<f4").reshape(len(column), dim).astype(np.float32)


def pair_cosines_table(pairs: Any, table: Any, dim: int) -> Any:
    """`pairs` (left, right and any columns) with `cosine`: each pair's vectors joined from the vectors table on
    left and on right and multiplied in `mapInPandas` by `candidates.pair_cosines`' product (np.einsum over float32
    rows, as float64): the pandas path's numbers, bit for bit. Nothing is broadcast."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    left = table.select(F.col("row").alias("left"), F.col("vector").alias("__lv"))
    right = table.select(F.col("row").alias("right"), F.col("vector").alias("__rv"))
    joined = pairs.join(left, "left").join(right, "right").select(*pairs.columns, "__lv", "__rv")

    def cosines(batches: Any) -> Any:
        for b in batches:
            a, c = as_matrix(b["__lv"], dim), as_matrix(b["__rv"], dim)
            yield b.drop(columns=["__lv", "__rv"]).assign(cosine=np.einsum("ij,ij->i", a, c).astype(np.float64))

    fields = [f for f in pairs.schema.fields if f.name != "cosine"]
    schema = T.StructType([*fields, T.StructField("cosine", T.DoubleType(), True)])
    return joined.mapInPandas(cosines, schema)


def _blocks(n: int, per_block: int) -> int:
    return max(1, n // per_block)


def table_knn(spark: Any, table: Any, n: int, dim: int, k: int, config: DedupeConfig, *, first: int = 0,
              rows: np.ndarray | None = None, exclude_self: bool = True, precision: str | None = None,
              radius: np.ndarray | None = None) -> Any:
    """Exact top-k over the vectors table without broadcasting it: `candidates.knn_search` as a blocked cross join.

    The queries are the rows from `first` on (or the given `rows`), cut into blocks of `QUERIES_PER_TASK`; the
    base is all n rows of `table`, cut into blocks of `BASE_ROWS_PER_TASK` (the last block takes the rest); each
    (query block, base block) pair is one group of `cogroup(...).applyInPandas`, the base rows reaching it through
    a shuffle of the table (replicated once per query block), never a broadcast.

    One base block (up to `BASE_ROWS_PER_TASK` records, every size the exact search runs at on a CPU): the task
    calls `candidates.knn_search` on its queries and all the vectors, the pandas step's call (`precision`,
    `self_offset`, `radius`): the same neighbours, ties, cosines and radius pairs, bit for bit.

    Several base blocks: the query block's products with the base block in
    sub-blocks of 2,048 queries (the pandas search's blocks), in bfloat16 when `low` (the pandas search's
    precision choice, made by the caller) else float32, a query never its own neighbour (`exclude_self`), and each
    query's best k + 1 there (equal similarities: the lower row first); then the best per query over all base
    blocks by a window ordered by (similarity desc, row). The cosine of each kept pair is recomputed in float32, as
    `knn_search` does.

    Ties: where the (k+1)-th similarity of a query equals its k-th, several rows tie for the last places and
    `torch.topk` in the pandas search keeps the ones its selection algorithm meets (not the lower rows; it depends
    on the whole row). For those queries only, a second pass over their query blocks sends each one's whole row
    of similarities to one group (`groupBy(row).applyInPandas`) and `torch.topk` picks from it: the pandas
    search's neighbours, at the cost of (tied queries x n) values shuffled (`TIES_AS_PANDAS`).

    With `radius` (one value per leading base row, incremental runs): also the (query, base row) pairs whose
    similarity reaches that row's radius, as `knn_search(radius=)` reports them.

    Returns (row, neighbour, cosine, reverse): the best k per query (reverse false) and the radius pairs (reverse
    true, row = the query, cosine NaN)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    per, per_base = QUERIES_PER_TASK, BASE_ROWS_PER_TASK
    precision = precision or config.knn_precision
    low = search_precision_is_low(n, config, precision)
    if rows is None:
        queries = table.where(F.col("row") >= first).withColumn("q", F.col("row") - F.lit(first))
        n_queries = n - first
    else:
        positions = spark.createDataFrame(pd.DataFrame({"row": np.asarray(rows, dtype=np.int64),
                                                        "q": np.arange(len(rows), dtype=np.int64)}))
        queries, n_queries = table.join(positions, "row"), len(rows)
    n_qb, n_bb = _blocks(n_queries, per), _blocks(n, per_base)
    qb = F.least(F.floor(F.col("q") / per), F.lit(n_qb - 1)).cast("long")
    bb = F.least(F.floor(F.col("row") / per_base), F.lit(n_bb - 1)).cast("long")
    queries = queries.select(qb.alias("qb"), F.col("row").alias("q_row"), "q", F.col("vector").alias("q_vector"))
    base = table
    if radius is not None:
        limits = spark.createDataFrame(pd.DataFrame({"row": np.arange(len(radius), dtype=np.int64),
                                                     "radius": np.asarray(radius, dtype=np.float32)}),
                                       "row long, radius float")
        base = base.join(limits, "row", "left")
    else:
        base = base.withColumn("radius", F.lit(None).cast("float"))
    base = base.select(bb.alias("bb"), F.col("row").alias("b_row"), F.col("vector").alias("b_vector"), "radius")
    device, has_radius = config.device, radius is not None  # (the closures must not hold the radius array)
    out_schema = T.StructType([T.StructField("row", T.LongType()), T.StructField("neighbour", T.LongType()),
                               T.StructField("sim", T.DoubleType()), T.StructField("reverse", T.BooleanType())])

    def products(q_frame: pd.DataFrame, b_frame: pd.DataFrame, whole: bool) -> pd.DataFrame:
        """One (query block, base block) group: the best k + 1 per query (or, `whole`, every product of the
        queries marked `whole`) and the radius pairs."""
        import torch

        from aietl_pipelines.embeddings import resolve_device

        if not len(q_frame) or not len(b_frame):
            return pd.DataFrame({f.name: [] for f in out_schema.fields})
        q_frame = q_frame.sort_values("q", kind="stable")
        b_frame = b_frame.sort_values("b_row", kind="stable")
        target = torch.device(resolve_device(device))
        full_q = torch.from_numpy(as_matrix(q_frame["q_vector"], dim))
        full_b = torch.from_numpy(as_matrix(b_frame["b_vector"], dim))
        q, b = (full_q.to(torch.bfloat16), full_b.to(torch.bfloat16)) if low else (full_q, full_b)
        b = b.to(target)
        q_rows, b_rows = q_frame["q_row"].to_numpy(np.int64), b_frame["b_row"].to_numpy(np.int64)
        marked = q_frame["whole"].to_numpy(bool) if whole else None
        limit_all = b_frame["radius"].to_numpy(dtype=np.float64)
        with_radius = np.flatnonzero(~np.isnan(limit_all))
        limit = torch.from_numpy(limit_all[with_radius].astype(np.float32)).to(q.dtype).to(target)
        kk = min(k + 1, len(b_rows))
        out = []
        with torch.inference_mode():
            for start in range(0, len(q_rows), SEARCH_BLOCK):  # the pandas search's query blocks
                stop = min(start + SEARCH_BLOCK, len(q_rows))
                sims = q[start:stop].to(target) @ b.T
                if exclude_self:
                    at = np.searchsorted(b_rows, q_rows[start:stop])
                    mine = np.flatnonzero((at < len(b_rows)) & (b_rows[np.minimum(at, len(b_rows) - 1)]
                                                                == q_rows[start:stop]))
                    sims[torch.from_numpy(mine).to(target), torch.from_numpy(at[mine]).to(target)] = -2.0
                if whole:  # every product of the marked queries, for `torch.topk` over their whole rows
                    pick = np.flatnonzero(marked[start:stop])
                    if len(pick):
                        part = sims[torch.from_numpy(pick).to(target)].float().cpu().numpy()
                        out.append(pd.DataFrame({"row": np.repeat(q_rows[start + pick], len(b_rows)),
                                                 "neighbour": np.tile(b_rows, len(pick)),
                                                 "sim": part.reshape(-1).astype(np.float64), "reverse": False}))
                    continue
                if has_radius and len(with_radius):
                    hit = torch.nonzero(sims[:, torch.from_numpy(with_radius).to(target)] >= limit[None, :])
                    hit = hit.cpu().numpy()
                    if len(hit):
                        out.append(pd.DataFrame({"row": q_rows[start + hit[:, 0]],
                                                 "neighbour": b_rows[with_radius[hit[:, 1]]],
                                                 "sim": np.nan, "reverse": True}))
                top_sim, top = torch.topk(sims, kk, dim=1)
                tied = torch.nonzero((sims >= top_sim[:, -1:]).sum(dim=1) > kk).reshape(-1)
                if len(tied):  # more rows share the last similarity than fit: the lower rows first
                    ordered = torch.sort(sims[tied].float(), dim=1, descending=True, stable=True)
                    top_sim[tied] = ordered.values[:, :kk].to(top_sim.dtype)
                    top[tied] = ordered.indices[:, :kk].to(target)
                out.append(pd.DataFrame({"row": np.repeat(q_rows[start:stop], kk),
                                         "neighbour": b_rows[top.cpu().numpy().reshape(-1)],
                                         "sim": top_sim.float().cpu().numpy().reshape(-1).astype(np.float64),
                                         "reverse": False}))
        if not out:
            return pd.DataFrame({f.name: [] for f in out_schema.fields})
        found = pd.concat(out, ignore_index=True)
        return found[found["reverse"] | (found["sim"] > -1.5) | whole]  # never the query itself (but whole rows)

    if n_bb == 1:
        return _whole_base_knn(spark, queries, base, n_qb, dim, k, exclude_self, precision, has_radius, device)

    def cross(q_side: Any, whole: bool) -> Any:
        q_side = q_side.crossJoin(spark.range(n_bb).select(F.col("id").alias("bb")))
        b_side = base.crossJoin(spark.range(n_qb).select(F.col("id").alias("qb")))
        return (q_side.groupBy("qb", "bb").cogroup(b_side.groupBy("qb", "bb"))
                .applyInPandas(lambda a, b: products(a, b, whole), out_schema))

    found = cross(queries, False).localCheckpoint()
    order = Window.partitionBy("row").orderBy(F.desc("sim"), F.asc("neighbour"))
    ranked = (found.where(~F.col("reverse")).withColumn("n", F.row_number().over(order))
              .withColumn("next_sim", F.lead("sim").over(order)).where(F.col("n") <= k))
    best = ranked.select("row", "neighbour", "n")
    if TIES_AS_PANDAS:
        tied = ranked.where((F.col("n") == k) & (F.col("next_sim") == F.col("sim"))).select(
            F.col("row").alias("q_row"), F.lit(True).alias("whole")).localCheckpoint()
        if not tied.isEmpty():
            marked = queries.join(tied, "q_row", "left").fillna(False, ["whole"])
            blocks = marked.where(F.col("whole")).select("qb").distinct()
            rows_of = cross(marked.join(blocks, "qb"), True)
            low_ = low

            def pick(group: pd.DataFrame) -> pd.DataFrame:
                import torch

                group = group.sort_values("neighbour", kind="stable")
                values = torch.from_numpy(group["sim"].to_numpy(np.float32))
                values = values.to(torch.bfloat16) if low_ else values
                top = torch.topk(values[None, :], k, dim=1).indices[0].numpy()
                return group.iloc[top][["row", "neighbour"]].assign(n=np.arange(1, len(top) + 1, dtype=np.int32))

            picked = rows_of.groupBy("row").applyInPandas(pick, "row long, neighbour long, n int")
            best = best.join(tied.select(F.col("q_row").alias("row")), "row", "left_anti").unionByName(picked)
    best = layout_cosines(best, table, dim, k).withColumn("reverse", F.lit(False))
    if radius is None:
        return best
    return best.unionByName(found.where(F.col("reverse")).select(
        "row", "neighbour", F.lit(None).cast("double").alias("cosine"), "reverse"))


def _whole_base_knn(spark: Any, queries: Any, base: Any, n_qb: int, dim: int, k: int, exclude_self: bool,
                    precision: str, has_radius: bool, device: str) -> Any:
    """`table_knn` with one base block: each query block (a `cogroup` group) meets all the vectors and runs
    `candidates.knn_search` on them, the pandas call; (row, neighbour, cosine, reverse)."""
    from pyspark.sql import functions as F

    schema = "row long, neighbour long, cosine double, reverse boolean"

    def search(q_frame: pd.DataFrame, b_frame: pd.DataFrame) -> pd.DataFrame:
        if not len(q_frame):
            return pd.DataFrame({"row": [], "neighbour": [], "cosine": [], "reverse": []})
        q_frame = q_frame.sort_values("q", kind="stable")
        b_frame = b_frame.sort_values("b_row", kind="stable")
        q_rows, b_rows = q_frame["q_row"].to_numpy(np.int64), b_frame["b_row"].to_numpy(np.int64)
        if not np.array_equal(b_rows, np.arange(len(b_rows))):
            raise RuntimeError("table_knn: the vectors table's rows are not 0..n-1")
        offset = None
        if exclude_self:
            offset = int(q_rows[0])
            if not np.array_equal(q_rows, np.arange(offset, offset + len(q_rows))):
                raise RuntimeError("table_knn: a query block excluding itself must be consecutive rows")
        limit = None
        if has_radius:
            values = b_frame["radius"].to_numpy(np.float64)
            limit = values[: int((~np.isnan(values)).sum())].astype(np.float32)  # the leading (earlier) rows
        found = cand.knn_search(as_matrix(q_frame["q_vector"], dim), as_matrix(b_frame["b_vector"], dim), k,
                                precision=precision, self_offset=offset, radius=limit, device=device)
        kk = found.indices.shape[1]
        out = pd.DataFrame({"row": np.repeat(q_rows, kk), "neighbour": found.indices.reshape(-1).astype(np.int64),
                            "cosine": found.cosines.reshape(-1).astype(np.float64), "reverse": False})
        if has_radius and len(found.reverse):
            out = pd.concat([out, pd.DataFrame({"row": q_rows[found.reverse[:, 0]],
                                                "neighbour": found.reverse[:, 1].astype(np.int64),
                                                "cosine": np.nan, "reverse": True})], ignore_index=True)
        return out

    every = base.crossJoin(spark.range(n_qb).select(F.col("id").alias("qb")))
    return queries.groupBy("qb").cogroup(every.groupBy("qb")).applyInPandas(search, schema)


def layout_cosines(best: Any, table: Any, dim: int, k: int) -> Any:
    """(row, neighbour, cosine) from each query's k best (row, neighbour, n: rank 1..k): the cosines as
    `candidates.knn_search` computes them, `torch.einsum("bd,bkd->bk")` over the rows' k neighbours in rank order
    (its result depends on a neighbour's place among the k, not on the other rows: the same bits as the pandas
    search), the vectors joined from the table (k per query; nothing broadcast)."""
    from pyspark.sql import functions as F

    q_vec = table.select(F.col("row"), F.col("vector").alias("q_vector"))
    n_vec = table.select(F.col("row").alias("neighbour"), F.col("vector").alias("n_vector"))
    joined = (best.join(n_vec, "neighbour").join(q_vec, "row")
              .withColumn("bucket", F.floor(F.col("row") / SEARCH_BLOCK).cast("long")))

    def cosines(group: pd.DataFrame) -> pd.DataFrame:
        import torch

        group = group.sort_values(["row", "n"], kind="stable")
        rows = group["row"].to_numpy(np.int64)
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        if len(group) != len(starts) * k:
            raise RuntimeError(f"table_knn: {len(group)} neighbours for {len(starts)} queries, not {k} each")
        q = torch.from_numpy(as_matrix(group["q_vector"].iloc[starts], dim))
        b = torch.from_numpy(as_matrix(group["n_vector"], dim)).reshape(len(starts), k, dim)
        with torch.inference_mode():
            found = torch.einsum("bd,bkd->bk", q, b).numpy().reshape(-1)
        return pd.DataFrame({"row": rows, "neighbour": group["neighbour"].to_numpy(np.int64),
                             "cosine": found.astype(np.float64)})

    return joined.groupBy("bucket").applyInPandas(cosines, "row long, neighbour long, cosine double")


def search_precision_is_low(n: int, config: DedupeConfig, precision: str | None = None) -> bool:
    """Whether `candidates.knn_search` over a base of n rows multiplies in bfloat16 (`candidates.products_in_bf16`
    with this configuration)."""
    return cand.products_in_bf16(n, precision or config.knn_precision, config.device, SEARCH_BLOCK)


def deeper_table(spark: Any, table: Any, vectors: np.ndarray, kth: np.ndarray, config: DedupeConfig
                 ) -> tuple[Any, np.ndarray]:
    """`pairs.deeper_neighbours` on the vectors table: the similarity floor from the cosines of the same random
    pairs (joined from the table), then the records in crowds searched again with 4 times k by `table_knn` (their
    own row included, as the pandas search has no self exclusion there) until `knn_max_k`. Returns the pairs found
    (a DataFrame (left, right), or None) and the updated radii; only the searched rows' radii reach the driver."""
    from pyspark.sql import functions as F

    from aietl_pipelines.embeddings import resolve_device

    n, k = len(vectors), min(config.knn_k, len(vectors) - 1)
    limit = min(config.knn_max_k, n - 1)
    if k >= limit or (n > config.knn_exact_max and resolve_device(config.device) == "cpu"):
        return None, kth
    dim = vectors.shape[1]
    floor = similarity_floor_table(spark, table, n, dim, k, config.knn_min_cosine, config.seed)
    found, kth = [], kth.copy()
    rows = np.flatnonzero(kth >= floor)
    depth = k
    while len(rows) and depth < limit:
        depth = min(4 * depth, limit)
        deep = table_knn(spark, table, n, dim, depth + 1, config, rows=rows, exclude_self=False).localCheckpoint()
        radius = deep.groupBy("row").agg(F.min("cosine").alias("kth")).toPandas()  # the searched rows
        kth[radius["row"].to_numpy(np.int64)] = radius["kth"].to_numpy(np.float32).astype(np.float64)
        found.append(deep.where((F.col("row") != F.col("neighbour")) & (F.col("cosine") >= floor))
                     .select(F.col("row").alias("left"), F.col("neighbour").alias("right")))
        rows = rows[kth[rows] >= floor]
    if not found:
        return None, kth
    logger.info("deeper kNN search: %d records in crowds above cosine %.3f, searched up to %d neighbours",
                int((kth >= floor).sum()), floor, depth)
    out = found[0]
    for part in found[1:]:
        out = out.unionByName(part)
    return out, kth


def similarity_floor_table(spark: Any, table: Any, n: int, dim: int, k: int, min_cosine: float, seed: int = 0,
                           sample: int = 50_000) -> float:
    """`pairs.similarity_floor` with the random pairs' cosines from the vectors table (`pair_cosines_table`): the
    same pairs, the same cosines, the same quantile. The cosines are ranked on Spark and only the order statistics
    around the quantile's position reach the driver (4 rows), where `np.quantile` interpolates between them as it
    does over the whole sample."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    a, b = pairing.floor_pairs(n, seed, sample)
    m = len(a)
    q = pairing.floor_quantile(n, k)
    if not m:
        return max(1.0, min_cosine)
    pairs = spark.createDataFrame(pd.DataFrame({"left": a.astype(np.int64), "right": b.astype(np.int64)}),
                                  "left long, right long")
    lo = int(np.floor(q * (m - 1)))
    wanted = sorted({min(max(i, 0), m - 1) for i in range(lo - 1, lo + 3)})
    ranked = (pair_cosines_table(pairs, table, dim).select("cosine")
              .withColumn("i", F.row_number().over(Window.orderBy("cosine")) - 1)
              .where(F.col("i").isin(wanted)).toPandas())
    value = dict(zip(ranked["i"].astype(int), ranked["cosine"].to_numpy(np.float64), strict=True))
    # the sorted sample as far as np.quantile reads it: the true values at the positions around the quantile's
    # index, the nearest of them elsewhere
    sorted_sample = np.array([value[min(max(i, wanted[0]), wanted[-1])] for i in range(m)])
    return max(float(np.quantile(sorted_sample, q)), min_cosine)


def _ivf_best(spark: Any, vectors: np.ndarray, k: int, config: DedupeConfig, table: Any = None) -> Any:
    """`candidates.partitioned_knn` with its lists as Spark groups: the same k-means centroids (fitted on the
    driver on a sample of 64 vectors per list), each vector assigned to its `knn_probes` nearest lists in
    `mapInPandas`, then per list (`groupBy(list).applyInPandas`) every vector routed there meets the list's members
    (those whose nearest list it is); the best k per vector over its lists, exact float32 cosines."""
    import torch
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from aietl_pipelines.spark.record_tables import vectors_of

    vectors = vectors_of(spark, vectors)
    n = len(vectors)
    n_lists = max(1, n // config.knn_list_size)
    probes = min(config.knn_probes, n_lists)
    low = cand.bf16_matmul_is_fast()  # the products in the pandas index's precision, so the same lists are met
    with torch.inference_mode():  # fitted on the sample's rows, fetched from the table
        centroids = cand._spherical_kmeans(vectors, n_lists, 8, 0, rows_of=vectors.rows)
    shared = share(spark, centroids.numpy())

    dim = vectors.shape[1]

    def as_torch(column: pd.Series) -> Any:
        return torch.from_numpy(as_matrix(column, dim))

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
        group = group.sort_values("row", kind="stable")  # members in row order, as the pandas index's lists
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

    table = vectors.table if table is None else table
    schema = "row long, rank int, list long, vector binary"
    try:
        routed = table.select("row", "vector").mapInPandas(assign, schema)
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
