"""feature_engineering: per-pipeline features from ETL telemetry, published to the Feast feature store."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
