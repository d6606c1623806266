"""Prometheus metrics shared by the Kedro hooks, the services and the API."""

from aietl_pipelines.monitoring.metrics import (
    REGISTRY,
    export_metrics,
    observe_node,
    observe_pipeline,
    set_gauge,
)

__all__ = ["REGISTRY", "export_metrics", "observe_node", "observe_pipeline", "set_gauge"]
