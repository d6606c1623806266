"""Prometheus metrics of the project, in one registry.

The guide's three metrics keep the guide's names (``vector_search_total``, ``drift_detection_duration_seconds``,
``feast_online_latency_ms``); everything else is prefixed ``aietl_``. Names and label sets are fixed here:
they never change with the data. Label values that come from users (collection names, pipeline names,
dataset names) go through a `LabelFolder`, which keeps at most a fixed number of distinct values per label
and folds the rest (and anything empty) into ``other``; values are cut to a safe character set and length.

Pipelines are batch jobs: a `kedro run` pushes its metrics to a Pushgateway when
``PROMETHEUS_PUSHGATEWAY_URL`` is set (see `push_metrics`), and writes nothing otherwise. The API exposes the
same registry on ``/metrics``.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import re
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.request import HTTPSHandler, Request, build_opener

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    push_to_gateway,
    write_to_textfile,
)

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()

#: Folded value for anything past a label's budget, empty, or not recognised.
OTHER = "other"
_SAFE = re.compile(r"[^A-Za-z0-9_.:/@{}-]+")
_MAX_LABEL_LENGTH = 64


class LabelFolder:
    """Bounded label values: the first `limit` distinct values are kept, later ones become ``other``.

    `allowed` (when given) is a closed set: any other value becomes ``other`` at once. Values are reduced to
    ``[A-Za-z0-9_.:/@{}-]`` (other runs of characters become ``_``; route templates keep their braces) and
    cut to 64 characters, so a label never carries quotes, newlines or control characters.
    """

    def __init__(self, limit: int, allowed: Iterable[str] | None = None) -> None:
        self.limit = limit
        self.allowed = frozenset(allowed) if allowed is not None else None
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> str:
        text = _SAFE.sub("_", str(value if value is not None else "")).strip("_")[:_MAX_LABEL_LENGTH]
        if not text:
            return OTHER
        if self.allowed is not None:
            return text if text in self.allowed else OTHER
        with self._lock:
            if text in self._seen:
                return text
            if len(self._seen) < self.limit:
                self._seen.add(text)
                return text
        return OTHER

    def known(self, value: Any) -> str:
        """`value` if it already has a label of its own, else ``other`` (never spends the budget)."""
        text = _SAFE.sub("_", str(value if value is not None else "")).strip("_")[:_MAX_LABEL_LENGTH]
        if self.allowed is not None:
            return text if text in self.allowed else OTHER
        with self._lock:
            return text if text in self._seen else OTHER

    def reset(self) -> None:
        """Forget the values seen (tests)."""
        with self._lock:
            self._seen.clear()


VECTOR_OPERATIONS = ("create_collection", "index", "batch_index", "search", "find_duplicates")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

collection_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_COLLECTIONS", "50")))
operation_label = LabelFolder(0, VECTOR_OPERATIONS)
pipeline_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_PIPELINES", "30")))
node_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_NODES", "200")))
dataset_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_DATASETS", "30")))
route_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_ROUTES", "100")))
method_label = LabelFolder(0, HTTP_METHODS)
view_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_FEATURE_VIEWS", "30")))
model_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_MODELS", "20")))
name_label = LabelFolder(int(os.environ.get("AIETL_METRICS_MAX_NAMES", "200")))

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# --- vector search (the guide's counter + errors + latency) ---------------------------------------------
VECTOR_SEARCH_TOTAL = Counter(
    "vector_search_total", "Vector search operations by collection and operation",
    ["collection", "operation"], registry=REGISTRY,
)
VECTOR_SEARCH_ERRORS = Counter(
    "aietl_vector_search_errors_total",
    "Vector search operations that raised, by kind: bad_input (the caller's) or failure (ours)",
    ["collection", "operation", "kind"], registry=REGISTRY,
)
ERROR_KINDS = ("bad_input", "failure")
VECTOR_SEARCH_SECONDS = Histogram(
    "aietl_vector_search_duration_seconds", "Latency of one vector search operation",
    ["operation"], registry=REGISTRY, buckets=_LATENCY_BUCKETS,
)

# --- drift --------------------------------------------------------------------------------------------
DRIFT_SECONDS = Histogram(
    "drift_detection_duration_seconds", "Time to compute the drift of one reference/current pair",
    ["dataset"], registry=REGISTRY, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
DRIFT_SHARE = Gauge("aietl_drift_share", "Share of monitored columns that drifted, last check",
                    ["dataset"], registry=REGISTRY)
DRIFT_DRIFTED = Gauge("aietl_drift_drifted_columns", "Number of drifted columns, last check",
                      ["dataset"], registry=REGISTRY)
DRIFT_COLUMNS = Gauge("aietl_drift_columns", "Number of monitored columns, last check",
                      ["dataset"], registry=REGISTRY)
DRIFT_ALERT = Gauge("aietl_drift_alert", "1 if the last check passed the configured alert threshold",
                    ["dataset"], registry=REGISTRY)
DRIFT_LAST = Gauge("aietl_drift_last_check_timestamp_seconds", "Unix time of the last drift check",
                   ["dataset"], registry=REGISTRY)

# --- feature store ------------------------------------------------------------------------------------
FEAST_LATENCY_MS = Gauge("feast_online_latency_ms", "Latency of the last online feature read, milliseconds",
                         registry=REGISTRY)
FEAST_LATENCY_SECONDS = Histogram(
    "aietl_feast_online_latency_seconds", "Latency of online feature reads", registry=REGISTRY,
    buckets=_LATENCY_BUCKETS,
)
FEATURE_FRESHNESS = Gauge(
    "aietl_feature_freshness_seconds", "Age of the newest value served online, at the last read",
    ["feature_view"], registry=REGISTRY,
)

# --- dedupe, retraining -------------------------------------------------------------------------------
DEDUPE_DUPLICATES = Gauge("aietl_dedupe_duplicates_found",
                          "Records merged into another record's cluster by the last dedupe run", ["dataset"],
                          registry=REGISTRY)
DEDUPE_CLUSTERS = Gauge("aietl_dedupe_clusters", "Clusters (golden records) of the last dedupe run",
                        ["dataset"], registry=REGISTRY)
DEDUPE_RECORDS = Gauge("aietl_dedupe_records", "Input records of the last dedupe run", ["dataset"],
                       registry=REGISTRY)
RETRAINING_DECISIONS = Counter("aietl_retraining_decisions_total", "Retraining decisions",
                               ["decision"], registry=REGISTRY)
MODEL_PROMOTIONS = Counter("aietl_model_promotions_total", "Candidate models promoted to champion",
                           ["model"], registry=REGISTRY)

# --- Kedro runs ---------------------------------------------------------------------------------------
NODE_SECONDS = Histogram(
    "aietl_node_duration_seconds", "Wall time of one Kedro node", ["pipeline", "node"], registry=REGISTRY,
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
NODE_ROWS_IN = Gauge("aietl_node_input_rows", "Rows of the DataFrame inputs of a node, last run",
                     ["pipeline", "node"], registry=REGISTRY)
NODE_ROWS_OUT = Gauge("aietl_node_output_rows", "Rows of the DataFrame outputs of a node, last run",
                      ["pipeline", "node"], registry=REGISTRY)
PIPELINE_SECONDS = Gauge("aietl_pipeline_duration_seconds", "Wall time of the last run", ["pipeline"],
                         registry=REGISTRY)
PIPELINE_SUCCESS = Gauge("aietl_pipeline_last_success", "1 if the last run succeeded, else 0", ["pipeline"],
                         registry=REGISTRY)
PIPELINE_LAST_RUN = Gauge("aietl_pipeline_last_run_timestamp_seconds", "Unix time the last run ended",
                          ["pipeline"], registry=REGISTRY)
PIPELINE_LAST_SUCCESS_TS = Gauge("aietl_pipeline_last_success_timestamp_seconds",
                                 "Unix time the last successful run ended", ["pipeline"], registry=REGISTRY)
PIPELINE_RUNS = Counter("aietl_pipeline_runs_total", "Pipeline runs by outcome", ["pipeline", "status"],
                        registry=REGISTRY)
VALUES = Gauge("aietl_metric", "Domain metrics of `*_metrics` node outputs (drift share, dedupe F1, AUC...)",
               ["name"], registry=REGISTRY)

# --- HTTP API -----------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("aietl_api_requests_total", "API requests by route and status",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_SECONDS = Histogram("aietl_api_request_duration_seconds", "API request latency by route",
                         ["method", "route"], registry=REGISTRY, buckets=_LATENCY_BUCKETS)


#: Label-less metrics show a 0 before they are set; a batch run pushes them only once it set them.
_UNLABELLED = {FEAST_LATENCY_MS._name, FEAST_LATENCY_SECONDS._name}
_TOUCHED: set[str] = set()


class _MeasuredInThisProcess:
    """A collector over REGISTRY yielding only families with samples this process actually measured."""

    def collect(self):
        for family in REGISTRY.collect():
            if family.samples and (family.name not in _UNLABELLED or family.name in _TOUCHED):
                yield family


MEASURED = _MeasuredInThisProcess()


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- recording functions (the only way the rest of the project touches the metrics) --------------------
def observe_vector_search(collection: str, operation: str, seconds: float, error: str | None = None) -> None:
    """Count one vector search operation, and its error when `error` is ``bad_input`` or ``failure``."""
    # a failed call may name a collection that does not exist: it gets a label only if one exists already
    name = collection_label.known(collection) if error else collection_label(collection)
    labels = {"collection": name, "operation": operation_label(operation)}
    VECTOR_SEARCH_TOTAL.labels(**labels).inc()
    if error:
        VECTOR_SEARCH_ERRORS.labels(**labels, kind=error if error in ERROR_KINDS else "failure").inc()
    VECTOR_SEARCH_SECONDS.labels(operation=labels["operation"]).observe(max(seconds, 0.0))


def observe_drift_duration(dataset: str, seconds: float) -> None:
    """Time spent computing the drift of one dataset."""
    DRIFT_SECONDS.labels(dataset=dataset_label(dataset)).observe(max(seconds, 0.0))


def record_drift(dataset: str, summary: Mapping[str, Any]) -> None:
    """Drift share, drifted/monitored column counts and alert flag of a drift summary dict."""
    label = dataset_label(dataset)
    share = _finite(summary.get("drift_share"))
    if share is not None:
        DRIFT_SHARE.labels(dataset=label).set(share)
    drifted = summary.get("n_drifted", summary.get("drifted_columns"))
    if isinstance(drifted, list | tuple):
        drifted = len(drifted)
    if _finite(drifted) is not None:
        DRIFT_DRIFTED.labels(dataset=label).set(float(drifted))
    if _finite(summary.get("n_columns")) is not None:
        DRIFT_COLUMNS.labels(dataset=label).set(float(summary["n_columns"]))
    DRIFT_ALERT.labels(dataset=label).set(1.0 if summary.get("alert_triggered") else 0.0)
    DRIFT_LAST.labels(dataset=label).set(time.time())


def record_online_read(values: Mapping[str, list], refs: Iterable[str], seconds: float) -> dict[str, list]:
    """Record one online read from Feast's ``to_dict(include_event_timestamps=True)``; return it without the
    ``<feature>__ts`` columns. Freshness per feature view = now - the newest event time served (0 = missing)."""
    view_of = {ref.split(":")[-1]: ref.split(":")[0] for ref in refs if ":" in ref}
    newest: dict[str, float] = {}
    for key, stamps in values.items():
        if key.endswith("__ts"):
            feature = key[: -len("__ts")]
            view = view_of.get(feature, view_of.get(feature.split("__")[-1], OTHER))
            served = [float(t) for t in stamps if t]
            if served:
                newest[view] = max(newest.get(view, 0.0), max(served))
    _TOUCHED.update(_UNLABELLED)
    FEAST_LATENCY_MS.set(max(seconds, 0.0) * 1000.0)
    FEAST_LATENCY_SECONDS.observe(max(seconds, 0.0))
    for view, stamp in newest.items():
        FEATURE_FRESHNESS.labels(feature_view=view_label(view)).set(max(time.time() - stamp, 0.0))
    return {k: v for k, v in values.items() if not k.endswith("__ts")}


def record_dedupe(dataset: str, records: int, clusters: int) -> None:
    """Duplicates found (records - clusters) and cluster count of a dedupe run over `dataset`."""
    label = dataset_label(dataset)
    DEDUPE_RECORDS.labels(dataset=label).set(records)
    DEDUPE_CLUSTERS.labels(dataset=label).set(clusters)
    DEDUPE_DUPLICATES.labels(dataset=label).set(max(records - clusters, 0))


def record_retraining(trained: bool, promoted: bool, model: str = "pipeline_failure_model") -> None:
    """One retraining decision (``retrain`` or ``skip``) and, when it happened, one promotion."""
    RETRAINING_DECISIONS.labels(decision="retrain" if trained else "skip").inc()
    if promoted:
        MODEL_PROMOTIONS.labels(model=model_label(model)).inc()


def observe_node(pipeline: str, node: str, seconds: float, rows_in: int | None = None,
                 rows_out: int | None = None) -> None:
    """Duration of one node and the rows of its DataFrame inputs/outputs (when it has any)."""
    labels = {"pipeline": pipeline_label(pipeline), "node": node_label(node)}
    NODE_SECONDS.labels(**labels).observe(max(seconds, 0.0))
    if rows_in is not None:
        NODE_ROWS_IN.labels(**labels).set(rows_in)
    if rows_out is not None:
        NODE_ROWS_OUT.labels(**labels).set(rows_out)


def observe_pipeline(pipeline: str, seconds: float, success: bool) -> None:
    """Duration, outcome and end time of one pipeline run."""
    label = pipeline_label(pipeline)
    now = time.time()
    PIPELINE_SECONDS.labels(pipeline=label).set(seconds)
    PIPELINE_SUCCESS.labels(pipeline=label).set(1.0 if success else 0.0)
    PIPELINE_LAST_RUN.labels(pipeline=label).set(now)
    if success:
        PIPELINE_LAST_SUCCESS_TS.labels(pipeline=label).set(now)
    PIPELINE_RUNS.labels(pipeline=label, status="success" if success else "failure").inc()


def set_gauge(name: str, value: float) -> None:
    """Set a domain metric, e.g. ``set_gauge("drift_metrics.drift_share", 0.25)``."""
    VALUES.labels(name=name_label(name)).set(float(value))


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP request: count by method/route/status, latency by method/route."""
    m, r = method_label(method.upper()), route_label(route)
    HTTP_REQUESTS.labels(method=m, route=r, status=str(int(status))).inc()
    HTTP_SECONDS.labels(method=m, route=r).observe(max(seconds, 0.0))


