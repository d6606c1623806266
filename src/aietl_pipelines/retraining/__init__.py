"""Drift-triggered retraining of the pipeline-failure model, MLflow registry and promotion by alias."""
