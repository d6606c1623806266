"""Wiring of the drift_monitoring pipeline."""

from kedro.pipeline import Pipeline, node

from . import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """etl_runs → windows → column drift → summary (+ retraining advice) → HTML report, history, metrics."""
    return Pipeline(
        [
            node(nodes.select_drift_windows, ["etl_runs", "params:drift_monitoring"],
                 ["drift_reference", "drift_current"], name="select_drift_windows"),
            node(nodes.detect_column_drift, ["drift_reference", "drift_current", "params:drift_monitoring"],
                 ["drift_column_results", "drift_skipped_columns"], name="detect_column_drift"),
            node(nodes.build_drift_summary,
                 ["drift_column_results", "drift_skipped_columns", "drift_history", "params:drift_monitoring",
                  "drift_reference", "drift_current", "etl_runs"],
                 "drift_summary", name="build_drift_summary"),
            node(nodes.render_drift_report, ["drift_summary", "drift_reference", "drift_current", "params:drift_monitoring"],
                 "drift_report_html", name="render_drift_report"),
            node(nodes.drift_history_entry, ["drift_summary", "drift_history"], "drift_history_new_entry",
                 name="append_drift_history"),
            node(nodes.drift_metrics, "drift_summary", "drift_metrics", name="compute_drift_metrics"),
        ],
        tags=["drift_monitoring"],
    )
