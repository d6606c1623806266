"""Deterministic sample data: customers with known duplicates and ETL run telemetry with drift."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
