"""The engine-dependent retraining steps, one implementation per engine, chosen by `retraining.engine`
(pandas in process; spark with `kedro run --env spark`): the labelled point-in-time training set and the batch
scoring of the latest feature rows. Training itself is scikit-learn on the driver for both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.engine_registry import EngineRegistry
from aietl_pipelines.retraining import dataset
from aietl_pipelines.retraining.model import predict_failure_probability


@dataclass(frozen=True)
class RetrainingSteps:
    """training_data(runs, features, feature_names) -> pandas; score(model, rows) -> probabilities."""

    training_data: Callable[[Any, Any, Sequence[str]], pd.DataFrame]
    score: Callable[[Any, pd.DataFrame], np.ndarray]


def _pandas_training_data(runs: pd.DataFrame, features: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    return dataset.build_training_set(dataset.next_run_failure_labels(runs), features, names)


PANDAS = RetrainingSteps(_pandas_training_data, predict_failure_probability)


def _spark() -> RetrainingSteps:
    from aietl_pipelines.spark import retraining

    def score(model: Any, rows: pd.DataFrame) -> np.ndarray:
        scored = retraining.score_failure_probability(model, rows.reset_index(drop=True).assign(_pos=lambda d: d.index))
        return scored.select("_pos", "failure_probability").toPandas().sort_values("_pos")[
            "failure_probability"].to_numpy()

    return RetrainingSteps(retraining.build_training_data, score)


_ENGINES: EngineRegistry[RetrainingSteps] = EngineRegistry(
    "retraining", "retraining.engine", {"pandas": PANDAS, "spark": _spark}, RetrainingSteps
)


def retraining_steps(name: str | None = "pandas") -> RetrainingSteps:
    """The retraining steps of engine `name` (`retraining.engine`)."""
    return _ENGINES.get(name)
