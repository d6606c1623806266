"""Reference/current windows cut from a time-stamped frame."""

from __future__ import annotations

import logging

import pandas as pd

from aietl_pipelines.errors import AietlInputError

logger = logging.getLogger(__name__)


def split_windows(
    frame: pd.DataFrame,
    time_column: str,
    reference_days: tuple[float, float],
    current_last_days: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference = days [start, end) counted from the first timestamp; current = the last N days.

    Args:
        frame: Time-stamped rows.
        time_column: Timestamp column.
        reference_days: (start, end) day offsets of the reference window.
        current_last_days: Length of the current window, ending at the last timestamp.
    """
    if time_column not in frame.columns:
        raise AietlInputError(
            f"Time column '{time_column}' not found (columns: {list(frame.columns)}). "
            "Set `drift_monitoring.time_column` to the column holding the event time."
        )
    try:
        times = pd.to_datetime(frame[time_column], utc=True)
    except (ValueError, TypeError) as exc:
        raise AietlInputError(
            f"Time column '{time_column}' holds values that are not timestamps ({str(exc)[:120]}). "
            "Store ISO timestamps or datetimes there."
        ) from None
    missing = int(times.isna().sum())
    if missing == len(times):
        raise AietlInputError(
            f"Time column '{time_column}' has no timestamps (all {missing:,} values missing): no window can be cut. "
            "Fill the column or point `drift_monitoring.time_column` at another one."
        )
    note = missing_time_note(frame, time_column)
    if note:
        logger.warning("%s", note)
    first, last = times.min(), times.max()
    ref_mask = (times >= first + pd.Timedelta(days=reference_days[0])) & (
        times < first + pd.Timedelta(days=reference_days[1])
    )
    cur_mask = times > last - pd.Timedelta(days=current_last_days)
    return frame.loc[ref_mask].reset_index(drop=True), frame.loc[cur_mask].reset_index(drop=True)


def missing_time_note(frame: pd.DataFrame, time_column: str) -> str | None:
    """A warning when rows have no timestamp (they fall in no window), else None."""
    if time_column not in frame.columns or frame.empty:
        return None
    missing = int(pd.to_datetime(frame[time_column], utc=True, errors="coerce").isna().sum())
    if not missing:
        return None
    return (f"time column '{time_column}' has {missing:,} of {len(frame):,} timestamps missing (NaT): those rows "
            "are in no window. Fill or drop them upstream.")
