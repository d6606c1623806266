"""The dedupe run: one small orchestrating function over the stages, for the service and the benchmarks.

records → prepare (validate, normalise, record text; `prepare.py`) → embed → candidates (blocking + kNN;
`pairs.py`) → compare + score (Fellegi-Sunter EM; `scoring.py`) → cluster (`cluster.py`) → state for
incremental runs (`state.py`). Each step is called through `steps_for(config)` (`steps.py`): the engine
(`dedupe.engine`) is chosen by configuration, never by a branch here; an engine that keeps the pairs as its own
tables gives its whole run instead (`Steps.whole_run`; Spark: `spark/dedupe_tables.engine_run`, pairs collected
only when `result.pairs` is read), and its whole incremental run (`Steps.whole_incremental`; Spark:
`dedupe_tables.engine_run_incremental`). The Kedro pipeline runs the
same steps as nodes. The names below are re-exported so that `engine.X` keeps working for existing callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.cluster import cluster, split_counts
from aietl_pipelines.dedupe.config import DedupeConfig, default_params
from aietl_pipelines.dedupe.pairs import (
    TEXT_BLOCKING,
    candidate_pairs,
    candidates_with_radius,
    oversized_blocks,
)
from aietl_pipelines.dedupe.prepare import embed, prepare_records
from aietl_pipelines.dedupe.score import FellegiSunterModel
from aietl_pipelines.dedupe.scoring import align_levels, compare, score, scored_pairs
from aietl_pipelines.dedupe.state import (
    DedupeState,
    build_state,
    check_new_records,
    earlier_match_positions,
    evidence_pairs,
    load_state,
    save_state,
)
from aietl_pipelines.dedupe.steps import steps_for
from aietl_pipelines.errors import AietlInputError

__all__ = ["TEXT_BLOCKING", "DedupeConfig", "DedupeResult", "DedupeState", "FellegiSunterModel", "build_state",
           "candidate_pairs", "candidates_with_radius", "cluster", "compare", "default_params", "embed",
           "load_state", "prepare_records", "run", "run_incremental", "run_incremental_steps", "run_steps", "save_state",
           "score", "scored_pairs", "structured_fields"]


def structured_fields(config: DedupeConfig) -> list[str]:
    """Fields compared in structured mode (none in free-text mode)."""
    return config.structured_fields()


@dataclass
class DedupeResult:
    prepared: pd.DataFrame
    pairs: pd.DataFrame  # every candidate pair (left, right, cosine, match_probability), labelled pairs appended
    clusters: pd.DataFrame
    model: FellegiSunterModel
    state: DedupeState | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # dropped blocks, split components


class _OnRead:
    """A frame attribute given as a value or built by a function on its first read (`PairsOnRead`)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__.get(self.slot)
        if callable(value):
            value = value()
            obj.__dict__[self.slot] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value


class PairsOnRead(DedupeResult):
    """A `DedupeResult` whose `pairs` frame is built by `collect()` on first read: an engine that keeps the pairs
    as its own tables (Spark) returns this, so that a caller that never reads `pairs` (the service reads the
    clusters) never brings them to the driver. `pair_table` is the engine's table of the pairs. `prepared` may be
    given as a function too (the engine keeps the prepared records as a table): called on its first read."""

    prepared = _OnRead()  # type: ignore[assignment]
    pairs = _OnRead()  # type: ignore[assignment]

    def __init__(self, prepared: pd.DataFrame | Callable[[], pd.DataFrame], collect: Callable[[], pd.DataFrame],
                 clusters: pd.DataFrame, model: FellegiSunterModel, state: DedupeState | None = None,
                 metrics: dict[str, float] | None = None, pair_table: Any = None) -> None:
        super().__init__(prepared, collect, clusters, model, state, metrics or {})  # type: ignore[arg-type]
        self.pair_table = pair_table

    def __repr__(self) -> str:  # the dataclass repr would read (collect) the pairs
        return (f"PairsOnRead(records={len(self.clusters)}, clusters={self.clusters['cluster_id'].nunique()}, "
                f"pairs={'not collected' if callable(self.__dict__.get('_pairs')) else 'collected'})")


