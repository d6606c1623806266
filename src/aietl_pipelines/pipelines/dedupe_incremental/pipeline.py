"""Wiring of the dedupe_incremental pipeline."""

from kedro.pipeline import Pipeline, node

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """customers_new + dedupe_state → clusters of all records, scored new pairs, updated state, metrics."""
    return Pipeline(
        [
            node(nodes.parse_dedupe_config, "params:dedupe", "dedupe_incremental_config",
                 name="parse_dedupe_incremental_config"),
            node(nodes.add_new_records, ["customers_new", "dedupe_state", "dedupe_incremental_config"],
                 ["dedupe_clusters_updated", "dedupe_new_scored_pairs", "dedupe_state_updated",
                  "dedupe_incremental_metrics"], name="add_new_records"),
        ],
        tags=["dedupe", "dedupe_incremental"],
    )
