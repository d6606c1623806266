"""The pipeline-failure model: scikit-learn with calibrated probabilities, deterministic by seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aietl_pipelines.errors import AietlInputError


def check_trainable(frame: pd.DataFrame, min_rows: int) -> None:
    """Refuse to train on too few labelled rows or on a single class."""
    labelled = frame.dropna(subset=["label"])
    if len(labelled) < min_rows:
        raise AietlInputError(
            f"Only {len(labelled)} labelled rows to train on (need at least {min_rows}, "
            "`retraining.min_training_rows`). Widen the training window or wait for more runs."
        )
    classes = sorted(labelled["label"].unique())
    if len(classes) < 2:
        raise AietlInputError(
            f"The training labels hold one class only ({classes}): a failure model needs both failed and "
            "successful next runs. Widen the training window."
        )


def train_failure_model(frame: pd.DataFrame, features: Sequence[str], params: Mapping[str, Any]) -> Any:
    """Fit a calibrated classifier on `features` → `label`.

    Args:
        frame: Training rows with the feature columns and `label`.
        features: Feature column names.
        params: algorithm (hist_gradient_boosting | logistic_regression), calibration (sigmoid | isotonic),
            cv, seed, min_training_rows.
    """
    check_trainable(frame, int(params.get("min_training_rows", 50)))
    seed = int(params.get("seed", 42))
    if params.get("algorithm", "hist_gradient_boosting") == "logistic_regression":
        base = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    else:
        base = HistGradientBoostingClassifier(max_iter=int(params.get("max_iter", 200)), learning_rate=0.05,
                                              max_leaf_nodes=15, l2_regularization=1.0, random_state=seed)
    model = CalibratedClassifierCV(base, method=params.get("calibration", "sigmoid"), cv=int(params.get("cv", 3)))
    model.fit(frame[list(features)].astype("float64"), frame["label"].astype(int))
    model.feature_names_ = list(features)
    return model


def predict_failure_probability(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """P(next run fails) for each row."""
    features = list(getattr(model, "feature_names_", None) or model.feature_names_in_)
    return model.predict_proba(frame[features].astype("float64"))[:, 1]
