"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

#: Order in which `kedro run` (the default pipeline) runs them; Kedro resolves the order from the data
#: dependencies anyway, this is for readability of `kedro registry list`.
PIPELINE_NAMES = (
    "data_generation",
    "dedupe",
    "drift_monitoring",
    "feature_engineering",
    "retraining",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; `__default__` runs them all.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines[name] for name in PIPELINE_NAMES if name in pipelines)
    return pipelines
