"""Train or skip, from the drift summary and the retraining parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def decide_retraining(drift_summary: Mapping[str, Any], force: bool = False, has_champion: bool = True) -> dict[str, Any]:
    """{train, reason, forced, drift_share, drifted_columns} from the drift pipeline's recommendation."""
    recommendation = drift_summary.get("retraining_recommendation") or {}
    base = {"forced": bool(force), "drift_share": float(drift_summary.get("drift_share", 0.0)),
            "drifted_columns": list(drift_summary.get("drifted_columns", []))}
    if force:
        return {**base, "train": True, "reason": "forced by parameter retraining.force"}
    if not has_champion:
        return {**base, "train": True, "reason": "no champion model yet: training the first one"}
    if recommendation.get("should_retrain"):
        return {**base, "train": True, "reason": str(recommendation.get("reason", "drift"))}
    return {**base, "train": False, "reason": str(recommendation.get("reason", "no drift recommendation"))}
