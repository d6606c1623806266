"""Nodes of the dedupe pipeline: thin wrappers over the dedupe stages (aietl_pipelines.dedupe).

The `dedupe` parameters are parsed once per run (`parse_dedupe_config`); every other node takes the parsed
`DedupeConfig` and calls the step of the configured engine (`steps_for(config)`).

The nodes that carry the records and the candidate pairs (prepare, embed, candidates, scoring, clustering, the
state's evidence pairs, the golden records, the truth labels and the candidate counts of the metrics) call one
interface, `PairNodes`, chosen by the engine as well: the engine's `Steps.pair_nodes` when it has them (Spark:
`spark/dedupe_nodes.py`, the records and pairs as Spark tables, `customers_raw` a pandas frame or a Spark
DataFrame, the golden records a Spark DataFrame), else `IN_PROCESS` below (pandas frames through the `Steps`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.engine import run_counts
from aietl_pipelines.dedupe.evaluate import bcubed, candidate_quality, pairwise_scores
from aietl_pipelines.dedupe.score import FellegiSunterModel
from aietl_pipelines.dedupe.scoring import scored_pairs
from aietl_pipelines.dedupe.state import DedupeState, build_state
from aietl_pipelines.dedupe.steps import steps_for


def parse_dedupe_config(params: dict[str, Any]) -> DedupeConfig:
    """The run's configuration, checked once (defaults from conf/base/parameters_dedupe.yml)."""
    return DedupeConfig.from_params(params)


def prepare_records(records: pd.DataFrame, config: DedupeConfig) -> Any:
    """Validate ids and declared fields, normalise, and build the text each record is embedded as."""
    return pair_nodes(config).prepare(records, config)


def embed_records(prepared: Any, config: DedupeConfig) -> Any:
    """all-MiniLM-L6-v2 embeddings (cached by content hash: unchanged records are never embedded twice)."""
    return pair_nodes(config).embed(prepared, config)


class PairNodes(Protocol):
    """The part of the pipeline whose data one engine keeps as its own tables: the prepared records, their
    vectors and the pairs (pandas frames and numpy arrays in process; on Spark, Spark tables from prepare to
    clusters: `spark/record_tables.py`, `spark/dedupe_nodes.py`), with the columns of the in-process ones."""

    def prepare(self, records: Any, config: DedupeConfig) -> Any: ...

    def embed(self, prepared: Any, config: DedupeConfig) -> Any: ...

    def state(self, prepared: Any, vectors: Any, scored: Any, model: FellegiSunterModel, knn_radius: np.ndarray,
              config: DedupeConfig) -> DedupeState:
        """What the next incremental run needs (`state.build_state`; the engine's tables kept as tables, for
        `save_state` to have them written by the engine)."""
        ...

    def run_counts(self, prepared: Any, clusters: pd.DataFrame, config: DedupeConfig) -> dict[str, float]:
        """`engine.run_counts` (oversized blocks, split components)."""
        ...

    def candidates(self, prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                   ) -> tuple[Any, np.ndarray]: ...

    def score(self, prepared: pd.DataFrame, pairs: Any, vectors: np.ndarray, config: DedupeConfig
              ) -> tuple[Any, dict[str, Any]]: ...

    def cluster(self, prepared: pd.DataFrame, scored: Any, config: DedupeConfig) -> pd.DataFrame: ...

    def evidence(self, prepared: pd.DataFrame, scored: Any, config: DedupeConfig) -> tuple[pd.DataFrame, np.ndarray]:
        """Pairs (left, right) and probabilities holding every pair `state.evidence_pairs` keeps, in order."""
        ...

    def candidate_quality(self, pairs: Any, truth: np.ndarray | None) -> dict[str, float]:
        """n_candidate_pairs; with ground truth also `evaluate.candidate_quality`."""
        ...

    def golden(self, records: Any, clusters: pd.DataFrame, config: DedupeConfig) -> Any:
        """One golden record per cluster (`survivorship.build_golden_records`) of the input `records` and the
        `clusters` frame (record_id, cluster_id, component_id; ids as text): a pandas frame in process, a Spark
        DataFrame on Spark, with the same columns."""
        ...

    def truth(self, records: Any, clusters: pd.DataFrame, config: DedupeConfig) -> np.ndarray | None:
        """The ground-truth labels (`pd.factorize` codes of `config.truth_column`) of the rows of `clusters`
        (the prepared records' order); None when the records have no truth column."""
        ...


def pair_nodes(config: DedupeConfig) -> PairNodes:
    """The pair nodes of `config.engine` (`Steps.pair_nodes`), the in-process ones when it has none."""
    return steps_for(config).pair_nodes or IN_PROCESS


def find_candidate_pairs(prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                         ) -> tuple[Any, np.ndarray]:
    """Blocking-key pairs ∪ vector kNN pairs (row positions and cosine), and each record's k-th neighbour cosine."""
    return pair_nodes(config).candidates(prepared, vectors, config)


def score_candidate_pairs(prepared: pd.DataFrame, pairs: Any, vectors: np.ndarray,
                          config: DedupeConfig) -> tuple[Any, dict[str, Any]]:
    """Comparison levels per field, Fellegi-Sunter m/u by EM, recalibrated by labelled pairs when
    `dedupe.labels_path` names some (labelled mode), match probability per pair."""
    return pair_nodes(config).score(prepared, pairs, vectors, config)


