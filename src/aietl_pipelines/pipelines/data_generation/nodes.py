"""Nodes of the data_generation pipeline: thin wrappers over aietl_pipelines.datagen."""

from __future__ import annotations

from typing import Any

import pandas as pd

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.datagen.telemetry import generate_etl_runs


def generate_customer_records(params: dict[str, Any]) -> pd.DataFrame:
    """Customer records from several sources with known duplicate clusters.

    Args:
        params: ``data_generation.customers`` parameters (n_entities, seed, ...).

    Returns:
        The customer table (schema in `aietl_pipelines.datagen.customers`).
    """
    return generate_customers(**params)


def generate_etl_run_telemetry(params: dict[str, Any]) -> pd.DataFrame:
    """ETL run telemetry over weeks with a known drift episode and failure labels.

    Args:
        params: ``data_generation.telemetry`` parameters (n_pipelines, days, drift_start_day, seed, ...).

    Returns:
        One row per run (schema in `aietl_pipelines.datagen.telemetry`).
    """
    return generate_etl_runs(**params)
