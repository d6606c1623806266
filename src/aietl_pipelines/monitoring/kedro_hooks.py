"""Kedro hooks that turn a run into Prometheus metrics, pushed at the end of the run.

Nodes stay pure: the metrics are read from what nodes return. Node duration and DataFrame rows in/out for
every node; the domain metrics from the outputs named in `OUTPUT_RECORDERS` (drift summary, dedupe clusters,
retraining evaluation); the run's duration, outcome and end time; then one push to the Pushgateway when
``PROMETHEUS_PUSHGATEWAY_URL`` is set. A metric that cannot be recorded costs a warning, never the run.
Hook arguments have no defaults: pluggy passes only the arguments a hook names without one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl

from aietl_pipelines.monitoring import metrics

logger = logging.getLogger(__name__)


def _rows(values: Mapping[str, Any]) -> int | None:
    """Total rows of the DataFrames among `values`, None when there is none."""
    frames = [v for v in values.values() if isinstance(v, pd.DataFrame)]
    return sum(len(f) for f in frames) if frames else None


def _record_drift(dataset: str, value: Any, seconds: float) -> None:
    if isinstance(value, Mapping):
        metrics.record_drift(dataset, value)


def _record_drift_duration(dataset: str, value: Any, seconds: float) -> None:
    metrics.observe_drift_duration(dataset, seconds)


def _record_clusters(dataset: str, value: Any, seconds: float) -> None:
    if isinstance(value, pd.DataFrame) and "cluster_id" in value.columns:
        metrics.record_dedupe(dataset, len(value), int(value["cluster_id"].nunique()))


def _record_retraining(dataset: str, value: Any, seconds: float) -> None:
    if isinstance(value, Mapping) and isinstance(value.get("decision"), Mapping):
        metrics.record_retraining(bool(value["decision"].get("train")), bool(value.get("promote")))


#: Node output name -> recorder(dataset the output was computed from, value, node seconds).
OUTPUT_RECORDERS: dict[str, Callable[[str, Any, float], None]] = {
    "drift_column_results": _record_drift_duration,
    "drift_summary": _record_drift,
    "dedupe_clusters": _record_clusters,
    "dedupe_clusters_updated": _record_clusters,
    "retraining_evaluation": _record_retraining,
}


class PrometheusHooks:
    """Per node: duration, rows in/out, domain metrics; per run: duration, outcome, end time, one push."""

    def __init__(self) -> None:
        self._pipeline_name = "__default__"
        self._pipeline: Any = None
        self._frames: set[str] = set()
        self._started: dict[str, tuple[float, int | None]] = {}
        self._t0 = time.perf_counter()

    def _source_dataset(self, output: str) -> str:
        """The DataFrame dataset(s) an output was computed from: the run's free inputs it depends on, or,
        when the run generated them too (a whole-project run), the frames its generator nodes produced."""
        try:
            sub = self._pipeline.to_outputs(output)
            names = {n for n in sub.inputs() if n in self._frames}
            if not names:
                used = sub.all_inputs()
                names = {o for nd in sub.nodes if not any(i in self._frames for i in nd.inputs)
                         for o in nd.outputs if o in self._frames and o in used}
        except Exception:  # noqa: BLE001 - a partial pipeline or a test double: fall back to the output
            return output
        return ",".join(sorted(names)) or output

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any) -> None:
        from aietl_pipelines.hooks import pipeline_label

        self._pipeline_name = pipeline_label(run_params)
        self._pipeline = pipeline
        self._frames = set()
        self._started = {}
        self._t0 = time.perf_counter()

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> None:
        inputs = inputs or {}
        self._frames.update(k for k, v in inputs.items() if isinstance(v, pd.DataFrame))
        self._started[node.name] = (time.perf_counter(), _rows(inputs))

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        try:
            start, rows_in = self._started.pop(node.name, (None, None))
            seconds = time.perf_counter() - start if start is not None else 0.0
            outputs = outputs or {}
            if start is not None:
                metrics.observe_node(self._pipeline_name, node.name, seconds, rows_in, _rows(outputs))
            for name, value in outputs.items():
                recorder = OUTPUT_RECORDERS.get(name)
                if recorder is not None:
                    recorder(self._source_dataset(name), value, seconds)
        except Exception as exc:  # noqa: BLE001 - metrics never fail a run
            logger.warning("Metrics of node '%s' not recorded: %s", getattr(node, "name", node), exc)

    def _finish(self, success: bool) -> None:
        try:
            metrics.observe_pipeline(self._pipeline_name, time.perf_counter() - self._t0, success=success)
            metrics.export_metrics(self._pipeline_name)
        except Exception as exc:  # noqa: BLE001 - metrics never fail (or re-fail) a run
            logger.warning("Run metrics not exported: %s", exc)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._finish(success=True)

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        from aietl_pipelines.errors import AietlInputError

        self._finish(success=False)
        if isinstance(error, AietlInputError):
            logger.error("%s", error)
