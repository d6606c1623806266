"""Wiring of the retraining pipeline."""

from kedro.pipeline import Pipeline, node

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """drift_summary + features + telemetry → decide → train → evaluate vs champion → register/promote →
    predictions back to the feature store, audit log, metrics."""
    p = "params:retraining"
    return Pipeline(
        [
            node(nodes.decide, ["drift_summary", "champion_model", p], "retraining_decision", name="decide_retraining"),
            node(nodes.build_training_data, ["etl_runs", "pipeline_features", p], "failure_training_data",
                 name="build_failure_training_data"),
            node(nodes.split_train_holdout, ["failure_training_data", p], ["failure_train", "failure_holdout"],
                 name="split_train_holdout"),
            node(nodes.train_candidate, ["failure_train", "retraining_decision", p], "candidate_model",
                 name="train_candidate_model"),
            node(nodes.evaluate_candidate,
                 ["candidate_model", "champion_model", "failure_holdout", "retraining_decision", p],
                 "retraining_evaluation", name="evaluate_candidate_vs_champion"),
            node(nodes.calibration_plot, ["candidate_model", "champion_model", "failure_holdout"],
                 "calibration_plot", name="plot_calibration"),
            node(nodes.registration_request, ["candidate_model", "retraining_evaluation", "failure_train", p],
                 "registered_failure_model", name="register_and_promote"),
            node(nodes.audit_entry, ["retraining_evaluation", "failure_training_data"], "retraining_audit_entry",
                 name="audit_retraining_decision"),
            node(nodes.retraining_metrics, "retraining_evaluation", "retraining_metrics", name="compute_retraining_metrics"),
            node(nodes.predict_latest, ["candidate_model", "champion_model", "retraining_evaluation", "pipeline_features", p],
                 "failure_predictions", name="predict_failure_probability"),
        ],
        tags=["retraining"],
    )
