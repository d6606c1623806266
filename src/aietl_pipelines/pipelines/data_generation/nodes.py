"""Nodes of the data_generation pipeline: thin wrappers over aietl_pipelines.datagen."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aietl_pipelines.datagen.customers import generate_customers, hold_back_latest
from aietl_pipelines.datagen.telemetry import generate_etl_runs


def generate_customer_records(params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customer records from several sources with known duplicate clusters, and the ones that arrive later.

    Args:
        params: ``data_generation.customers`` parameters (n_entities, seed, ...; ``holdout_share``: the share
            of records, the most recently updated, held back as new arrivals for `dedupe_incremental`).

    Returns:
        (customers for the full dedupe run, new customers for the incremental run); schema in
        `aietl_pipelines.datagen.customers`.
    """
    options = dict(params)
    share = float(options.pop("holdout_share", 0.0))
    return hold_back_latest(generate_customers(**options), share)


def generate_etl_run_telemetry(params: dict[str, Any]) -> pd.DataFrame:
    """ETL run telemetry over weeks with a known drift episode and failure labels.

    Args:
        params: ``data_generation.telemetry`` parameters (n_pipelines, days, drift_start_day, seed, ...).

    Returns:
        One row per run (schema in `aietl_pipelines.datagen.telemetry`).
    """
    return generate_etl_runs(**params)
