"""Drift summary, alerting and the retraining recommendation."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from aietl_pipelines.errors import AietlInputError

DEFAULT_RULES: dict[str, Any] = {
    "alert_threshold": 0.3,        # alert when the share of drifted columns is strictly above this
    "drift_share_threshold": 0.3,  # retrain when the share is strictly above this ...
    "critical_columns": [],        # ... or when any of these (target, prediction) drifts
    "consecutive_windows": 1,      # ... and that has held for this many windows in a row
    "cooldown_days": 0,            # no new recommendation within this many days of the last retraining
}


def data_fingerprint(*frames: pd.DataFrame) -> str:
    """Content hash of the compared frames (values, column names and order): the identity of a drift window,
    so that a rerun on identical data is recognised (no second history entry, no extra window counted)."""
    digest = hashlib.sha1()
    for frame in frames:
        digest.update(repr([str(c) for c in frame.columns]).encode())
        try:
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        except (TypeError, ValueError):  # unhashable cells or undecodable bytes: fall back on their text
            digest.update(repr(frame.astype(object).to_numpy().tolist()).encode())
    return digest.hexdigest()[:16]


def summarize_drift(
    table: pd.DataFrame,
    skipped: Mapping[str, str] | None = None,
    alert_threshold: float = 0.3,
    target_column: str | None = None,
    warnings: Sequence[str] = (),
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """Summary of a column table from `compute_drift`.

    Returns:
        drift_share, drifted_columns, n_columns, alert_triggered (share > alert_threshold), target_drifted,
        per_column (list of dicts), skipped_columns, warnings (notes on unreliable inputs, from
        `statistics.input_warnings`, plus skipped columns), data_fingerprint, generated_at.
    """
    n = len(table)
    notes = list(warnings)
    if skipped:
        notes.append(f"{len(skipped)} column(s) not tested: "
                     + "; ".join(f"'{c}' ({why})" for c, why in skipped.items()))
    if n == 0:
        notes.append("no column was tested: drift_share 0.0 says nothing about the data")
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
        "warnings": notes,
        "data_fingerprint": fingerprint,
        "generated_at": datetime.now(UTC).isoformat(),
    }


def _checked_report(report: Any, what: str = "report") -> tuple[float, set[str]]:
    """(drift_share, drifted columns) of a summary, or a clear error naming the bad field."""
    if not isinstance(report, Mapping):
        raise AietlInputError(
            f"The drift {what} must be a dict as returned by detect_data_drift, got {type(report).__name__}."
        )
    share = report.get("drift_share", 0.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) \
            or not 0.0 <= share <= 1.0:
        raise AietlInputError(
            f"The drift {what}'s 'drift_share' must be a number between 0 and 1, got {share!r}. "
            "Pass the dict detect_data_drift returned (or a share such as 0.4)."
        )
    drifted = report.get("drifted_columns", [])
    if isinstance(drifted, str) or not isinstance(drifted, Sequence | set) \
            or not all(isinstance(c, str) for c in drifted):
        raise AietlInputError(
            f"The drift {what}'s 'drifted_columns' must be a list of column names, got {drifted!r}."
        )
    return float(share), set(drifted)


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
    if rules is not None and not isinstance(rules, Mapping):
        raise AietlInputError(f"Retraining rules must be a dict (keys {list(DEFAULT_RULES)}), got {type(rules).__name__}.")
    r = {**DEFAULT_RULES, **(rules or {})}
    for key in ("drift_share_threshold", "consecutive_windows", "cooldown_days"):
        if isinstance(r[key], bool) or not isinstance(r[key], int | float):
            raise AietlInputError(f"Retraining rule '{key}' must be a number, got {r[key]!r}.")
    share, drifted = _checked_report(report)
    critical = sorted(drifted & set(r["critical_columns"] or []))
    if report.get("target_drifted"):
        critical = sorted(set(critical) | {str(report.get("target_column"))})

    def breaches(summary: Mapping[str, Any]) -> bool:
        past_share, cols = _checked_report(summary, "history entry")
        return past_share > r["drift_share_threshold"] or bool(
            cols & set(r["critical_columns"] or [])
        ) or bool(summary.get("target_drifted"))

    # a window is its data: reruns on identical data (same fingerprint) count once, and not the current one
    windows: list[Mapping[str, Any]] = []
    seen = {report.get("data_fingerprint")} - {None}
    for past in reversed(list(history)):
        key = past.get("data_fingerprint") if isinstance(past, Mapping) else None
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        windows.append(past)

    if not (share > r["drift_share_threshold"] or critical):
        return False, (
            f"no retraining: drift share {share:.2f} is not above {r['drift_share_threshold']:.2f} "
            "and no critical column drifted"
        )
    needed = int(r["consecutive_windows"])
    streak = 1
    for past in windows:
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
