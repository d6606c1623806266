"""Wiring of the feature_engineering pipeline."""

from kedro.pipeline import Pipeline, node

from .nodes import build_pipeline_features, summarize_features


def create_pipeline(**kwargs) -> Pipeline:
    """etl_runs → pipeline_features (saved = offline source + feast apply + materialize) → metrics."""
    return Pipeline(
        [
            node(build_pipeline_features, ["etl_runs", "params:feature_engineering"], "pipeline_features",
                 name="build_pipeline_features"),
            node(summarize_features, "pipeline_features", "feature_engineering_metrics",
                 name="summarize_features"),
        ],
        tags=["feature_engineering"],
    )
