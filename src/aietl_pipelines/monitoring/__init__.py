"""Prometheus metrics shared by the Kedro hooks, the services and the API (see `metrics`)."""

from aietl_pipelines.monitoring.metrics import (
    OTHER,
    REGISTRY,
    LabelFolder,
    export_metrics,
    observe_drift_duration,
    observe_node,
    observe_pipeline,
    observe_request,
    observe_vector_search,
    push_metrics,
    record_dedupe,
    record_drift,
    record_online_read,
    record_retraining,
    set_gauge,
)

__all__ = [
    "OTHER",
    "REGISTRY",
    "LabelFolder",
    "export_metrics",
    "observe_drift_duration",
    "observe_node",
    "record_online_read",
    "observe_pipeline",
    "observe_request",
    "observe_vector_search",
    "push_metrics",
    "record_dedupe",
    "record_drift",
    "record_retraining",
    "set_gauge",
]
