"""Wiring of the data_generation pipeline."""

from kedro.pipeline import Pipeline, node

from .nodes import generate_customer_records, generate_etl_run_telemetry


def create_pipeline(**kwargs) -> Pipeline:
    """Sample customers (and later arrivals for dedupe_incremental) and telemetry, written to data/01_raw."""
    return Pipeline(
        [
            node(
                generate_customer_records,
                inputs="params:data_generation.customers",
                outputs=["customers_raw", "customers_new"],
                name="generate_customer_records",
            ),
            node(
                generate_etl_run_telemetry,
                inputs="params:data_generation.telemetry",
                outputs="etl_runs",
                name="generate_etl_run_telemetry",
            ),
        ],
        tags=["data_generation"],
    )
