"""Training data: label = "the next run of this pipeline fails", features point-in-time at the current run."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.definitions import TTL
from aietl_pipelines.features.store import point_in_time_join
from aietl_pipelines.validation import check_frame


def next_run_failure_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run that has a next run: pipeline_id, event_timestamp (its finish), label (next run failed).

    The last run of each pipeline has no next run yet and gets no label (it is where we predict).
    """
    check_frame(runs, "etl_runs", ["pipeline_id", "finished_at", "started_at", "failed"])
    frame = runs[["pipeline_id", "started_at", "finished_at", "failed"]].sort_values(["pipeline_id", "started_at"])
    frame["label"] = frame.groupby("pipeline_id")["failed"].shift(-1)
    labelled = frame.dropna(subset=["label"])
    return pd.DataFrame({
        "pipeline_id": labelled["pipeline_id"].to_numpy(),
        "event_timestamp": pd.to_datetime(labelled["finished_at"], utc=True).to_numpy(),
        "label": labelled["label"].astype("int64").to_numpy(),
    }).assign(event_timestamp=lambda d: pd.to_datetime(d["event_timestamp"], utc=True)).sort_values(
        "event_timestamp", kind="stable").reset_index(drop=True)


def build_training_set(labels: pd.DataFrame, features: pd.DataFrame, feature_names: Sequence[str]) -> pd.DataFrame:
    """Point-in-time join of the feature rows onto the labelled entity rows (the same join the feature store
    service uses for `get_historical_features`)."""
    unknown = [f for f in feature_names if f not in features.columns]
    if unknown:
        raise AietlInputError(f"Unknown feature(s) {unknown} in `retraining.features`; available: "
                              f"{[c for c in features.columns if c not in ('pipeline_id', 'event_timestamp')]}.")
    return point_in_time_join(labels, features, list(feature_names), pd.Timedelta(TTL))


def split_by_time(frame: pd.DataFrame, holdout_days: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train = everything before the last `holdout_days`; holdout = the most recent `holdout_days`.

    A clear error when either side is empty (too few runs: a label needs a next run of the same pipeline)."""
    if frame.empty:
        raise AietlInputError(
            "'etl_runs' gives no labelled rows to train or evaluate on (a row is labelled by the next run of the "
            "same pipeline, so each pipeline needs at least two runs, and features at their time). "
            "Collect more runs or run `kedro run --pipeline data_generation` for the sample data."
        )
    cut = frame["event_timestamp"].max() - pd.Timedelta(days=holdout_days)
    train = frame[frame["event_timestamp"] <= cut].reset_index(drop=True)
    holdout = frame[frame["event_timestamp"] > cut].reset_index(drop=True)
    if train.empty:
        span = frame["event_timestamp"].max() - frame["event_timestamp"].min()
        raise AietlInputError(
            f"'etl_runs' covers {span} of labelled runs: nothing is left to train on before the "
            f"{holdout_days}-day holdout. Collect more days of runs or lower `retraining.holdout_days`."
        )
    return train, holdout
