"""Nodes of the retraining pipeline (pure: registry I/O happens in the catalog datasets)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from aietl_pipelines.retraining import dataset, evaluate, model, registry
from aietl_pipelines.retraining.decision import decide_retraining
from aietl_pipelines.retraining.engines import retraining_steps


def decide(drift_summary: dict[str, Any], champion: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Train or skip (with the reason): drift recommendation, no champion yet, or `retraining.force`."""
    return decide_retraining(drift_summary, bool(params.get("force", False)), has_champion=champion is not None)


def build_training_data(runs: pd.DataFrame, features: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Label = next run fails; features joined point-in-time at the current run's finish."""
    return retraining_steps(params.get("engine")).training_data(runs, features, params["features"])


def split_train_holdout(training_data: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on everything but the most recent window; hold that window out for champion vs candidate.

    The training window can be limited to the last `train_days` days (recent data after a drift)."""
    train, holdout = dataset.split_by_time(training_data, params["holdout_days"])
    if params.get("train_days"):
        start = train["event_timestamp"].max() - pd.Timedelta(days=params["train_days"])
        train = train[train["event_timestamp"] > start].reset_index(drop=True)
    return train, holdout


def train_candidate(train: pd.DataFrame, decision: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """{"model": the candidate, or None when the decision is to skip} (Kedro cannot save a bare None)."""
    if not decision["train"]:
        return {"model": None}
    return {"model": model.train_failure_model(train, params["features"], params["model"])}


def evaluate_candidate(candidate: dict[str, Any], champion: Any, holdout: pd.DataFrame, decision: dict[str, Any],
                       params: dict[str, Any]) -> dict[str, Any]:
    """Both models on the same held-out window, and whether to promote the candidate."""
    candidate = candidate["model"]
    cand = evaluate.evaluate_model(candidate, holdout)
    champ = evaluate.evaluate_model(champion, holdout)
    if candidate is None:
        promote, why = False, "no candidate: " + decision["reason"]
    else:
        promote, why = evaluate.is_better(cand, champ, params["promotion_metric"], params["promotion_margin"])
    return {"decision": decision, "candidate": cand, "champion": champ, "promote": promote, "promotion_reason": why,
            "holdout_start": str(holdout["event_timestamp"].min()), "holdout_rows": len(holdout)}


def calibration_plot(candidate: dict[str, Any], champion: Any, holdout: pd.DataFrame) -> go.Figure:
    """Reliability diagram of candidate and champion on the held-out window."""
    return evaluate.calibration_figure(holdout, {"candidate": candidate["model"], "champion": champion})


def registration_request(candidate: dict[str, Any], evaluation: dict[str, Any], train: pd.DataFrame,
                         params: dict[str, Any]) -> dict[str, Any]:
    """What the registry dataset registers (nothing when there is no candidate)."""
    candidate = candidate["model"]
    if candidate is None:
        return {"model": None}
    metrics = evaluation["candidate"]
    return {"model": candidate, "input_example": train[params["features"]].head(5).astype("float64"),
            "promote": evaluation["promote"],
            "tags": {"promotion_reason": evaluation["promotion_reason"], **{f"holdout_{k}": f"{v:.4f}" for k, v in metrics.items()},
                     registry.FINGERPRINT_TAG: registry.training_fingerprint(train, params["features"], params["model"])}}


def audit_entry(evaluation: dict[str, Any], training_data: pd.DataFrame) -> dict[str, Any]:
    """One audit record: when, why, which data, result."""
    fingerprint = hashlib.sha1(pd.util.hash_pandas_object(training_data, index=False).to_numpy().tobytes()).hexdigest()[:12]
    decision = evaluation["decision"]
    result = "skipped" if not decision["train"] else ("promoted" if evaluation["promote"] else "challenger")
    return {"decided_at": datetime.now(UTC).isoformat(), "train": decision["train"], "reason": decision["reason"],
            "forced": decision["forced"], "drift_share": decision["drift_share"],
            "data_fingerprint": fingerprint, "training_rows": len(training_data),
            "data_start": str(training_data["event_timestamp"].min()), "data_end": str(training_data["event_timestamp"].max()),
            "result": result, "promotion_reason": evaluation["promotion_reason"],
            "candidate_metrics": evaluation["candidate"], "champion_metrics": evaluation["champion"]}


def retraining_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """Numbers for MLflow/Prometheus: decision, promotion, and both models' holdout metrics."""
    out = {"trained": float(evaluation["decision"]["train"]), "promoted": float(evaluation["promote"])}
    for who in ("candidate", "champion"):
        for key, value in (evaluation[who] or {}).items():
            out[f"{who}_{key}"] = value
    return out


def predict_latest(candidate: dict[str, Any], champion: Any, evaluation: dict[str, Any], features: pd.DataFrame,
                   params: dict[str, Any]) -> pd.DataFrame:
    """failure_probability for each pipeline's latest feature row, from the model that is champion now."""
    serving = candidate["model"] if evaluation["promote"] else champion
    latest = features.sort_values("event_timestamp").drop_duplicates("pipeline_id", keep="last")
    if serving is None:
        return pd.DataFrame(columns=["pipeline_id", "event_timestamp", "failure_probability"])
    return pd.DataFrame({"pipeline_id": latest["pipeline_id"].to_numpy(),
                         "event_timestamp": latest["event_timestamp"].to_numpy(),
                         "failure_probability": retraining_steps(params.get("engine")).score(serving, latest)})
