"""The dedupe pipeline's pair nodes on Spark (`kedro run --env spark --pipeline dedupe`): the candidate pairs, their
comparison levels and probabilities stay Spark DataFrames from `find_candidate_pairs` to `cluster_duplicates`.

`pipelines/dedupe/nodes.py` calls these through its `PairNodes` interface when the engine's `Steps` carry them
(`spark_steps()` sets `pair_nodes=SparkPairNodes()`); the pandas engine has none and keeps its nodes. The stages are
`spark/dedupe_tables.py`'s table functions (the same ones `dedupe_tables.run` chains):

- `candidates`: `candidate_table` (left, right, cosine), materialised; the k-th neighbour cosines (N floats).
- `score`: `levels_table`, `random_levels`, EM on `pattern_counts_table`, `with_probability`, then the columns of
  the pandas `scored_pairs` frame (left_id, right_id, left, right, cosine, match_probability, is_match,
  level_<comparison>) as a Spark DataFrame; conf/spark/catalog.yml writes it with SparkDatasetV2 (parquet).
- `cluster`: `cluster_table` on the scored table (pairs in (left, right) order, the pandas path's order).
- `evidence`: what the incremental state keeps (`state.evidence_pairs`): the matches and the below-threshold
  pairs inside their components; only those reach the driver (the state lives there with the records).
- `candidate_quality`: count, pair completeness and reduction ratio by joining the truth labels on Spark.
- `golden`: the records (`customers_raw`: a Spark DataFrame in `--env spark`, or a pandas frame) joined with the
  clusters by record id, survivorship per group of whole clusters on the executors
  (`dedupe_records.golden_table`): a Spark DataFrame, written by conf/spark/catalog.yml's `golden_records`.
- `truth`: the truth column mapped onto the clusters' rows by record id (only (id, truth) is collected).

Labelled mode (`dedupe.labels`): the labelled pairs (a few) are compared and the labelled model fitted on the
driver (`dedupe_tables.labelled_patterns`, `scoring.apply_labels` on the pattern table), the pairs rescored per
pattern on Spark and the labelled pairs made certain (`dedupe_tables.with_labels`); labelled pairs the candidates
missed are appended with the pandas order in a column `e`, which `cluster` and `evidence` follow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.spark.record_tables import RecordsTable, records_table


def _session() -> Any:
    from aietl_pipelines.spark import dedupe as sd

    return sd._session()


def _spark_type(dtype: np.dtype) -> str:
    return {1: "tinyint", 2: "smallint", 4: "int"}.get(np.dtype(dtype).itemsize, "bigint")


class SparkPairNodes:
    """`PairNodes` (pipelines/dedupe/nodes.py) with the records, vectors and pairs as Spark tables."""

    @staticmethod
    def prepare(records: Any, config: DedupeConfig) -> Any:
        """`dedupe_records.prepare_table`: the prepared records as a Spark table (a `RecordsTable`); fewer than 2
        records given as a pandas frame: the pandas frame of the Spark `prepare` step."""
        from aietl_pipelines.spark.dedupe import spark_steps
        from aietl_pipelines.spark.dedupe_records import prepare_table

        if isinstance(records, pd.DataFrame) and len(records) < 2:
            return spark_steps().prepare(records, config)
        return prepare_table(records, config)

    @staticmethod
    def embed(prepared: Any, config: DedupeConfig) -> Any:
        """`dedupe_records.embed_table` of a prepared table (a `VectorsTable`); the Spark `embed` step of a frame."""
        from aietl_pipelines.spark.dedupe import spark_steps
        from aietl_pipelines.spark.dedupe_records import embed_table

        if isinstance(prepared, RecordsTable):
            return embed_table(prepared, config)
        return spark_steps().embed(prepared, config)

    @staticmethod
    def on_driver(prepared: Any, vectors: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """The tables collected (`RecordsTable.frame`, `VectorsTable.array`): for the few records and pairs
        compared on the driver."""
        from aietl_pipelines.spark.record_tables import on_driver

        return on_driver(prepared, vectors)

    def state(self, prepared: Any, vectors: Any, scored: Any, model: Any, knn_radius: np.ndarray,
              config: DedupeConfig) -> Any:
        """The state with the prepared records and vectors kept as the Spark tables they are (`save_state` has
        them written by the executors); its matches and evidence pairs collected (O(matches)) and named by id
        (`dedupe_tables.record_ids`: the ids, N values)."""
        from aietl_pipelines.dedupe.state import DedupeState, evidence_pairs

        pairs, probability = self.evidence(prepared, scored, config)
        if not isinstance(prepared, RecordsTable):
            from aietl_pipelines.dedupe.state import build_state

            return build_state(prepared, vectors, pairs, probability, model, config, knn_radius)
        ids = pd.DataFrame({"record_id": prepared.record_ids})
        matches = evidence_pairs(ids, pairs, probability, config.match_threshold)
        return DedupeState(prepared, vectors, knn_radius, matches, model)

    @staticmethod
    def run_counts(prepared: Any, clusters: pd.DataFrame, config: DedupeConfig) -> dict[str, float]:
        """`engine.run_counts` with the oversized blocks counted on Spark (the candidates' blocking report)."""
        from aietl_pipelines.dedupe.cluster import split_counts
        from aietl_pipelines.spark.dedupe_tables import oversized_table

        return {**oversized_table(_session(), prepared, config), **split_counts(clusters)}

    @staticmethod
    def engine_run(records: pd.DataFrame, config: DedupeConfig, keep_state: bool = False) -> Any:
        """`engine.run` over the same tables (`Steps.whole_run`): `dedupe_tables.engine_run`."""
        from aietl_pipelines.spark.dedupe_tables import engine_run

        return engine_run(records, config, keep_state)

    @staticmethod
    def label_pairs(records: pd.DataFrame, config: DedupeConfig) -> Any:
        """`train_dedupe_with_labels`' candidate pairs on the same tables (`Steps.label_pairs`):
        `dedupe_tables.label_pairs`."""
        from aietl_pipelines.spark.dedupe_tables import label_pairs

        return label_pairs(records, config)

    @staticmethod
    def engine_run_incremental(new_records: pd.DataFrame, state: Any, config: DedupeConfig) -> Any:
        """`engine.run_incremental` over the same tables (`Steps.whole_incremental`):
        `dedupe_tables.engine_run_incremental`."""
        from aietl_pipelines.spark.dedupe_tables import engine_run_incremental

        return engine_run_incremental(new_records, state, config)

    def candidates(self, prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                   ) -> tuple[Any, np.ndarray]:
        from aietl_pipelines.dedupe.steps import PANDAS
        from aietl_pipelines.spark.dedupe_tables import candidate_table

        spark = _session()
        if len(prepared) < 2:  # no pairs: the pandas step's empty frame and radii
            pairs, kth = PANDAS.candidates(*self.on_driver(prepared, vectors), config)
            return spark.createDataFrame(pairs, "left long, right long, cosine double"), kth
        return candidate_table(spark, prepared, vectors, config)

    def score(self, prepared: pd.DataFrame, pairs: Any, vectors: np.ndarray, config: DedupeConfig
              ) -> tuple[Any, dict[str, Any]]:
        from pyspark.sql import functions as F

        from aietl_pipelines.spark import dedupe_tables as dt
        from aietl_pipelines.spark.patterns import pattern_counts_table

        spark = _session()
        if pairs.limit(2).count() < 2:
            frame, array = self.on_driver(prepared, vectors)
            return self._score_collected(frame, pairs, array, config)
        levels, names, sizes, dtype = dt.levels_table(spark, prepared, pairs, vectors, config)
        cols = dt.level_columns(len(names))
        random = dt.random_levels(spark, prepared, vectors, config, len(names), dtype)
        patterns, counts = pattern_counts_table(levels, cols)
        patterns = patterns.astype(dtype)
        model = dt.fit_patterns(patterns, counts, random, names, sizes, config,
                                rule_rates=dt.table_rule_rates(prepared, config))
        probability, labelled = (dt.labelled_patterns(prepared, vectors, model, patterns, config)
                                 if config.labels else (None, pd.DataFrame()))
        scored = dt.with_labels(spark, dt.with_probability(spark, levels, model, patterns, probability), labelled,
                                len(names))
        ids = records_table(spark, prepared).table.select(F.col("__row").alias("row"),
                                                          F.col("record_id").alias("rid"))
        scored = (scored.join(ids.withColumnRenamed("row", "left").withColumnRenamed("rid", "left_id"), "left")
                  .join(ids.withColumnRenamed("row", "right").withColumnRenamed("rid", "right_id"), "right"))
        kind = _spark_type(dtype)
        order = ["e"] if "e" in scored.columns else []  # labelled pairs the candidates missed: the pandas order
        out = scored.select(*order, "left_id", "right_id", "left", "right", "cosine", "match_probability",
                            (F.col("match_probability") >= F.lit(config.match_threshold)).alias("is_match"),
                            *[F.col(c).cast(kind).alias(f"level_{name}") for c, name in zip(cols, names, strict=True)])
        return out, model.to_dict()

    def _score_collected(self, prepared: pd.DataFrame, pairs: Any, vectors: np.ndarray, config: DedupeConfig
                         ) -> tuple[Any, dict[str, Any]]:
        """Fewer than 2 pairs: the in-process node over the collected pairs (Spark `Steps`)."""
        from aietl_pipelines.pipelines.dedupe.nodes import IN_PROCESS

        frame = pairs.toPandas().sort_values(["left", "right"], kind="stable", ignore_index=True)
        frame = pd.DataFrame({"left": frame["left"].to_numpy(np.int64), "right": frame["right"].to_numpy(np.int64),
                              "cosine": frame["cosine"].to_numpy(np.float64)})
        scored, model = IN_PROCESS.score(prepared, frame, vectors, config)
        scored.insert(0, "e", np.arange(len(scored), dtype=np.int64))  # the pairs' order (labelled pairs last)
        return _session().createDataFrame(scored), model

    def cluster(self, prepared: pd.DataFrame, scored: Any, config: DedupeConfig) -> pd.DataFrame:
        from aietl_pipelines.spark.dedupe_tables import cluster_table, clusters_of

        labels, components = cluster_table(_session(), len(prepared), scored, config.match_threshold,
                                           config.max_cluster_size)
        return clusters_of(prepared, labels, components)

    def evidence(self, prepared: pd.DataFrame, scored: Any, config: DedupeConfig) -> tuple[pd.DataFrame, np.ndarray]:
        """The matches (collected: the state keeps them) and the pairs below the threshold whose records the
        matches connect (found by a join with the match components on Spark), in the pandas frame's order."""
        from pyspark.sql import functions as F
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        order = ["e"] if "e" in scored.columns else []
        cols = [*order, "left", "right", "match_probability"]
        p = F.col("match_probability")
        matches = scored.where(p >= F.lit(config.match_threshold)).select(*cols).toPandas()
        n = len(prepared)
        left, right = matches["left"].to_numpy(np.int64), matches["right"].to_numpy(np.int64)
        graph = coo_matrix((np.ones(len(matches)), (left, right)), shape=(n, n))
        components = connected_components(graph, directed=False)[1]
        linked = np.unique(np.r_[left, right])
        found = [matches]
        if len(linked):
            comp = _session().createDataFrame(pd.DataFrame({"row": linked, "c": components[linked].astype(np.int64)}))
            below = scored.where(~(p >= F.lit(config.match_threshold)) | p.isNull()).select(*cols)
            inside = (below.join(F.broadcast(comp.withColumnRenamed("row", "left").withColumnRenamed("c", "cl")), "left")
                      .join(F.broadcast(comp.withColumnRenamed("row", "right").withColumnRenamed("c", "cr")), "right")
                      .where(F.col("cl") == F.col("cr")).select(*cols))
            found.append(inside.toPandas())
        kept = pd.concat(found, ignore_index=True).sort_values([*order, "left", "right"], kind="stable",
                                                                ignore_index=True)
        pairs = pd.DataFrame({"left": kept["left"].to_numpy(np.int64), "right": kept["right"].to_numpy(np.int64)})
        return pairs, kept["match_probability"].to_numpy(np.float64)

    def candidate_quality(self, pairs: Any, truth: np.ndarray | None) -> dict[str, float]:
        """`evaluate.candidate_quality` on Spark: the candidate table is distinct with left < right, so its count
        is the number of candidate pairs and the true ones are those whose two truth labels are equal."""
        from pyspark.sql import functions as F

        n_pairs = float(pairs.count())
        found = {"n_candidate_pairs": n_pairs}
        if truth is None:
            return found
        n = len(truth)
        sizes = np.bincount(pd.factorize(truth)[0]) if n else np.zeros(0, dtype=np.int64)
        n_true = float((sizes * (sizes - 1) // 2).sum())
        labels = _session().createDataFrame(pd.DataFrame({"row": np.arange(n, dtype=np.int64),
                                                          "t": np.asarray(truth, dtype=np.int64)}))
        hits = float(pairs.select("left", "right")
                     .join(labels.withColumnRenamed("row", "left").withColumnRenamed("t", "tl"), "left")
                     .join(labels.withColumnRenamed("row", "right").withColumnRenamed("t", "tr"), "right")
                     .where(F.col("tl") == F.col("tr")).count())
        total = n * (n - 1) / 2
        found.update({"pair_completeness": hits / n_true if n_true else 1.0,
                      "reduction_ratio": 1 - n_pairs / total if total else 1.0, "candidate_pairs": n_pairs})
        return found

    @staticmethod
    def golden(records: Any, clusters: pd.DataFrame, config: DedupeConfig) -> Any:
        """The golden records as a Spark DataFrame (`dedupe_records.golden_table`), from the records (a pandas frame
        or a Spark DataFrame) joined with the clusters by the id written as text; each record's place in the input
        (which breaks survivorship's ties) is its row in the clusters frame, which is in the prepared records' order
        (a Spark input: `record_tables.numbered`'s, as `prepare_table` numbered it). The catalog writes it."""
        from pyspark.sql import functions as F

        from aietl_pipelines.pipelines.dedupe.nodes import golden_inputs
        from aietl_pipelines.spark.dedupe_records import golden_table

        spark = _session()
        fields, keep = golden_inputs(list(records.columns), config)
        ids = config.id_column
        if isinstance(records, pd.DataFrame):
            frame = records[keep].reset_index(drop=True)
            table = spark.createDataFrame(frame.assign(**{ids: frame[ids].astype(str)}))
        else:
            table = records.select(*[F.col(f"`{c}`") for c in keep]).withColumn(ids, F.col(f"`{ids}`").cast("string"))
        members = spark.createDataFrame(
            pd.DataFrame({"__id": clusters["record_id"].astype(str).to_numpy(),
                          "__cluster": clusters["cluster_id"].to_numpy(np.int64),
                          "__row": np.arange(len(clusters), dtype=np.int64)}),
            "__id string, __cluster long, __row long")
        joined = table.join(members, F.col(f"`{ids}`") == F.col("__id")).drop("__id")
        return golden_table(joined, fields, ids, config.survivorship, len(clusters))

    @staticmethod
    def truth(records: Any, clusters: pd.DataFrame, config: DedupeConfig) -> np.ndarray | None:
        """The truth labels of the clusters' rows, by record id (the id written as text): only (id, truth) of a
        Spark DataFrame is collected (evaluation only)."""
        from pyspark.sql import functions as F

        column, ids = config.truth_column, config.id_column
        if not column or column not in records.columns:
            return None
        if isinstance(records, pd.DataFrame):
            found = pd.DataFrame({"id": records[ids].astype(str).to_numpy(), "t": records[column].to_numpy()})
        else:
            found = records.select(F.col(f"`{ids}`").cast("string").alias("id"), F.col(f"`{column}`").alias("t")
                                   ).toPandas()
        labels = pd.Series(found["t"].to_numpy(), index=found["id"].to_numpy())
        return pd.factorize(clusters["record_id"].astype(str).map(labels).reset_index(drop=True))[0]
