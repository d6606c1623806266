"""Nodes of the dedupe_incremental pipeline: thin wrappers over aietl_pipelines.dedupe.engine."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.scoring import scored_pairs
from aietl_pipelines.dedupe.state import DedupeState


def parse_dedupe_config(params: dict[str, Any]) -> DedupeConfig:
    """The run's configuration, checked once (defaults from conf/base/parameters_dedupe.yml)."""
    return DedupeConfig.from_params(params)


def add_new_records(new_records: pd.DataFrame, state: DedupeState, config: DedupeConfig
                    ) -> tuple[pd.DataFrame, pd.DataFrame, DedupeState, dict[str, float]]:
    """Match new records against the earlier run's state with its model (no refit); re-cluster every record.

    Returns the clusters of all records (old and new), the scored pairs of the new records, the updated state and
    counts for MLflow.
    """
    result = engine.run_incremental(new_records, state, config)
    scored = scored_pairs(result.prepared, result.pairs, result.pairs["match_probability"].to_numpy(),
                          config.match_threshold)
    n_old = len(state.prepared)
    clusters = result.clusters
    new_clusters = clusters.iloc[n_old:]
    joined = int(new_clusters["cluster_id"].isin(clusters.iloc[:n_old]["cluster_id"]).sum())
    metrics = {"n_records": float(len(clusters)), "n_new_records": float(len(new_records)),
               "n_new_candidate_pairs": float(len(scored)), "n_new_matches": float(scored["is_match"].sum()),
               "n_new_joined_existing_cluster": float(joined), "n_clusters": float(clusters["cluster_id"].nunique()), **result.metrics}
    return clusters, scored, result.state, metrics