def run(records: pd.DataFrame, config: DedupeConfig, keep_state: bool = False) -> DedupeResult:
    """All steps in one call (the service and the benchmarks use this; the pipeline runs them as nodes).

    The engine's whole run when its `Steps` have one (`Steps.whole_run`: Spark keeps the pairs as tables and
    returns a `PairsOnRead`), else `run_steps` (the pandas engine)."""
    return (steps_for(config).whole_run or run_steps)(records, config, keep_state)


def run_steps(records: pd.DataFrame, config: DedupeConfig, keep_state: bool = False) -> DedupeResult:
    """`run` through the `Steps` interface: every stage's output (pairs, levels, probabilities) on the driver."""
    steps = steps_for(config)
    prepared = steps.prepare(records, config)
    vectors = steps.embed(prepared, config)
    pairs, kth = steps.candidates(prepared, vectors, config)
    levels, random_levels, names, sizes = steps.compare(prepared, pairs, vectors, config)
    probability, model = steps.score(levels, random_levels, names, sizes, config,
                                     rule_rates=steps.rule_rates(prepared, config))
    pairs, probability = steps.label(prepared, pairs, vectors, levels, probability, model, config)
    pairs = pairs.assign(match_probability=probability)
    state = build_state(prepared, vectors, pairs, probability, model, config, kth) if keep_state else None
    clusters = steps.cluster(prepared, pairs, probability, config)
    return DedupeResult(prepared, pairs, clusters, model, state, run_counts(prepared, clusters, config))


def run_counts(prepared: pd.DataFrame, clusters: pd.DataFrame, config: DedupeConfig,
               new_from: int | None = None) -> dict[str, float]:
    """What a run skipped or split: blocks above max_block_size, match components split at weak links."""
    return {**oversized_blocks(prepared, config, new_from), **split_counts(clusters)}


def run_incremental(new_records: pd.DataFrame, state: DedupeState, config: DedupeConfig) -> DedupeResult:
    """Add records to an earlier run: only the new records are embedded, and only pairs with a new record are
    compared and scored (with the earlier run's model, not refitted).

    Clusters are rebuilt from the earlier matches plus the new ones; every record, old or new, gets one.
    Returns the result over all records, with the updated state. The engine's whole incremental run when its
    `Steps` have one (`Steps.whole_incremental`: Spark keeps the new pairs as tables and returns a `PairsOnRead`),
    else `run_incremental_steps` (the pandas engine).
    """
    return (steps_for(config).whole_incremental or run_incremental_steps)(new_records, state, config)


def run_incremental_steps(new_records: pd.DataFrame, state: DedupeState, config: DedupeConfig) -> DedupeResult:
    """`run_incremental` through the `Steps` interface: the new pairs, levels and probabilities on the driver."""
    steps = steps_for(config)
    new = steps.prepare(new_records, config)
    check_new_records(new, state)
    n_old = len(state.prepared)
    prepared = pd.concat([state.prepared, new], ignore_index=True)
    new_vectors = steps.embed(new, config)
    if new_vectors.shape[1] != state.vectors.shape[1]:
        raise AietlInputError("The earlier run's vectors have another dimension: run the full pipeline again.")
    vectors = np.concatenate([state.vectors, new_vectors]) if len(state.vectors) else new_vectors
    pairs, kth_new = steps.new_candidates(prepared, vectors, n_old, state.kth_cosine, config)
    levels, names, _ = steps.levels(prepared, pairs, vectors, config)
    levels = align_levels(levels, names, state.model.names)  # the saved model's comparisons, in its order
    probability, _ = steps.score(levels, levels[:0], state.model.names, state.model.sizes, config, state.model)
    pairs, probability = steps.label(prepared, pairs, vectors, levels, probability, state.model, config)
    pairs = pairs.assign(match_probability=probability)
    # clusters from every match so far: the earlier ones (by id) and the new ones
    every = pd.concat([earlier_match_positions(prepared, state.matches), pairs[["left", "right", "match_probability"]]],
                      ignore_index=True)
    clusters = steps.cluster(prepared, every, every["match_probability"].to_numpy(dtype=float), config)
    matches = pd.concat([state.matches, evidence_pairs(prepared, every, every["match_probability"].to_numpy(),
                                                       config.match_threshold).iloc[len(state.matches):]],
                        ignore_index=True)
    new_state = DedupeState(prepared, vectors, np.r_[state.kth_cosine, kth_new], matches, state.model)
    return DedupeResult(prepared, pairs, clusters, state.model, new_state,
                        run_counts(prepared, clusters, config, new_from=n_old))
