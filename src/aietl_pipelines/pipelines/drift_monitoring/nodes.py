"""Nodes of the drift_monitoring pipeline (thin wrappers over aietl_pipelines.drift)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aietl_pipelines.drift.engines import drift_steps
from aietl_pipelines.drift.report import render_evidently_report, render_html_report
from aietl_pipelines.drift.summary import should_trigger_retraining, summarize_drift
from aietl_pipelines.drift.windows import missing_time_note


def select_drift_windows(runs: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut the reference and current windows and keep the monitored columns.

    Args:
        runs: ETL run telemetry.
        params: ``drift_monitoring`` parameters (time_column, reference_days, current_last_days, columns).

    Returns:
        (reference, current) frames.
    """
    reference, current = drift_steps(params.get("engine")).split_windows(
        runs, params["time_column"], tuple(params["reference_days"]), params["current_last_days"]
    )
    columns = params.get("columns") or [c for c in runs.columns if c != params["time_column"]]
    return reference[columns], current[columns]


def detect_column_drift(
    reference: pd.DataFrame, current: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per monitored column: test, score, threshold, verdict, PSI; plus the skipped columns."""
    return drift_steps(params.get("engine")).compute_drift(
        reference,
        current,
        tests=params.get("tests") or None,
        thresholds=params.get("thresholds") or None,
        correction=params.get("correction"),
        text_columns=params.get("text_columns") or (),
    )


def build_drift_summary(
    column_results: pd.DataFrame,
    skipped: dict[str, str],
    history: list[dict[str, Any]],
    params: dict[str, Any],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    runs: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Summary with alert, input warnings, the windows' data fingerprint and the retraining recommendation
    (rules in ``drift_monitoring.retraining_rules``; a rerun on identical windows counts as the same window).
    `runs` (pandas) adds a warning for rows without a timestamp, which fall in no window."""
    steps = drift_steps(params.get("engine"))
    notes = [missing_time_note(runs, params["time_column"])] if isinstance(runs, pd.DataFrame) else []
    summary = summarize_drift(
        column_results, skipped, params["alert_threshold"], params.get("target_column"),
        [n for n in notes if n] + steps.input_warnings(reference, current, params.get("columns") or None),
        steps.data_fingerprint(reference, current),
    )
    retrain, reason = should_trigger_retraining(summary, params.get("retraining_rules"), history)
    summary["retraining_recommendation"] = {"should_retrain": retrain, "reason": reason}
    return summary


def render_drift_report(summary: dict[str, Any], reference: pd.DataFrame, current: pd.DataFrame,
                        params: dict[str, Any]) -> str:
    """HTML report: ours (the summary's numbers and distribution plots, fast) or, with
    `drift_monitoring.report_engine: evidently`, Evidently's own DataDriftPreset report. The plots are drawn
    from the engine's bounded pandas sample of each window (the whole windows on the pandas engine)."""
    reference, current = drift_steps(params.get("engine")).report_frames(reference, current)
    if params.get("report_engine", "aietl") == "evidently":
        return render_evidently_report(reference, current)
    return render_html_report(summary, reference, current)


def drift_history_entry(summary: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The compact record appended to the drift history (no per-column detail); nothing when the last entry
    has the same data fingerprint (a rerun on identical data is not a new window)."""
    if history and summary.get("data_fingerprint") and history[-1].get("data_fingerprint") == summary["data_fingerprint"]:
        return []
    keep = ("generated_at", "drift_share", "drifted_columns", "alert_triggered", "target_drifted",
            "retraining_recommendation", "n_columns", "data_fingerprint")
    return [{k: summary.get(k) for k in keep}]


def drift_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Numbers for MLflow and Prometheus."""
    return {
        "drift_share": float(summary["drift_share"]),
        "n_drifted": float(summary["n_drifted"]),
        "alert_triggered": float(summary["alert_triggered"]),
        "retraining_recommended": float(summary["retraining_recommendation"]["should_retrain"]),
    }
