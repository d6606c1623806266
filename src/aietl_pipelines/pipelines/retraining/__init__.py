"""retraining: drift-triggered training of the pipeline-failure model with champion/challenger promotion."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
