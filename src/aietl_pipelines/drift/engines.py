"""One interface per engine-dependent drift step, one implementation per engine, chosen by
`drift_monitoring.engine` (pandas in process; spark with `kedro run --env spark`). Nodes and services call
`drift_steps(name).compute_drift(...)` and never branch on the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aietl_pipelines.drift.statistics import compute_drift, input_warnings
from aietl_pipelines.drift.summary import data_fingerprint
from aietl_pipelines.drift.windows import split_windows
from aietl_pipelines.engine_registry import EngineRegistry


@dataclass(frozen=True)
class DriftSteps:
    """The engine's implementation of each step (frames are pandas or Spark DataFrames per engine)."""

    split_windows: Callable[..., tuple[Any, Any]]
    compute_drift: Callable[..., tuple[Any, dict[str, str]]]  # always returns a pandas table
    input_warnings: Callable[..., list[str]]
    data_fingerprint: Callable[..., str]
    report_frames: Callable[[Any, Any], tuple[Any, Any]]  # pandas frames (bounded) for the HTML plots


PANDAS = DriftSteps(split_windows, compute_drift, input_warnings, data_fingerprint, lambda ref, cur: (ref, cur))


def _spark() -> DriftSteps:
    from aietl_pipelines.spark import drift

    return DriftSteps(drift.split_windows, drift.compute_drift, drift.input_warnings, drift.data_fingerprint,
                      drift.report_frames)


_ENGINES: EngineRegistry[DriftSteps] = EngineRegistry(
    "drift", "drift_monitoring.engine", {"pandas": PANDAS, "spark": _spark}, DriftSteps
)


def drift_steps(name: str | None = "pandas") -> DriftSteps:
    """The drift steps of engine `name` (`drift_monitoring.engine`)."""
    return _ENGINES.get(name)
