"""`dedupe.engine: spark` with the pairs kept as Spark tables from candidates to clusters (issue 16).

The `Steps` interface (`dedupe/steps.py`) hands numpy arrays between the steps, so the Spark steps of
`spark/dedupe.py` must bring the candidate pairs, their comparison levels and probabilities to the driver (about
24 GB at 100M records). The functions here are the same stages over Spark DataFrames; only small results reach
the driver:

- `candidate_table`: the blocking and kNN pairs as one DataFrame (left, right, cosine), distinct, left < right,
  the cosines computed on the executors; each record's k-th neighbour cosine comes back (N floats).
- `levels_table`: `scoring.pair_levels` per bucket of pairs (`cogroup` with the records they reference, joined from
  a prepared-records table; the context from counts made on Spark: `spark/dedupe_levels.py`) adding the level
  columns l0..lk to the pairs table.
- `random_levels`: the levels of `u_sample_pairs` random pairs (for u): that many rows on the driver.
- `fit_model_on_table`: the comparison patterns counted on Spark (`patterns.pattern_counts_table`: distinct
  level tuples with their counts, thousands of rows) fitted by `score.fit_model(..., counts=...)`.
- `with_probability`: the model's probability per pattern joined back onto the levels table (a broadcast join
  of the pattern table: the same numbers as `model.probability(levels)`, which is a function of the row).
- `cluster_table`: components of the matched pairs with `spark.graph.connected_components`; the components that
  hold a pair scored below the threshold (weak-link split, `dedupe/cluster.py`) or are larger than
  `max_cluster_size` are clustered per component in `groupBy(component).applyInPandas` with the pandas path's
  own helpers (`cluster._agglomerate`, `_votes`, `_cap`); what reaches the driver is one row per record that has
  a match (its component and cluster), from which the record → cluster assignment (N rows) is built.

- labelled mode (`dedupe.labels`): `labelled_patterns` runs `scoring.apply_labels` on the driver over the
  pattern table (the labelled pairs compared there, a few), `with_probability` joins the patterns' labelled
  probabilities and `with_labels` makes the labelled pairs certain and appends those the candidates missed.
- active learning (`train_dedupe_with_labels`, `Steps.label_pairs`): `label_pairs` fits the EM model on the
  pattern table (in the pandas engine's pattern order) and keeps the pairs as a table (left, right, pattern);
  `SparkLabelPairs.next_pair` finds each question's pair there (one row collected per question).

`run` chains them (`run(records, config)`: prepare, embed, candidates, levels, EM, labels, probabilities,
clusters) and returns the pairs as a Spark DataFrame; `engine_run` is `engine.run` for the Spark engine
(`Steps.whole_run`): `run`'s result as an `engine.PairsOnRead` (pairs collected only when read), with the
incremental state when asked; `engine_run_incremental` is `engine.run_incremental` for the Spark engine
(`Steps.whole_incremental`): the new records' candidate table (`incremental.new_candidate_table`), its levels
aligned to the saved model (`aligned_levels`), scored per pattern with that model, labels, and `cluster_table` over
the earlier matches and the new pairs, returned as an `engine.PairsOnRead` too. The `Steps` of `spark/dedupe.py`
are thin adapters over the same functions (they convert to and from numpy at their boundary, as the interface
requires); `engine.run_steps` and `engine.run_incremental_steps` use them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import candidates as cand
from aietl_pipelines.dedupe import cluster as clustering
from aietl_pipelines.dedupe import pairs as pairing
from aietl_pipelines.dedupe import scoring
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.labels import PatternScores
from aietl_pipelines.dedupe.score import FellegiSunterModel, fit_model
from aietl_pipelines.dedupe.textparse import TEXT_RELATED
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.spark.record_tables import (
    RecordsTable,
    VectorsTable,
    records_table,
    vectors_of,
)
from aietl_pipelines.spark.session import parallelism

logger = logging.getLogger(__name__)


def level_columns(width: int) -> list[str]:
    """The names of the level columns of a levels table (l0..l{width-1})."""
    return [f"l{j}" for j in range(width)]


# ---------------------------------------------------------------------------------------------- candidates

def candidate_table(spark: Any, prepared: pd.DataFrame | RecordsTable, vectors: np.ndarray | VectorsTable,
                    config: DedupeConfig, report: dict[str, float] | None = None) -> tuple[Any, np.ndarray]:
    """The candidate pairs as a Spark DataFrame (left long, right long, cosine double), distinct with
    left < right, materialised (local checkpoint); and each record's k-th neighbour cosine (N floats).

    The same pairs and cosines as `pairs.candidates_with_radius` (the Spark steps' `candidates` collects this
    table and sorts it). The vectors are a Spark table (`spark.dedupe.vectors_table`, built once per array),
    never broadcast: the exact kNN is a blocked cross join of it (`table_knn`), the deeper search of records in
    crowds runs on it (`deeper_table`), the index reads it (`_ivf_best`) and the pairs' cosines are joined from it
    on left and right (`pair_cosines_table`). Equal k-th similarities are broken by the lower row, where the
    pandas search keeps the tied rows `torch.topk` happens to return (docs/spark.md, "Vectors as a table").

    `prepared` / `vectors`: the prepare and embed stages' Spark tables, or a frame and an array (the `Steps`
    adapters': shipped once, `record_tables.records_table` / `vectors_of`). `report`: the oversized blocks' counts
    are put in it (`pairs.oversized_blocks`' keys)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark import dedupe as sd

    prepared, vectors = records_table(spark, prepared), vectors_of(spark, vectors)
    n = len(prepared)
    rules = pairing.blocking_rules(prepared, config)
    found, counted = sd.blocking_pairs(spark, prepared, rules, config.max_block_size, config.block_window)
    segments = sd.segment_pairs(spark, prepared, config, report=counted)
    if segments is not None:
        found = found.unionByName(segments)
    pairing._log_dropped(counted, config)
    if report is not None:
        report.update(counted)
    kth = np.full(n, np.inf)
    k = min(config.knn_k, n - 1)
    dim = vectors.shape[1]
    table = vectors.table if dim else None
    if dim and k > 0:
        from aietl_pipelines.embeddings import resolve_device

        method = config.knn_method
        exact = method == "exact" or (method == "auto" and (n <= config.knn_exact_max
                                                             or resolve_device(config.device) != "cpu"))
        if exact:
            neighbours = sd.table_knn(spark, table, n, dim, k, config).localCheckpoint()
            radius = neighbours.groupBy("row").agg(F.min("cosine").alias("kth")).toPandas()  # N rows
            kth[radius["row"].to_numpy()] = radius["kth"].to_numpy(dtype=np.float64)
        else:
            if method not in ("auto", "partitioned"):
                cand.nearest_neighbours(np.zeros((2, 1), np.float32), 1, method)  # the pandas error: bad knn_method
            neighbours = sd._ivf_best(spark, vectors, k, config, table)
            radius = neighbours.groupBy("row").agg(F.min("cosine").alias("kth"),
                                                   F.count(F.lit(1)).alias("met")).toPandas()  # N rows
            kth = np.full(n, -2.0)  # fewer than k met: -2, as the pandas index's filler
            kth[radius["row"].to_numpy()] = np.where(radius["met"].to_numpy() < k, -2.0,
                                                     radius["kth"].to_numpy(dtype=np.float64))
        found = found.unionByName(neighbours.where(F.col("cosine") >= config.knn_min_cosine).select(
            F.least("row", "neighbour").alias("left"), F.greatest("row", "neighbour").alias("right")))
        deeper, kth = sd.deeper_table(spark, table, vectors, kth, config)  # exact-search sizes only
        if deeper is not None:
            found = found.unionByName(deeper.select(F.least("left", "right").alias("left"),
                                                    F.greatest("left", "right").alias("right")))
    pairs = found.select(F.col("left").cast("long"), F.col("right").cast("long")).distinct()
    if dim:
        pairs = sd.pair_cosines_table(pairs, table, dim)
    else:
        pairs = pairs.withColumn("cosine", F.lit(float("nan")))
    return pairs.localCheckpoint(), kth


def oversized_table(spark: Any, prepared: pd.DataFrame | RecordsTable, config: DedupeConfig) -> dict[str, float]:
    """`pairs.oversized_blocks` counted on Spark: the blocking rules' and (free text) the segments' blocks above
    `max_block_size` (the reports of `blocking_pairs` and `segment_pairs`; their pairs are not computed)."""
    from aietl_pipelines.spark import dedupe as sd

    _, counted = sd.blocking_pairs(spark, prepared, pairing.blocking_rules(prepared, config), config.max_block_size,
                                   config.block_window)
    sd.segment_pairs(spark, prepared, config, report=counted)
    return counted


# ---------------------------------------------------------------------------------------------- comparisons

def levels_table(spark: Any, prepared: pd.DataFrame | RecordsTable, pairs: Any, vectors: np.ndarray | VectorsTable,
                 config: DedupeConfig,
                 pairs_per_task: int | None = None) -> tuple[Any, list[str], list[int], np.dtype]:
    """The pairs table (left, right, cosine and any other columns) with the comparison levels l0..lk added by
    `scoring.pair_levels`, materialised; the comparison names, level counts and the level dtype of the pandas path.

    No record is broadcast (`spark/dedupe_levels.py`): the prepared records are a Spark table with their words' and
    values' counts over all records (counted on Spark; built once per prepared frame), the pairs are cut into
    buckets of about `pairs_per_task` and each bucket compared over the records it references, joined from the
    table, with the context of the whole column (`compare.column_context(..., stats=)`): the pandas levels."""
    from aietl_pipelines.spark import dedupe as sd
    from aietl_pipelines.spark import dedupe_levels as dl

    prepared = records_table(spark, prepared)
    table = dl.prepared_table(spark, prepared, config)
    names, sizes, dtype = dl.level_names(prepared, vectors, table.kinds, config)
    per_task = pairs_per_task or sd.PAIRS_PER_TASK
    buckets = max(parallelism(spark), math.ceil(pairs.count() / per_task))
    out = dl.levels_on_table(spark, table, pairs, vectors.shape[1], config, level_columns(len(names)), buckets)
    return out, names, sizes, dtype


def random_levels(spark: Any, prepared: pd.DataFrame | RecordsTable, vectors: np.ndarray | VectorsTable,
                  config: DedupeConfig, width: int, dtype: np.dtype) -> np.ndarray:
    """Levels of the `u_sample_pairs` random pairs (`scoring.random_pairs`, for u) computed on Spark: only their
    level columns reach the driver (u_sample_pairs rows), in the sample's order."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark import dedupe as sd

    drawn = scoring.random_pairs(len(prepared), config)
    if not len(drawn):
        return np.zeros((0, width), dtype=dtype)
    vectors = vectors_of(spark, vectors)  # the pairs' cosines joined from the table (`pairs_frame`'s numbers)
    sample = spark.createDataFrame(pd.DataFrame({"e": np.arange(len(drawn), dtype=np.int64),
                                                 "left": drawn[:, 0].astype(np.int64),
                                                 "right": drawn[:, 1].astype(np.int64)}))
    sample = (sd.pair_cosines_table(sample, vectors.table, vectors.dim) if vectors.dim
              else sample.withColumn("cosine", F.lit(float("nan"))))
    table, _, _, _ = levels_table(spark, prepared, sample, vectors, config)
    found = table.select("e", *level_columns(width)).toPandas().sort_values("e", kind="stable")
    return found[level_columns(width)].to_numpy().astype(dtype)


# ---------------------------------------------------------------------------------------------- EM

def model_sessions(names: list[str], config: DedupeConfig) -> list[list[int]]:
    """The EM sessions of `scoring.score` (one per blocking rule whose comparisons are all scored)."""
    rules = config.blocking if config.mode == "structured" else pairing.TEXT_BLOCKING
    return [[names.index(c) for c in r] for r in rules if r and all(c in names for c in r)]


def fit_patterns(patterns: np.ndarray, counts: np.ndarray, random: np.ndarray, names: list[str], sizes: list[int],
                 config: DedupeConfig, rule_rates: dict[tuple[str, ...], float] | None = None
                 ) -> FellegiSunterModel:
    """`score.fit_model` on comparison patterns weighted by their pair counts, with `scoring.score`'s options
    (`rule_rates`: the records' rule agreement rates, from which the prior is counted)."""
    return fit_model(patterns, random, names, sizes, iterations=config.em_iterations,
                     sessions=model_sessions(names, config),
                     related=TEXT_RELATED if config.mode == "text" else None, counts=counts, rule_rates=rule_rates)


def fit_model_on_table(levels: Any, random: np.ndarray, names: list[str], sizes: list[int], dtype: np.dtype,
                       config: DedupeConfig) -> tuple[FellegiSunterModel, np.ndarray]:
    """The model fitted on the levels table's pattern counts; also the patterns (P x k, for `with_probability`)."""
    from aietl_pipelines.spark.patterns import pattern_counts_table

    patterns, counts = pattern_counts_table(levels, level_columns(len(names)))
    patterns = patterns.astype(dtype)
    return fit_patterns(patterns, counts, random, names, sizes, config), patterns


def with_probability(spark: Any, levels: Any, model: FellegiSunterModel, patterns: np.ndarray,
                     probability: np.ndarray | None = None) -> Any:
    """The levels table with `match_probability`: the model's probability of each pattern (or `probability[i]`
    for pattern i when given: the labelled model's, `labelled_patterns`), joined on the level columns (the
    pattern table, thousands of rows, is broadcast)."""
    from pyspark.sql import functions as F

    cols = level_columns(patterns.shape[1])
    table = pd.DataFrame(patterns.astype(np.int32), columns=cols)
    if probability is None:
        probability = model.probability(patterns) if len(patterns) else np.zeros(0)
    table["match_probability"] = np.asarray(probability, dtype=np.float64)
    if not len(table):
        return levels.withColumn("match_probability", F.lit(None).cast("double"))
    return levels.join(F.broadcast(spark.createDataFrame(table)), cols, "left")


# ---------------------------------------------------------------------------------------------- labelled mode

def labelled_patterns(prepared: pd.DataFrame | RecordsTable, vectors: np.ndarray | VectorsTable,
                      model: FellegiSunterModel, patterns: np.ndarray, config: DedupeConfig
                      ) -> tuple[np.ndarray, pd.DataFrame]:
    """Labelled mode's driver part (`dedupe.labels`): `scoring.apply_labels` itself, called with the comparison
    patterns as its "pairs' levels" and no candidate pairs. A pair's labelled probability depends only on its
    levels (the labelled model's features are its one-hot levels and EM weight), so the patterns' probabilities
    are those of every pair with that pattern; with no candidate pairs given, every labelled pair of this run's
    records comes back "appended", in `apply_labels`' order, with its certain probability (1 or 0).

    Returns the probability of each pattern (the EM model's when the labels do not yet fit a model) and the
    labelled pairs (k, left, right, cosine, match_probability; k = their order). Only the labelled pairs are
    compared (a few): on Spark (`levels_table` over the records table, the whole columns' context, as
    `pair_levels` over the whole frame), their cosines from their rows' vectors (`VectorsTable.rows`), then
    `scoring.apply_known_labels` does the rest on the driver: only the ids (N values), the labelled records'
    vectors and levels reach it."""
    empty = pd.DataFrame({"left": np.zeros(0, np.int64), "right": np.zeros(0, np.int64), "cosine": np.zeros(0)})
    em = model.probability(patterns) if len(patterns) else np.zeros(0)
    pairs, probability = _apply_labels_on_tables(prepared, vectors, patterns, em, model, config, empty)
    labelled = pd.DataFrame({"k": np.arange(len(pairs), dtype=np.int64),
                             "left": pairs["left"].to_numpy(np.int64), "right": pairs["right"].to_numpy(np.int64),
                             "cosine": pairs["cosine"].to_numpy(np.float64),
                             "match_probability": np.asarray(probability[len(patterns):], dtype=np.float64)})
    return np.asarray(probability[:len(patterns)], dtype=np.float64), labelled


def _apply_labels_on_tables(prepared: pd.DataFrame | RecordsTable, vectors: np.ndarray | VectorsTable,
                            patterns: np.ndarray, em: np.ndarray, model: FellegiSunterModel, config: DedupeConfig,
                            empty: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """`scoring.apply_labels` with the labelled pairs compared on the tables (`labelled_patterns`)."""
    from aietl_pipelines.dedupe import candidates as cand
    from aietl_pipelines.dedupe import labels as labelled
    from aietl_pipelines.spark import dedupe as sd

    spark = sd._session()
    prepared, vectors = records_table(spark, prepared), vectors_of(spark, vectors)
    left, right, truth = labelled.label_positions(config.labels, prepared.record_ids.tolist())
    if not len(truth):
        return empty, em
    rows = np.unique(np.r_[left, right])
    if vectors.dim:
        held = vectors.rows(rows)
        cosine = cand.pair_cosines(held, np.searchsorted(rows, left), np.searchsorted(rows, right))
    else:
        cosine = np.full(len(left), np.nan)
    known = pd.DataFrame({"left": left, "right": right, "cosine": cosine})
    table, names, _, _ = levels_table(spark, prepared, spark.createDataFrame(
        known.assign(e=np.arange(len(known), dtype=np.int64)), "left long, right long, cosine double, e long"),
        vectors, config)
    found = table.select("e", *level_columns(len(names))).toPandas().sort_values("e", kind="stable")
    dtype = patterns.dtype if len(patterns) else np.int8
    known_levels = found[level_columns(len(names))].to_numpy().astype(dtype)
    return scoring.apply_known_labels(known, truth, known_levels, names, empty, patterns, em, model, config)


def with_labels(spark: Any, scored: Any, labelled: pd.DataFrame, width: int) -> Any:
    """The scored table (left, right, cosine, l0..lk, match_probability) with the labelled pairs certain: a
    labelled candidate pair takes its label's probability (1 or 0); labelled pairs that are not candidates are
    appended with level 0 (missing) in every comparison, as the pandas path appends them without levels. When
    some are appended, a column `e` holds the pandas frame's pair order (0 for the candidates, which come sorted
    by (left, right); 1 + the label's order for the appended ones), which `cluster_table` and the state follow.
    Only the labelled pairs found among the candidates reach the driver (at most the number of labels)."""
    from pyspark.sql import functions as F

    if not len(labelled):
        return scored
    columns = scored.columns
    given = spark.createDataFrame(labelled[["left", "right", "match_probability"]].rename(
        columns={"match_probability": "label_p"}), "left long, right long, label_p double")
    found = scored.join(F.broadcast(given.select("left", "right")), ["left", "right"], "left_semi") \
        .select("left", "right").toPandas()  # labelled candidate pairs: at most the labels
    out = (scored.join(F.broadcast(given), ["left", "right"], "left")
           .withColumn("match_probability", F.coalesce(F.col("label_p"), F.col("match_probability")))
           .select(*columns))
    known = set(zip(found["left"].tolist(), found["right"].tolist(), strict=True))
    extra = labelled[[(a, b) not in known for a, b in zip(labelled["left"].tolist(), labelled["right"].tolist(),
                                                          strict=True)]]
    if not len(extra):
        return out
    cols = level_columns(width)
    added = extra.assign(e=extra["k"] + 1, **{c: np.zeros(len(extra), np.int32) for c in cols})
    types = {f.name: f.dataType.simpleString() for f in scored.schema.fields}
    schema = ", ".join(f"{c} {types.get(c, 'bigint')}" for c in ["e", *columns])
    added = spark.createDataFrame(added[["e", *columns]], schema)
    return out.withColumn("e", F.lit(0).cast("long")).select("e", *columns).unionByName(added)


# ---------------------------------------------------------------------------------------------- clusters

def cluster_table(spark: Any, n: int, scored: Any, threshold: float, max_cluster_size: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Cluster label (0..c-1) and match component (0..m-1) of each of n records from a Spark table of scored
    pairs (left, right, match_probability): `cluster.cluster_with_components` with the pairs on Spark.

    Components of the pairs at or above the threshold: `spark.graph.connected_components`. Components holding a
    pair of two of their records scored below the threshold (evidence against), and with `max_cluster_size`
    components larger than it, are clustered one component per `applyInPandas` call with `cluster.py`'s
    `_agglomerate` / `_votes` / `_cap` over that component's pairs in the pandas path's order (the column `e`
    when `scored` has it, the position of each pair in the pandas frame; else sorted by (left, right), the order
    of candidate pairs), so the clusters are the pandas path's. Components are disjoint
    and those helpers only ever merge inside one, so per component equals the pandas path's single call.
    The driver receives one row per record with a match (component, cluster) and numbers them as pandas does."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark.graph import connected_components

    order = [F.col("e").cast("long").alias("e")] if "e" in scored.columns else [
        (F.col("left").cast("long") * F.lit(0)).alias("e")]  # no edge order given: (left, right) decides
    edges = scored.select(F.col("left").cast("long").alias("left"), F.col("right").cast("long").alias("right"),
                          F.col("match_probability").cast("double").alias("p"), *order)
    keep = edges.where(F.col("p") >= threshold)
    comp = connected_components(keep.select(F.col("left").alias("src"), F.col("right").alias("dst"))).localCheckpoint()
    cl = comp.select(F.col("node").alias("left"), F.col("component").alias("cl"))
    cr = comp.select(F.col("node").alias("right"), F.col("component").alias("cr"))
    inside = (edges.join(cl, "left").join(cr, "right").where(F.col("cl") == F.col("cr"))
              .select(F.col("cl").alias("component"), "left", "right", "p", "e"))
    work = (inside.where((F.col("p") < threshold) & (F.col("left") != F.col("right")))
            .select("component").distinct().withColumn("suspect", F.lit(True)))
    cap = int(max_cluster_size) if max_cluster_size else 0
    if cap:
        big = comp.groupBy("component").agg(F.count(F.lit(1)).alias("size")).where(F.col("size") > cap)
        work = work.join(big.select("component"), "component", "full").fillna(False, ["suspect"])

    def split(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values(["e", "left", "right"], kind="stable")  # the pandas path's edge order
        a_ids, b_ids = group["left"].to_numpy(np.int64), group["right"].to_numpy(np.int64)
        nodes = np.unique(np.r_[a_ids, b_ids])
        a, b = np.searchsorted(nodes, a_ids), np.searchsorted(nodes, b_ids)
        p = group["p"].to_numpy(np.float64)
        m = len(nodes)
        labels = np.zeros(m, dtype=np.int64)
        if bool(group["suspect"].iloc[0]):
            labels = clustering._agglomerate(m, a, b, clustering._votes(p, threshold))
        if cap:
            kept = p >= threshold
            labels = clustering._cap(m, a[kept], b[kept], p[kept], pd.factorize(labels)[0], cap)
        key = pd.Series(nodes).groupby(labels).transform("min").to_numpy(np.int64)
        return pd.DataFrame({"node": nodes, "key": key})

    keys = inside.join(work, "component").groupBy("component").applyInPandas(split, "node long, key long")
    assigned = (comp.join(keys, "node", "left")
                .select("node", "component", F.coalesce("key", "component").alias("cluster")).toPandas())
    smallest = np.arange(n, dtype=np.int64)
    nodes = assigned["node"].to_numpy(np.int64)
    smallest[nodes] = assigned["component"].to_numpy(np.int64)
    cluster_key = smallest.copy()
    cluster_key[nodes] = assigned["cluster"].to_numpy(np.int64)
    components = pd.factorize(smallest)[0].astype(np.int32)  # scipy's numbering and dtype
    labels = pd.factorize(cluster_key)[0]
    pieces = pd.Series(labels).groupby(components).nunique()
    split_components = pieces[pieces > 1]
    if len(split_components):
        logger.warning("Split %d match component(s) at weak links into %d clusters (largest component: %d records)",
                       len(split_components), int(split_components.sum()),
                       int(np.bincount(components)[split_components.index.to_numpy()].max()))
    return labels, components


def clusters_frame(prepared: pd.DataFrame, labels: np.ndarray, components: np.ndarray) -> pd.DataFrame:
    """record_id → cluster_id, component_id (the `cluster` step's frame), with its every-record-once check."""
    out = pd.DataFrame({"record_id": prepared["record_id"].to_numpy(), "cluster_id": labels,
                        "component_id": components})
    if len(out) != len(prepared) or out["record_id"].duplicated().any():
        raise AssertionError("dedupe clustering lost or duplicated a record id")
    return out


# ---------------------------------------------------------------------------------------------- the run

@dataclass
class SparkDedupeRun:
    """A dedupe run with its records, vectors and pairs as Spark tables.

    `pairs`: Spark DataFrame (left, right, cosine, l0..lk, match_probability), one row per candidate pair, left <
    right (row positions in `prepared`), plus in labelled mode the labelled pairs the candidates missed (levels 0)
    with a column `e`, the pandas path's pair order (`with_labels`); `names[j]` is the comparison of column l{j}.
    `patterns` / `counts`: the comparison-pattern table the model was fitted on. `prepared` / `vectors`: the
    prepare and embed stages' tables (`record_tables.RecordsTable` / `VectorsTable`; `.frame()`, `.array()` collect
    them)."""

    prepared: RecordsTable
    pairs: Any
    names: list[str]
    clusters: pd.DataFrame
    model: FellegiSunterModel
    kth_cosine: np.ndarray
    patterns: np.ndarray
    counts: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    vectors: VectorsTable | None = None


def table_rule_rates(prepared: pd.DataFrame | RecordsTable, config: DedupeConfig) -> dict[tuple[str, ...], float]:
    """`scoring.rule_agreement_rates` of the prepared records table: the same rules (`scoring.rate_rules`), each
    rule's groups of equal values counted on Spark (sum of C(size, 2) over C(present, 2), the same integers): one
    row per rule reaches the driver."""
    from pyspark.sql import functions as F

    from aietl_pipelines.spark import dedupe as sd
    from aietl_pipelines.spark.record_tables import comparison_kinds

    prepared = records_table(sd._session(), prepared)
    rates: dict[tuple[str, ...], float] = {}
    for key, columns in scoring.rate_rules(config, comparison_kinds(config, prepared), prepared):
        present = F.lit(True)
        for c in columns:
            present = present & F.col(f"`{c}`").isNotNull()
        sizes = prepared.table.where(present).groupBy(*[F.col(f"`{c}`") for c in columns]).agg(
            F.count(F.lit(1)).alias("size"))
        row = sizes.agg(F.sum("size").alias("n"), F.sum(F.expr("size * (size - 1) div 2")).alias("agreeing")).first()
        n = int(row["n"] or 0)
        if n >= 2:
            rates[key] = float(int(row["agreeing"]) / (n * (n - 1) / 2))  # as `candidates.agreement_rate`
    return rates


def clusters_of(prepared: pd.DataFrame | RecordsTable, labels: np.ndarray, components: np.ndarray) -> pd.DataFrame:
    """`clusters_frame` of a prepared frame or table (a table's ids collected once: `RecordsTable.record_ids`)."""
    ids = prepared.record_ids if isinstance(prepared, RecordsTable) else prepared["record_id"].to_numpy()
    return clusters_frame(pd.DataFrame({"record_id": ids}), labels, components)


def run(records: Any, config: DedupeConfig) -> SparkDedupeRun:
    """The full dedupe run on Spark with the records, vectors, candidate pairs, levels and probabilities kept as
    Spark tables (`records`: a pandas frame or a Spark DataFrame).

    Prepare and embed are `dedupe_records.prepare_table` / `embed_table`: the prepared records and the vectors
    stay on Spark; what reaches the driver is their count, the k-means sample of the index (above
    `knn_exact_max`), the pattern table, the random pairs' levels, each record's k-th cosine, cluster and id.
    Labelled mode (`dedupe.labels`): the labelled pairs are compared on the tables and the labelled model fitted
    on the driver (`labelled_patterns`), the pairs rescored per pattern on Spark and the labelled pairs made
    certain (`with_labels`). The incremental state: `engine_run(..., keep_state=True)`."""
    from aietl_pipelines.dedupe.cluster import split_counts
    from aietl_pipelines.spark import dedupe as sd
    from aietl_pipelines.spark.dedupe_records import embed_table, prepare_table
    from aietl_pipelines.spark.patterns import pattern_counts_table

    spark = sd._session()
    prepared = prepare_table(records, config)
    if len(prepared) < 2:
        raise AietlInputError("The table run on Spark needs at least 2 records.")
    vectors = embed_table(prepared, config)
    report: dict[str, float] = {}
    pairs, kth = candidate_table(spark, prepared, vectors, config, report)
    levels, names, sizes, dtype = levels_table(spark, prepared, pairs, vectors, config)
    random = random_levels(spark, prepared, vectors, config, len(names), dtype)
    patterns, counts = pattern_counts_table(levels, level_columns(len(names)))
    patterns = patterns.astype(dtype)
    model = fit_patterns(patterns, counts, random, names, sizes, config, rule_rates=table_rule_rates(prepared, config))
    probability, labelled = (labelled_patterns(prepared, vectors, model, patterns, config)
                             if config.labels else (None, pd.DataFrame()))
    scored = with_probability(spark, levels, model, patterns, probability)
    scored = with_labels(spark, scored, labelled, len(names)).localCheckpoint()
    labels, components = cluster_table(spark, len(prepared), scored, config.match_threshold,
                                       config.max_cluster_size)
    clusters = clusters_of(prepared, labels, components)
    metrics = {**report, **split_counts(clusters), "n_candidate_pairs": float(counts.sum()),
               "n_patterns": float(len(patterns))}
    return SparkDedupeRun(prepared, scored, names, clusters, model, kth, patterns, counts, metrics, vectors)


def collect_pairs(scored: Any) -> pd.DataFrame:
    """The pairs of a scored table as `engine.run_steps` gives them: left, right, cosine, match_probability in the
    pandas order (by `e` when present, then (left, right)); every pair is brought to the driver."""
    order = ["e"] if "e" in scored.columns else []
    found = scored.select(*order, "left", "right", "cosine", "match_probability").toPandas()
    found = found.sort_values([*order, "left", "right"], kind="stable", ignore_index=True)
    return pd.DataFrame({"left": found["left"].to_numpy(np.int64), "right": found["right"].to_numpy(np.int64),
                         "cosine": found["cosine"].to_numpy(np.float64),
                         "match_probability": found["match_probability"].to_numpy(np.float64)})


def engine_run(records: pd.DataFrame, config: DedupeConfig, keep_state: bool = False) -> Any:
    """`engine.run` for `dedupe.engine: spark` (`Steps.whole_run`): `run` with the pairs kept on Spark, returned
    as an `engine.PairsOnRead`: the clusters, model and metrics of `engine.run_steps` (metrics: `run_counts`), and
    the pairs frame collected only if a caller reads `result.pairs` (`pair_table`: the Spark table). With
    `keep_state`, the state is built from what it keeps (`SparkPairNodes.evidence`: the matches and the
    below-threshold pairs inside their components, collected), as `kedro run --env spark` builds it. Fewer than
    2 records: `engine.run_steps` (no pairs)."""
    from aietl_pipelines.dedupe.engine import PairsOnRead, run_steps
    from aietl_pipelines.dedupe.state import build_state
    from aietl_pipelines.spark.dedupe_nodes import SparkPairNodes

    if isinstance(records, pd.DataFrame) and len(records) < 2:
        return run_steps(records, config, keep_state)
    found = run(records, config)
    scored = found.pairs
    state = None
    if keep_state:  # the state lives on the driver: the prepared records and vectors are collected for it
        prepared = found.prepared.frame()
        pairs, probability = SparkPairNodes().evidence(prepared, scored, config)
        state = build_state(prepared, found.vectors.array(), pairs, probability, found.model, config,
                            found.kth_cosine)
    metrics = {k: v for k, v in found.metrics.items() if k not in ("n_candidate_pairs", "n_patterns")}  # run_counts
    return PairsOnRead(state.prepared if state is not None else found.prepared.frame, lambda: collect_pairs(scored),
                       found.clusters, found.model, state, metrics, pair_table=scored)


# ---------------------------------------------------------------------------------------------- active learning

@dataclass
class SparkLabelPairs(PatternScores):
    """`labels.CandidatePatterns` (`train_dedupe_with_labels`' candidate pairs) with the pairs as a Spark table.

    `pairs`: (left, right, g), g the pair's pattern index in `patterns`; the patterns are in the order the pandas
    engine's `scoring.level_patterns` finds them (by each pattern's first pair in (left, right) order), so the EM
    model is fitted on the same rows in the same order, and every per-pattern score is computed over the same
    array as with the pandas engine (the same numbers, bit for bit)."""

    n_pairs: int
    pairs: Any
    spark: Any

    def record_ids(self) -> list:
        """The ids of the prepared table, in row order (N values)."""
        return self.prepared.record_ids.tolist()

    def _key(self) -> Any:
        from pyspark.sql import functions as F

        return F.col("left") * F.lit(len(self.prepared)) + F.col("right")

    def _keys(self, pairs: Any) -> list[int]:
        n = len(self.prepared)
        return [int(a) * n + int(b) for a, b in pairs]

    def patterns_of(self, pairs: Any) -> dict[tuple[int, int], int]:
        """The pattern of each given pair that is a candidate: at most that many rows collected."""
        if not pairs:
            return {}
        found = self.pairs.where(self._key().isin(self._keys(pairs))).select("left", "right", "g").collect()
        return {(int(r["left"]), int(r["right"])): int(r["g"]) for r in found}

    def next_pair(self, uncertain: np.ndarray, asked: set[tuple[int, int]], seen_records: set[int]
                  ) -> tuple[int, int, int] | None:
        """One Spark job: the pairs not asked ordered by (one of their records shown already, the rank of their
        pattern's uncertainty (equal uncertainties: one rank), left, right), the first row collected: the pair
        `labels.choose_uncertain` picks over the same scores in the pandas engine's (left, right) order."""
        from pyspark.sql import functions as F

        _, rank = np.unique(np.asarray(uncertain, dtype=float), return_inverse=True)
        ranks = self.spark.createDataFrame(pd.DataFrame({"g": np.arange(len(rank), dtype=np.int64),
                                                         "rank": np.asarray(rank, dtype=np.int64).reshape(-1)}))
        shown = sorted(seen_records)
        was_shown = (F.col("left").isin(shown) | F.col("right").isin(shown)) if shown else F.lit(False)
        table = self.pairs.join(F.broadcast(ranks), "g")
        if asked:
            table = table.where(~self._key().isin(self._keys(asked)))
        found = (table.select("left", "right", "g", "rank", was_shown.alias("was_shown"))
                 .orderBy("was_shown", "rank", "left", "right").limit(1).collect())
        return (int(found[0]["left"]), int(found[0]["right"]), int(found[0]["g"])) if found else None


def label_pairs(records: pd.DataFrame, config: DedupeConfig) -> Any:
    """`train_dedupe_with_labels`' candidate pairs for `dedupe.engine: spark` (`Steps.label_pairs`): the run of
    `run` up to the EM model (`prepare_table`, `embed_table`, `candidate_table`, `levels_table`, `random_levels`: the
    records and vectors kept as tables; the ids (N values) collected for the labels), the comparison
    patterns counted on Spark with each pattern's first pair (only the pattern table, P rows, reaches the driver)
    and put in the pandas engine's order, the model fitted on them (`fit_patterns`) and the pairs kept as a Spark
    table (left, right, pattern). Each question is then one Spark job (`SparkLabelPairs.next_pair`, one row
    collected). Fewer than 2 records: `labels.pandas_candidates` (no pairs)."""
    from pyspark.sql import functions as F

    from aietl_pipelines.dedupe import labels as labelled
    from aietl_pipelines.spark import dedupe as sd
    from aietl_pipelines.spark.dedupe_records import embed_table, prepare_table

    if len(records) < 2:
        return labelled.pandas_candidates(records, config)
    spark = sd._session()
    prepared = prepare_table(records, config)  # the records and vectors stay Spark tables (`run`)
    vectors = embed_table(prepared, config)
    pairs, _ = candidate_table(spark, prepared, vectors, config)
    levels, names, sizes, dtype = levels_table(spark, prepared, pairs, vectors, config)
    random = random_levels(spark, prepared, vectors, config, len(names), dtype)
    cols = level_columns(len(names))
    key = F.col("left") * F.lit(len(prepared)) + F.col("right")
    table = (levels.groupBy(*cols).agg(F.count(F.lit(1)).alias("n"), F.min(key).alias("first"))
             .toPandas().sort_values("first", ignore_index=True))  # scoring.level_patterns' order
    patterns = table[cols].to_numpy().astype(dtype)
    counts = table["n"].to_numpy(np.float64)
    model = fit_patterns(patterns, counts, random, names, sizes, config, rule_rates=table_rule_rates(prepared, config))
    ids = pd.DataFrame(patterns.astype(np.int32), columns=cols).assign(g=np.arange(len(patterns), dtype=np.int64))
    keyed = levels.join(F.broadcast(spark.createDataFrame(ids)), cols).select("left", "right", "g").localCheckpoint()
    return SparkLabelPairs(prepared, patterns, list(sizes), model.match_weight(patterns), model.probability(patterns),
                           int(counts.sum()), keyed, spark)


# ---------------------------------------------------------------------------------------------- incremental runs

def aligned_levels(levels: Any, names: list[str], wanted: list[str]) -> Any:
    """`scoring.align_levels` on a levels table: its level columns l0..l{len(wanted)-1} are the comparisons of
    `wanted` (a saved model's, in its order) taken from the columns of `names`; a comparison this run does not
    have is level 0 (null, weight 0)."""
    from pyspark.sql import functions as F

    cols = level_columns(len(names))
    others = [c for c in levels.columns if c not in cols]
    return levels.select(*others, *[(F.col(cols[names.index(name)]) if name in names else F.lit(0))
                                    .cast("int").alias(f"l{k}") for k, name in enumerate(wanted)])


def engine_run_incremental(new_records: pd.DataFrame, state: Any, config: DedupeConfig) -> Any:
    """`engine.run_incremental` for `dedupe.engine: spark` (`Steps.whole_incremental`) with the new records' pairs
    kept on Spark: prepare and embed of the new records (the Spark steps), `incremental.new_candidate_table`,
    `levels_table` aligned to the saved model's comparisons (`aligned_levels`), scored with the saved model (no
    refit) per comparison pattern (`with_probability`), labels as in the full table run (`labelled_patterns`,
    `with_labels`), and `cluster_table` over the earlier matches (first, in the state's order) and the new pairs,
    as the pandas path concatenates them. What reaches the driver: the new records' k-th cosines, the pattern
    table, the labelled candidate pairs, the state's new evidence (matches and below-threshold pairs inside their
    components, `SparkPairNodes.evidence`) and the clusters. Returns an `engine.PairsOnRead` whose `pairs` (the new
    records' pairs with match_probability, in the pandas order) are collected on first read. No new record or
    fewer than 2 records: `engine.run_incremental_steps`."""
    from pyspark.sql import functions as F

    from aietl_pipelines.dedupe.engine import PairsOnRead, run_counts, run_incremental_steps
    from aietl_pipelines.dedupe.state import DedupeState, check_new_records, earlier_match_positions
    from aietl_pipelines.spark import dedupe as sd
    from aietl_pipelines.spark import incremental
    from aietl_pipelines.spark.dedupe_nodes import SparkPairNodes
    from aietl_pipelines.spark.patterns import pattern_counts_table

    steps = sd.spark_steps()
    new = steps.prepare(new_records, config)
    check_new_records(new, state)
    n_old = len(state.prepared)
    prepared = pd.concat([state.prepared, new], ignore_index=True)
    if not len(new) or len(prepared) < 2:
        return run_incremental_steps(new_records, state, config)
    new_vectors = steps.embed(new, config)
    if new_vectors.shape[1] != state.vectors.shape[1]:
        raise AietlInputError("The earlier run's vectors have another dimension: run the full pipeline again.")
    vectors = np.concatenate([state.vectors, new_vectors]) if len(state.vectors) else new_vectors
    spark = sd._session()
    model = state.model
    pairs, kth_new = incremental.new_candidate_table(spark, prepared, vectors, n_old, state.kth_cosine, config)
    levels, names, _, dtype = levels_table(spark, prepared, pairs, vectors, config)
    levels = aligned_levels(levels, names, model.names)  # the saved model's comparisons, in its order
    width = len(model.names)
    patterns, _ = pattern_counts_table(levels, level_columns(width))
    patterns = patterns.astype(dtype)
    probability, labelled = (labelled_patterns(prepared, vectors, model, patterns, config) if config.labels
                             else (None, pd.DataFrame()))
    scored = with_labels(spark, with_probability(spark, levels, model, patterns, probability), labelled, width)
    scored = scored.localCheckpoint()
    # clusters from every match so far: the earlier ones (their order first) and the new pairs (in theirs)
    earlier = earlier_match_positions(prepared, state.matches)
    m = len(earlier)
    earlier.insert(0, "e", np.arange(m, dtype=np.int64))
    new_order = (F.col("e") + F.lit(m)) if "e" in scored.columns else F.lit(m)
    every = spark.createDataFrame(earlier, "e long, left long, right long, match_probability double").unionByName(
        scored.select(new_order.cast("long").alias("e"), "left", "right", "match_probability")).localCheckpoint()
    labels, components = cluster_table(spark, len(prepared), every, config.match_threshold, config.max_cluster_size)
    clusters = clusters_frame(prepared, labels, components)
    kept, kept_p = SparkPairNodes().evidence(prepared, every, config)
    found = scoring.matched_pairs(prepared, kept, kept_p, -np.inf)
    matches = pd.concat([state.matches, found.iloc[len(state.matches):]], ignore_index=True)
    new_state = DedupeState(prepared, vectors, np.r_[state.kth_cosine, kth_new], matches, model)
    return PairsOnRead(prepared, lambda: collect_pairs(scored), clusters, model, new_state,
                       run_counts(prepared, clusters, config, new_from=n_old), pair_table=scored)
