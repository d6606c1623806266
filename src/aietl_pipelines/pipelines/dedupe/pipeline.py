"""Wiring of the dedupe pipeline."""

from kedro.pipeline import Pipeline, node

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """customers_raw → prepared → embeddings → candidates → scored pairs → clusters → golden records, metrics."""
    c = "dedupe_config"
    return Pipeline(
        [
            node(nodes.parse_dedupe_config, "params:dedupe", c, name="parse_dedupe_config"),
            node(nodes.prepare_records, ["customers_raw", c], "dedupe_prepared", name="prepare_dedupe_records"),
            node(nodes.embed_records, ["dedupe_prepared", c], "dedupe_embeddings", name="embed_records"),
            node(nodes.find_candidate_pairs, ["dedupe_prepared", "dedupe_embeddings", c],
                 ["dedupe_candidates", "dedupe_knn_radius"], name="find_candidate_pairs"),
            node(nodes.score_candidate_pairs, ["dedupe_prepared", "dedupe_candidates", "dedupe_embeddings", c],
                 ["dedupe_scored_pairs", "dedupe_match_model"], name="score_candidate_pairs"),
            node(nodes.cluster_duplicates, ["dedupe_prepared", "dedupe_scored_pairs", c], "dedupe_clusters",
                 name="cluster_duplicates"),
            node(nodes.build_dedupe_state,
                 ["dedupe_prepared", "dedupe_embeddings", "dedupe_scored_pairs", "dedupe_match_model",
                  "dedupe_knn_radius", c], "dedupe_state", name="build_dedupe_state"),
            node(nodes.build_golden_records, ["customers_raw", "dedupe_clusters", c], "golden_records",
                 name="build_golden_records"),
            node(nodes.evaluate_dedupe,
                 ["customers_raw", "dedupe_prepared", "dedupe_candidates", "dedupe_clusters", "dedupe_match_model", c],
                 "dedupe_metrics", name="evaluate_dedupe"),
        ],
        tags=["dedupe"],
    )
