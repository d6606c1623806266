"""Prometheus metrics of the project, in one registry.

Pipelines are batch jobs, so a `kedro run` pushes its metrics to a Pushgateway when
``PROMETHEUS_PUSHGATEWAY_URL`` is set, and always writes them in the text exposition format to
``data/08_reporting/metrics.prom`` (readable by node_exporter's textfile collector). The API exposes the
same registry on ``/metrics``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    Histogram,
    push_to_gateway,
    write_to_textfile,
)

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()

NODE_SECONDS = Histogram(
    "aietl_node_duration_seconds",
    "Wall time of one Kedro node",
    ["pipeline", "node"],
    registry=REGISTRY,
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
PIPELINE_SECONDS = Gauge(
    "aietl_pipeline_duration_seconds", "Wall time of the last run", ["pipeline"], registry=REGISTRY
)
PIPELINE_SUCCESS = Gauge(
    "aietl_pipeline_last_success", "1 if the last run succeeded, else 0", ["pipeline"], registry=REGISTRY
)
VALUES = Gauge(
    "aietl_metric", "Domain metrics (drift share, dedupe F1, model AUC, ...)", ["name"], registry=REGISTRY
)


def observe_node(pipeline: str, node: str, seconds: float) -> None:
    """Record the duration of one node."""
    NODE_SECONDS.labels(pipeline=pipeline, node=node).observe(seconds)


def observe_pipeline(pipeline: str, seconds: float, success: bool) -> None:
    """Record the duration and outcome of one pipeline run."""
    PIPELINE_SECONDS.labels(pipeline=pipeline).set(seconds)
    PIPELINE_SUCCESS.labels(pipeline=pipeline).set(1.0 if success else 0.0)


def set_gauge(name: str, value: float) -> None:
    """Set a domain metric, e.g. ``set_gauge("drift_share", 0.25)``."""
    VALUES.labels(name=name).set(float(value))


def export_metrics(textfile: str | Path | None = "data/08_reporting/metrics.prom") -> None:
    """Write the registry to a textfile and push it to the Pushgateway if one is configured."""
    if textfile:
        Path(textfile).parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), REGISTRY)
    gateway = os.environ.get("PROMETHEUS_PUSHGATEWAY_URL")
    if gateway:
        try:
            push_to_gateway(gateway, job="aietl_pipelines", registry=REGISTRY, timeout=5)
        except OSError as exc:  # a monitoring outage must not fail the data pipeline
            logger.warning("Could not push metrics to the Pushgateway at %s: %s", gateway, exc)
