"""Nodes of the dedupe pipeline: thin wrappers over aietl_pipelines.dedupe.engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.evaluate import bcubed, candidate_quality, pairwise_scores
from aietl_pipelines.dedupe.survivorship import build_golden_records as golden


def prepare_records(records: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Validate ids and declared fields, normalise, and build the text each record is embedded as."""
    return engine.prepare_records(records, engine.DedupeConfig.from_params(params))


def embed_records(prepared: pd.DataFrame, params: dict[str, Any]) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings (cached by content hash: unchanged records are never embedded twice)."""
    return engine.embed(prepared, engine.DedupeConfig.from_params(params))


def find_candidate_pairs(prepared: pd.DataFrame, vectors: np.ndarray, params: dict[str, Any]
                         ) -> tuple[pd.DataFrame, np.ndarray]:
    """Blocking-key pairs ∪ vector kNN pairs (row positions and cosine), and each record's k-th neighbour cosine."""
    return engine.candidates_with_radius(prepared, vectors, engine.DedupeConfig.from_params(params))


def score_candidate_pairs(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray,
                          params: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Comparison levels per field, Fellegi-Sunter m/u by EM (no labels), match probability per pair."""
    config = engine.DedupeConfig.from_params(params)
    levels, random_levels, names, sizes = engine.compare(prepared, pairs, vectors, config)
    probability, model = engine.score(levels, random_levels, names, sizes, config)
    scored = engine.scored_pairs(prepared, pairs, probability, config.match_threshold)
    for k, name in enumerate(names):
        scored[f"level_{name}"] = levels[:, k]
    return scored, model.to_dict()


def cluster_duplicates(prepared: pd.DataFrame, scored: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Every input record in exactly one cluster (connected components, chaining guard)."""
    config = engine.DedupeConfig.from_params(params)
    return engine.cluster(prepared, scored, scored["match_probability"].to_numpy(), config)


def build_golden_records(records: pd.DataFrame, clusters: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One golden record per cluster by the survivorship rules in `dedupe.survivorship`."""
    config = engine.DedupeConfig.from_params(params)
    fields = engine.structured_fields(config) or [config.text_column]
    keep = [c for c in records.columns if c in fields or c in (params["survivorship"].get("recency_column"),
                                                               params["survivorship"].get("source_column"))]
    frame = records[[config.id_column, *[c for c in keep if c != config.id_column]]].reset_index(drop=True)
    frame[config.id_column] = frame[config.id_column].astype(str)
    return golden(frame, clusters["cluster_id"], fields, config.id_column, params["survivorship"])


def evaluate_dedupe(records: pd.DataFrame, prepared: pd.DataFrame, pairs: pd.DataFrame, clusters: pd.DataFrame,
                    model: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
    """Counts always; pairwise P/R/F1, B-cubed, pair completeness and reduction ratio when ground truth exists."""
    metrics = {"n_records": float(len(prepared)), "n_clusters": float(clusters["cluster_id"].nunique()),
               "n_candidate_pairs": float(len(pairs)), "em_prior": float(model["prior"])}
    truth_column = params.get("truth_column")
    if truth_column and truth_column in records.columns:
        truth = pd.factorize(records[truth_column].reset_index(drop=True))[0]
        predicted = clusters["cluster_id"].to_numpy()
        metrics.update(pairwise_scores(predicted, truth))
        metrics.update(bcubed(predicted, truth))
        metrics.update(candidate_quality(pairs["left"].to_numpy(), pairs["right"].to_numpy(), truth))
    return metrics


def build_dedupe_state(prepared: pd.DataFrame, vectors: np.ndarray, scored: pd.DataFrame, model: dict[str, Any],
                       knn_radius: np.ndarray, params: dict[str, Any]) -> engine.DedupeState:
    """What the next incremental run needs: prepared records, vectors, k-th neighbour cosines, matches, model."""
    config = engine.DedupeConfig.from_params(params)
    pairs = scored[["left", "right"]]
    return engine.build_state(prepared, vectors, pairs, scored["match_probability"].to_numpy(),
                              engine.FellegiSunterModel.from_dict(model), config, knn_radius)
