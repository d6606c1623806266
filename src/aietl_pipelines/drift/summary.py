"""Drift summary, alerting and the retraining recommendation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

DEFAULT_RULES: dict[str, Any] = {
    "alert_threshold": 0.3,        # alert when the share of drifted columns is strictly above this
    "drift_share_threshold": 0.3,  # retrain when the share is strictly above this ...
    "critical_columns": [],        # ... or when any of these (target, prediction) drifts
    "consecutive_windows": 1,      # ... and that has held for this many windows in a row
    "cooldown_days": 0,            # no new recommendation within this many days of the last retraining
}


def summarize_drift(
    table: pd.DataFrame,
    skipped: Mapping[str, str] | None = None,
    alert_threshold: float = 0.3,
    target_column: str | None = None,
) -> dict[str, Any]:
    """Summary of a column table from `compute_drift`.

    Returns:
        drift_share, drifted_columns, n_columns, alert_triggered (share > alert_threshold), target_drifted,
        per_column (list of dicts), skipped_columns, generated_at.
    """
    n = len(table)
    drifted = table.loc[table["drifted"], "column"].tolist() if n else []
    share = len(drifted) / n if n else 0.0
    return {
        "drift_share": share,
        "drifted_columns": drifted,
        "n_columns": n,
        "n_drifted": len(drifted),
        "alert_threshold": alert_threshold,
        "alert_triggered": bool(share > alert_threshold),
        "target_column": target_column,
        "target_drifted": bool(target_column in drifted) if target_column else False,
        "per_column": table.to_dict(orient="records"),
        "skipped_columns": dict(skipped or {}),
        "generated_at": datetime.now(UTC).isoformat(),
    }


def should_trigger_retraining(
    report: Mapping[str, Any],
    rules: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] = (),
    last_retrained_at: str | None = None,
    now: datetime | None = None,
) -> tuple[bool, str]:
    """Decide whether drift calls for retraining.

    Args:
        report: A drift summary (`summarize_drift`).
        rules: Overrides of DEFAULT_RULES.
        history: Earlier summaries, oldest first (for persistence over consecutive windows).
        last_retrained_at: ISO time of the last retraining (for the cooldown).
        now: Current time (default: now, UTC).

    Returns:
        (retrain?, human-readable reason).
    """
    r = {**DEFAULT_RULES, **(rules or {})}
    share = float(report.get("drift_share", 0.0))
    drifted = set(report.get("drifted_columns", []))
    critical = sorted(drifted & set(r["critical_columns"] or []))
    if report.get("target_drifted"):
        critical = sorted(set(critical) | {str(report.get("target_column"))})

    def breaches(summary: Mapping[str, Any]) -> bool:
        cols = set(summary.get("drifted_columns", []))
        return float(summary.get("drift_share", 0.0)) > r["drift_share_threshold"] or bool(
            cols & set(r["critical_columns"] or [])
        ) or bool(summary.get("target_drifted"))

    if not (share > r["drift_share_threshold"] or critical):
        return False, (
            f"no retraining: drift share {share:.2f} is not above {r['drift_share_threshold']:.2f} "
            "and no critical column drifted"
        )
    needed = int(r["consecutive_windows"])
    streak = 1
    for past in reversed(list(history)):
        if not breaches(past):
            break
        streak += 1
    if streak < needed:
        return False, f"no retraining yet: drift held for {streak} of {needed} consecutive windows"
    if last_retrained_at and r["cooldown_days"]:
        now = now or datetime.now(UTC)
        since = now - pd.Timestamp(last_retrained_at).to_pydatetime()
        if since.total_seconds() < r["cooldown_days"] * 86400:
            return False, f"no retraining: in cooldown ({since.days} of {r['cooldown_days']} days since the last)"
    why = []
    if share > r["drift_share_threshold"]:
        why.append(f"drift share {share:.2f} > {r['drift_share_threshold']:.2f} ({', '.join(sorted(drifted))})")
    if critical:
        why.append(f"critical column(s) drifted: {', '.join(critical)}")
    return True, "retrain: " + "; ".join(why)