# --- pushing -------------------------------------------------------------------------------------------
def _push_handler(username: str | None, password: str | None, cafile: str | None):
    """A prometheus_client push handler with optional basic auth and a CA file for TLS."""

    def handler(url: str, method: str, timeout: float | None, headers: list, data: bytes):
        def handle() -> None:
            request = Request(url, data=data, method=method)
            for key, value in headers:
                request.add_header(key, value)
            if username is not None and password is not None:
                token = base64.b64encode(f"{username}:{password}".encode()).decode()
                request.add_header("Authorization", f"Basic {token}")
            context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
            response = build_opener(HTTPSHandler(context=context)).open(request, timeout=timeout)
            if response.code >= 400:
                raise OSError(f"error talking to the Pushgateway: {response.code} {response.msg}")

        return handle

    return handler


def push_metrics(pipeline: str, registry: Any = MEASURED) -> bool:
    """Push the registry to ``PROMETHEUS_PUSHGATEWAY_URL`` (job ``aietl_pipelines``, grouped by pipeline).

    Nothing happens when the variable is unset. Optional: ``PROMETHEUS_PUSHGATEWAY_USERNAME`` /
    ``PROMETHEUS_PUSHGATEWAY_PASSWORD`` (basic auth), ``PROMETHEUS_PUSHGATEWAY_CA_FILE`` (TLS with a private
    CA), ``PROMETHEUS_PUSHGATEWAY_TIMEOUT`` (seconds, default 3). A Pushgateway that is down, slow or refuses
    the push costs one warning line: the run never fails or hangs because of it. Returns True when pushed.
    """
    gateway = os.environ.get("PROMETHEUS_PUSHGATEWAY_URL", "").strip()
    if not gateway:
        return False
    timeout = float(os.environ.get("PROMETHEUS_PUSHGATEWAY_TIMEOUT", "3"))
    handler = _push_handler(os.environ.get("PROMETHEUS_PUSHGATEWAY_USERNAME"),
                            os.environ.get("PROMETHEUS_PUSHGATEWAY_PASSWORD"),
                            os.environ.get("PROMETHEUS_PUSHGATEWAY_CA_FILE") or None)
    failure: list[BaseException] = []

    def push() -> None:
        try:
            push_to_gateway(gateway, job="aietl_pipelines", registry=registry,
                            grouping_key={"pipeline": pipeline_label(pipeline)}, timeout=timeout,
                            handler=handler)
        except Exception as exc:  # noqa: BLE001 - any push failure is one warning, never a failed run
            failure.append(exc)

    # a thread bounds the whole push (DNS, connect, TLS, a server that trickles), not only each socket call
    worker = threading.Thread(target=push, name="aietl-pushgateway", daemon=True)
    worker.start()
    worker.join(2 * timeout + 1)
    if worker.is_alive():
        failure.append(TimeoutError(f"no answer within {2 * timeout + 1:.0f} s"))
    if failure:
        logger.warning("Metrics not pushed to the Pushgateway at %s: %s (the run itself is unaffected)",
                       gateway, failure[0])
        return False
    return True


def export_metrics(pipeline: str = "__default__", textfile: str | Path | None = None) -> bool:
    """End of a batch run: push to the Pushgateway when configured; write a textfile only when asked.

    `textfile` (or ``AIETL_METRICS_TEXTFILE``) writes the exposition text for node_exporter's textfile
    collector; by default nothing is written.
    """
    textfile = textfile or os.environ.get("AIETL_METRICS_TEXTFILE") or None
    if textfile:
        try:
            Path(textfile).parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(textfile), REGISTRY)
        except OSError as exc:
            logger.warning("Metrics not written to %s: %s", textfile, exc)
    return push_metrics(pipeline)
