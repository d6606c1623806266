"""drift_monitoring: reference vs current telemetry, Evidently's tests, report, alert, retraining advice."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
