"""Metrics of a failure model on a held-out window, and the promotion rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from aietl_pipelines.retraining.model import predict_failure_probability


def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier score and the positive rate."""
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "positive_rate": float(np.mean(y)),
        "n": float(len(y)),
    }


def evaluate_model(model: Any, holdout: pd.DataFrame) -> dict[str, float] | None:
    """Metrics of `model` on the holdout, or None when there is no model."""
    if model is None:
        return None
    return score(holdout["label"].to_numpy(), predict_failure_probability(model, holdout))


def is_better(candidate: dict[str, float], champion: dict[str, float] | None, metric: str, margin: float) -> tuple[bool, str]:
    """Promote when there is no champion or the candidate beats it by `margin` on `metric` (Brier: lower)."""
    if champion is None:
        return True, "no champion yet: the first model becomes champion"
    lower_is_better = metric == "brier"
    gain = (champion[metric] - candidate[metric]) if lower_is_better else (candidate[metric] - champion[metric])
    verdict = gain > margin
    return verdict, (f"candidate {metric} {candidate[metric]:.4f} vs champion {champion[metric]:.4f}: "
                     f"{'better' if verdict else 'not better'} by more than {margin}")


def calibration_figure(holdout: pd.DataFrame, models: dict[str, Any], bins: int = 10) -> go.Figure:
    """Reliability diagram of each model on the holdout."""
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash"})])
    for name, model in models.items():
        if model is None:
            continue
        prob = predict_failure_probability(model, holdout)
        frac, mean = calibration_curve(holdout["label"], prob, n_bins=bins, strategy="quantile")
        fig.add_trace(go.Scatter(x=mean, y=frac, mode="lines+markers", name=name))
    fig.update_layout(title="Calibration on the held-out window", xaxis_title="predicted P(next run fails)",
                      yaxis_title="observed failure rate")
    return fig
