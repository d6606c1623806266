"""Nodes of the dedupe pipeline: thin wrappers over the dedupe stages (aietl_pipelines.dedupe).

The `dedupe` parameters are parsed once per run (`parse_dedupe_config`); every other node takes the parsed
`DedupeConfig` and calls the step of the configured engine (`steps_for(config)`).
"""

from __future__ import annotations

from typing import Any

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


def prepare_records(records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """Validate ids and declared fields, normalise, and build the text each record is embedded as."""
    return steps_for(config).prepare(records, config)


def embed_records(prepared: pd.DataFrame, config: DedupeConfig) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings (cached by content hash: unchanged records are never embedded twice)."""
    return steps_for(config).embed(prepared, config)


def find_candidate_pairs(prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                         ) -> tuple[pd.DataFrame, np.ndarray]:
    """Blocking-key pairs ∪ vector kNN pairs (row positions and cosine), and each record's k-th neighbour cosine."""
    return steps_for(config).candidates(prepared, vectors, config)


def score_candidate_pairs(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray,
                          config: DedupeConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Comparison levels per field, Fellegi-Sunter m/u by EM, recalibrated by labelled pairs when
    `dedupe.labels_path` names some (labelled mode), match probability per pair."""
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


def cluster_duplicates(prepared: pd.DataFrame, scored: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """Every input record in exactly one cluster (connected components, chaining guard)."""
    return steps_for(config).cluster(prepared, scored, scored["match_probability"].to_numpy(), config)


def build_golden_records(records: pd.DataFrame, clusters: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """One golden record per cluster by the survivorship rules in `dedupe.survivorship`."""
    fields = config.structured_fields() or [config.text_column]
    rules = config.survivorship
    keep = [c for c in records.columns if c in fields or c in (rules.get("recency_column"), rules.get("source_column"))]
    frame = records[[config.id_column, *[c for c in keep if c != config.id_column]]].reset_index(drop=True)
    frame[config.id_column] = frame[config.id_column].astype(str)
    return steps_for(config).golden(frame, clusters["cluster_id"], fields, config.id_column, rules)


def evaluate_dedupe(records: pd.DataFrame, prepared: pd.DataFrame, pairs: pd.DataFrame, clusters: pd.DataFrame,
                    model: dict[str, Any], config: DedupeConfig) -> dict[str, float]:
    """Counts always (incl. skipped blocks and split components); pairwise P/R/F1, B-cubed, pair completeness and reduction ratio when ground truth exists."""
    metrics = {"n_records": float(len(prepared)), "n_clusters": float(clusters["cluster_id"].nunique()),
               "n_candidate_pairs": float(len(pairs)), "em_prior": float(model["prior"]),
               **run_counts(prepared, clusters, config)}
    if config.truth_column and config.truth_column in records.columns:
        truth = pd.factorize(records[config.truth_column].reset_index(drop=True))[0]
        predicted = clusters["cluster_id"].to_numpy()
        metrics.update(pairwise_scores(predicted, truth))
        metrics.update(bcubed(predicted, truth))
        metrics.update(candidate_quality(pairs["left"].to_numpy(), pairs["right"].to_numpy(), truth))
    return metrics


def build_dedupe_state(prepared: pd.DataFrame, vectors: np.ndarray, scored: pd.DataFrame, model: dict[str, Any],
                       knn_radius: np.ndarray, config: DedupeConfig) -> DedupeState:
    """What the next incremental run needs: prepared records, vectors, k-th neighbour cosines, matches, model."""
    return build_state(prepared, vectors, scored[["left", "right"]], scored["match_probability"].to_numpy(),
                       FellegiSunterModel.from_dict(model), config, knn_radius)