def _score_in_process(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray,
                      config: DedupeConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    steps = steps_for(config)
    levels, random_levels, names, sizes = steps.compare(prepared, pairs, vectors, config)
    probability, model = steps.score(levels, random_levels, names, sizes, config,
                                     rule_rates=steps.rule_rates(prepared, config))
    n_candidates = len(pairs)
    pairs, probability = steps.label(prepared, pairs, vectors, levels, probability, model, config)
    scored = scored_pairs(prepared, pairs, probability, config.match_threshold)
    for k, name in enumerate(names):  # labelled pairs the candidates missed (appended last) have no levels
        scored[f"level_{name}"] = np.r_[levels[:, k], np.zeros(len(pairs) - n_candidates, levels.dtype)]
    return scored, model.to_dict()


def cluster_duplicates(prepared: pd.DataFrame, scored: Any, config: DedupeConfig) -> pd.DataFrame:
    """Every input record in exactly one cluster (connected components, chaining guard)."""
    return pair_nodes(config).cluster(prepared, scored, config)


def build_golden_records(records: Any, clusters: pd.DataFrame, config: DedupeConfig) -> Any:
    """One golden record per cluster by the survivorship rules in `dedupe.survivorship` (the engine's
    `PairNodes.golden`: a pandas frame in process; on Spark, a Spark DataFrame of a pandas or Spark `records`)."""
    return pair_nodes(config).golden(records, clusters, config)


def golden_inputs(columns: list[str], config: DedupeConfig) -> tuple[list[str], list[str]]:
    """The golden record's fields and the record columns survivorship reads (the id first, then the fields and the
    recency and source columns present, in the records' order)."""
    fields = config.structured_fields() or [config.text_column]
    rules = config.survivorship
    keep = [c for c in columns if c in fields or c in (rules.get("recency_column"), rules.get("source_column"))]
    return fields, [config.id_column, *[c for c in keep if c != config.id_column]]


def evaluate_dedupe(records: Any, prepared: pd.DataFrame, pairs: Any, clusters: pd.DataFrame,
                    model: dict[str, Any], config: DedupeConfig) -> dict[str, float]:
    """Counts always (incl. skipped blocks and split components); pairwise P/R/F1, B-cubed, pair completeness and reduction ratio when ground truth exists."""
    truth = pair_nodes(config).truth(records, clusters, config)
    quality = pair_nodes(config).candidate_quality(pairs, truth)
    metrics = {"n_records": float(len(prepared)), "n_clusters": float(clusters["cluster_id"].nunique()),
               "n_candidate_pairs": quality.pop("n_candidate_pairs"), "em_prior": float(model["prior"]),
               **pair_nodes(config).run_counts(prepared, clusters, config)}
    if truth is not None:
        predicted = clusters["cluster_id"].to_numpy()
        metrics.update(pairwise_scores(predicted, truth))
        metrics.update(bcubed(predicted, truth))
        metrics.update(quality)
    return metrics


def build_dedupe_state(prepared: pd.DataFrame, vectors: np.ndarray, scored: Any, model: dict[str, Any],
                       knn_radius: np.ndarray, config: DedupeConfig) -> DedupeState:
    """What the next incremental run needs: prepared records, vectors, k-th neighbour cosines, matches, model."""
    return pair_nodes(config).state(prepared, vectors, scored, FellegiSunterModel.from_dict(model), knn_radius, config)


class _InProcess:
    """The records and pairs as pandas frames, each stage the engine's `Steps` (the pandas engine's nodes)."""

    def prepare(self, records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
        return steps_for(config).prepare(records, config)

    def embed(self, prepared: pd.DataFrame, config: DedupeConfig) -> np.ndarray:
        return steps_for(config).embed(prepared, config)

    def state(self, prepared: pd.DataFrame, vectors: np.ndarray, scored: pd.DataFrame, model: FellegiSunterModel,
              knn_radius: np.ndarray, config: DedupeConfig) -> DedupeState:
        pairs, probability = self.evidence(prepared, scored, config)
        return build_state(prepared, vectors, pairs, probability, model, config, knn_radius)

    def run_counts(self, prepared: pd.DataFrame, clusters: pd.DataFrame, config: DedupeConfig) -> dict[str, float]:
        return run_counts(prepared, clusters, config)

    def candidates(self, prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                   ) -> tuple[pd.DataFrame, np.ndarray]:
        return steps_for(config).candidates(prepared, vectors, config)

    score = staticmethod(_score_in_process)

    def cluster(self, prepared: pd.DataFrame, scored: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
        return steps_for(config).cluster(prepared, scored, scored["match_probability"].to_numpy(), config)

    def evidence(self, prepared: pd.DataFrame, scored: pd.DataFrame, config: DedupeConfig
                 ) -> tuple[pd.DataFrame, np.ndarray]:
        return scored[["left", "right"]], scored["match_probability"].to_numpy()

    def candidate_quality(self, pairs: pd.DataFrame, truth: np.ndarray | None) -> dict[str, float]:
        found = {"n_candidate_pairs": float(len(pairs))}
        if truth is not None:
            found.update(candidate_quality(pairs["left"].to_numpy(), pairs["right"].to_numpy(), truth))
        return found

    def golden(self, records: pd.DataFrame, clusters: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
        """The engine's `golden` step on the records (ids as text) and the clusters in the records' order."""
        fields, keep = golden_inputs(list(records.columns), config)
        frame = records[keep].reset_index(drop=True)
        frame[config.id_column] = frame[config.id_column].astype(str)
        return steps_for(config).golden(frame, clusters["cluster_id"], fields, config.id_column, config.survivorship)

    def truth(self, records: pd.DataFrame, clusters: pd.DataFrame, config: DedupeConfig) -> np.ndarray | None:
        """The truth column by row position (the clusters are in the records' order)."""
        if not config.truth_column or config.truth_column not in records.columns:
            return None
        return pd.factorize(records[config.truth_column].reset_index(drop=True))[0]


IN_PROCESS: PairNodes = _InProcess()
