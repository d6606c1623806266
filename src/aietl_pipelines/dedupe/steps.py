"""One interface per dedupe step, and one implementation of each per engine, chosen by `dedupe.engine`.

The pandas/NumPy engine (in process) is registered here. Another engine (Spark) registers its own `Steps`
with `register_engine("spark", Steps(...))`, reusing the steps it does not replace, so that nodes, the
service and `engine.run` call `steps_for(config).candidates(...)` and never branch on the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import cluster as clustering
from aietl_pipelines.dedupe import pairs, prepare, scoring, survivorship
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.score import FellegiSunterModel
from aietl_pipelines.engine_registry import EngineRegistry


class Prepare(Protocol):
    def __call__(self, records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame: ...


class Embed(Protocol):
    def __call__(self, prepared: pd.DataFrame, config: DedupeConfig) -> np.ndarray: ...


class Candidates(Protocol):
    def __call__(self, prepared: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                 ) -> tuple[pd.DataFrame, np.ndarray]: ...


class NewCandidates(Protocol):
    def __call__(self, prepared: pd.DataFrame, vectors: np.ndarray, n_old: int, old_kth: np.ndarray,
                 config: DedupeConfig) -> tuple[pd.DataFrame, np.ndarray]: ...


class Compare(Protocol):
    def __call__(self, prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                 ) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]: ...


class Levels(Protocol):
    def __call__(self, prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
                 ) -> tuple[np.ndarray, list[str], list[int]]: ...


class RuleRates(Protocol):
    def __call__(self, prepared: pd.DataFrame, config: DedupeConfig) -> dict[tuple[str, ...], float]: ...


class Score(Protocol):
    def __call__(self, levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int],
                 config: DedupeConfig, model: FellegiSunterModel | None = None, *,
                 rule_rates: dict[tuple[str, ...], float] | None = None) -> tuple[np.ndarray, FellegiSunterModel]: ...


class ApplyLabels(Protocol):
    def __call__(self, prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, levels: np.ndarray,
                 probability: np.ndarray, model: FellegiSunterModel, config: DedupeConfig
                 ) -> tuple[pd.DataFrame, np.ndarray]: ...


class Cluster(Protocol):
    def __call__(self, prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray,
                 config: DedupeConfig) -> pd.DataFrame: ...


class Golden(Protocol):
    def __call__(self, records: pd.DataFrame, clusters: pd.Series, fields: list[str], id_column: str,
                 rules: dict[str, Any]) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Steps:
    """The implementation of each step for one engine."""

    prepare: Prepare
    embed: Embed
    candidates: Candidates           # full run: pairs and each record's k-th neighbour cosine
    new_candidates: NewCandidates    # incremental run: pairs with a new record
    compare: Compare                 # candidate levels + random-pair levels (for u)
    levels: Levels                   # levels of given pairs only (incremental runs score with a saved model)
    score: Score
    label: ApplyLabels               # labelled mode: labelled pairs recalibrate the scores (no labels: unchanged)
    cluster: Cluster
    golden: Golden                   # one golden record per cluster (survivorship rules)
    # share of all record pairs agreeing on each EM session rule (the prior is counted from it, score.py)
    rule_rates: RuleRates = scoring.rule_agreement_rates
    # the dedupe pipeline's pair nodes for an engine that keeps the candidate pairs as its own tables
    # (`pipelines/dedupe/nodes.py` PairNodes; Spark: `spark/dedupe_nodes.py`); None: the in-process nodes
    pair_nodes: Any = None
    # the whole `engine.run` (records, config, keep_state) -> DedupeResult for an engine that keeps the pairs as its
    # own tables and collects them only when asked (Spark: `spark/dedupe_tables.engine_run`); None: `engine.run`
    # chains the steps above (`engine.run_steps`)
    whole_run: Any = None
    # the whole `engine.run_incremental` (new_records, state, config) -> DedupeResult for such an engine (Spark:
    # `spark/dedupe_tables.engine_run_incremental`); None: `engine.run_incremental` chains the steps above
    # (`engine.run_incremental_steps`)
    whole_incremental: Any = None
    # `train_dedupe_with_labels`' candidate pairs, (records, config) -> `labels.CandidatePatterns` (scores per
    # comparison pattern, the next question found among the pairs) for an engine that keeps the pairs as its own
    # tables (Spark: `spark/dedupe_tables.label_pairs`); None: `labels.pandas_candidates`, the steps above with the
    # pairs in memory
    label_pairs: Any = None


PANDAS = Steps(prepare=scoring.prepare_with_rule_rates, embed=prepare.embed, candidates=pairs.candidates_with_radius,
               new_candidates=pairs.new_record_candidates, compare=scoring.compare, levels=scoring.pair_levels,
               score=scoring.score, label=scoring.apply_labels,
               cluster=clustering.cluster, golden=survivorship.build_golden_records)



def _spark() -> Steps:
    """The Spark engine's steps (`aietl_pipelines/spark/dedupe.py`), imported only when asked for."""
    from aietl_pipelines.spark.dedupe import spark_steps

    return spark_steps()


_ENGINES: EngineRegistry[Steps] = EngineRegistry("dedupe", "dedupe.engine", {"pandas": PANDAS, "spark": _spark}, Steps)


def register_engine(name: str, steps: Steps | Callable[[], Steps]) -> None:
    """Make `dedupe.engine: <name>` available (a `Steps`, or a function building it on first use)."""
    _ENGINES.register(name, steps)


def steps_for(config: DedupeConfig | Any) -> Steps:
    """The steps of the engine `config.engine` names."""
    return _ENGINES.get(getattr(config, "engine", "pandas"))
