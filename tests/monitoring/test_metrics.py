"""The metrics module: fixed names and label sets, bounded and escaped labels, 5xx counted, hooks, and a
Pushgateway that is absent, down or hanging costing one warning line and a bounded time."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kedro.pipeline import Pipeline, node

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.monitoring import REGISTRY, metrics
from aietl_pipelines.monitoring.http import RequestMetricsMiddleware
from aietl_pipelines.monitoring.instrument import drift_detection, vector_search_operation
from aietl_pipelines.monitoring.kedro_hooks import PrometheusHooks


def value(name: str, labels: dict | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def family(name: str):
    return next(f for f in REGISTRY.collect() if f.name == name)


def test_the_guides_metrics_have_their_exact_names_and_types():
    metrics.observe_vector_search("c", "search", 0.01)
    assert (family("vector_search").type, family("drift_detection_duration_seconds").type,
            family("feast_online_latency_ms").type) == ("counter", "histogram", "gauge")
    sample = next(s for s in family("vector_search").samples if s.name == "vector_search_total")
    assert set(sample.labels) == {"collection", "operation"}
    assert family("aietl_feast_online_latency_seconds").type == "histogram"


def test_labels_are_bounded_and_escaped():
    folder = metrics.LabelFolder(2)
    assert [folder("a"), folder("b"), folder("c"), folder("a")] == ["a", "b", "other", "a"]
    assert folder('x"}\n{evil="1') == "other"  # past the budget
    fresh = metrics.LabelFolder(5)
    assert fresh('cust"omers\n\\x') == "cust_omers_x"
    assert fresh("") == "other" and fresh(None) == "other"
    assert len(fresh("y" * 500)) == 64
    assert metrics.LabelFolder(0, ["GET"])("TRACE") == "other"
    assert fresh.known("never-seen") == "other" and fresh.known("cust_omers_x") == "cust_omers_x"


def test_many_collections_never_grow_the_label_set(monkeypatch):
    monkeypatch.setattr(metrics, "collection_label", metrics.LabelFolder(3))
    for i in range(50):
        metrics.observe_vector_search(f"tenant-{i}", "search", 0.001)
    seen = {s.labels["collection"] for s in family("vector_search").samples
            if s.name == "vector_search_total" and s.labels["collection"].startswith(("tenant-", "other"))}
    assert seen == {"tenant-0", "tenant-1", "tenant-2", "other"}


class FakeStore:
    @vector_search_operation("search")
    def search_sync(self, collection_name: str, query: str) -> list:
        if not query:
            raise AietlInputError("Text #0 is empty")
        if query == "boom":
            raise RuntimeError("store down")
        return []


def test_vector_search_calls_and_errors_are_counted_by_kind():
    store = FakeStore()
    labels = {"collection": "products", "operation": "search"}
    before = value("vector_search_total", labels)
    store.search_sync("products", "shoes")
    with pytest.raises(RuntimeError):
        store.search_sync("products", "boom")
    with pytest.raises(AietlInputError):
        store.search_sync(collection_name="products", query="")
    with pytest.raises(AietlInputError):  # an unknown collection name from a caller gets no label of its own
        store.search_sync("no-such-collection-xyz", "")
    assert value("vector_search_total", labels) - before == 3
    assert value("aietl_vector_search_errors_total", {**labels, "kind": "failure"}) >= 1
    assert value("aietl_vector_search_errors_total", {**labels, "kind": "bad_input"}) >= 1
    names = {s.labels["collection"] for s in family("vector_search").samples}
    assert "no-such-collection-xyz" not in names


def test_drift_detection_records_duration_share_and_columns():
    @drift_detection("unit_drift")
    def detect() -> dict:
        time.sleep(0.01)
        return {"drift_share": 0.5, "n_drifted": 2, "n_columns": 4, "alert_triggered": True}

    count = value("drift_detection_duration_seconds_count", {"dataset": "unit_drift"})
    detect()
    assert value("drift_detection_duration_seconds_count", {"dataset": "unit_drift"}) == count + 1
    assert value("drift_detection_duration_seconds_sum", {"dataset": "unit_drift"}) >= 0.01
    assert value("aietl_drift_share", {"dataset": "unit_drift"}) == 0.5
    assert value("aietl_drift_drifted_columns", {"dataset": "unit_drift"}) == 2
    assert value("aietl_drift_columns", {"dataset": "unit_drift"}) == 4
    assert value("aietl_drift_alert", {"dataset": "unit_drift"}) == 1


def test_online_read_latency_and_freshness():
    now = time.time()
    served = {"pipeline_id": ["a", "b", "zz"], "avg_execution_time": [1.0, 2.0, None],
              "avg_execution_time__ts": [int(now) - 120, int(now) - 60, 0]}
    out = metrics.record_online_read(served, ["pipeline_features:avg_execution_time"], 0.004)
    assert list(out) == ["pipeline_id", "avg_execution_time"]
    assert value("feast_online_latency_ms") == pytest.approx(4.0)
    assert 59 <= value("aietl_feature_freshness_seconds", {"feature_view": "pipeline_features"}) <= 70


def test_a_handler_that_raises_is_counted_as_500_under_its_route_template():
    app = FastAPI()
    app.add_middleware(RequestMetricsMiddleware)

    @app.get("/unit/boom/{item}")
    def boom(item: str) -> dict:
        raise RuntimeError("handler bug")

    @app.get("/unit/ok")
    def ok() -> dict:
        return {"ok": True}

    route = {"method": "GET", "route": "/unit/boom/{item}", "status": "500"}
    before = value("aietl_api_requests_total", route)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/unit/boom/1").status_code == 500
        assert client.get("/unit/boom/2").status_code == 500
        assert client.get("/unit/ok").status_code == 200
        for i in range(20):  # random URLs all land on one label
            assert client.get(f"/unit/random-{i}").status_code == 404
    assert value("aietl_api_requests_total", route) - before == 2
    assert value("aietl_api_requests_total", {"method": "GET", "route": "/unit/ok", "status": "200"}) >= 1
    assert value("aietl_api_requests_total", {"method": "GET", "route": "unmatched", "status": "404"}) >= 20
    assert value("aietl_api_request_duration_seconds_count", {"method": "GET", "route": "/unit/boom/{item}"}) >= 2


def _clusters(records: pd.DataFrame) -> pd.DataFrame:
    return records.assign(cluster_id=[0, 0, 1])


def test_hooks_record_node_rows_domain_metrics_and_the_run(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("PROMETHEUS_PUSHGATEWAY_URL", raising=False)
    monkeypatch.delenv("AIETL_METRICS_TEXTFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    pipeline = Pipeline([node(_clusters, "unit_customers", "dedupe_clusters", name="unit_cluster")])
    hooks = PrometheusHooks()
    records = pd.DataFrame({"record_id": ["1", "2", "3"]})
    hooks.before_pipeline_run({"pipeline_names": ["unit_dedupe"]}, pipeline)
    unit = pipeline.nodes[0]
    hooks.before_node_run(unit, {"unit_customers": records})
    hooks.after_node_run(unit, {"dedupe_clusters": _clusters(records)})
    hooks.after_node_run(unit, {"dedupe_clusters": object()})  # a surprise output never fails the run
    hooks.after_pipeline_run()
    labels = {"pipeline": "unit_dedupe", "node": "unit_cluster"}
    assert value("aietl_node_input_rows", labels) == 3 and value("aietl_node_output_rows", labels) == 3
    assert value("aietl_node_duration_seconds_count", labels) == 1
    assert value("aietl_dedupe_clusters", {"dataset": "unit_customers"}) == 2
    assert value("aietl_dedupe_duplicates_found", {"dataset": "unit_customers"}) == 1
    assert value("aietl_pipeline_last_success", {"pipeline": "unit_dedupe"}) == 1
    assert value("aietl_pipeline_last_run_timestamp_seconds", {"pipeline": "unit_dedupe"}) > time.time() - 60
    assert list(tmp_path.iterdir()) == []  # no Pushgateway configured: nothing written anywhere

    hooks.on_pipeline_error(RuntimeError("x"))
    assert value("aietl_pipeline_last_success", {"pipeline": "unit_dedupe"}) == 0
    assert value("aietl_pipeline_runs_total", {"pipeline": "unit_dedupe", "status": "failure"}) == 1


def test_retraining_decisions_and_promotions():
    before = value("aietl_model_promotions_total", {"model": "pipeline_failure_model"})
    skip = value("aietl_retraining_decisions_total", {"decision": "skip"})
    metrics.record_retraining(trained=True, promoted=True)
    metrics.record_retraining(trained=False, promoted=False)
    assert value("aietl_model_promotions_total", {"model": "pipeline_failure_model"}) == before + 1
    assert value("aietl_retraining_decisions_total", {"decision": "skip"}) == skip + 1


# --- Pushgateway faults ------------------------------------------------------------------------------------
def test_no_pushgateway_configured_means_no_push(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_PUSHGATEWAY_URL", raising=False)
    assert metrics.push_metrics("unit") is False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_down_pushgateway_costs_one_warning(monkeypatch, caplog):
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_URL", f"http://127.0.0.1:{_free_port()}")
    with caplog.at_level(logging.WARNING, logger="aietl_pipelines.monitoring.metrics"):
        start = time.perf_counter()
        assert metrics.export_metrics("unit") is False
    assert time.perf_counter() - start < 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Pushgateway" in warnings[0].getMessage()


def test_a_hanging_pushgateway_is_cut_off_by_the_timeout(monkeypatch, caplog):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # accepts the connection at the kernel level, never answers
    stop = threading.Event()
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_TIMEOUT", "0.5")
    try:
        with caplog.at_level(logging.WARNING, logger="aietl_pipelines.monitoring.metrics"):
            start = time.perf_counter()
            assert metrics.push_metrics("unit") is False
            elapsed = time.perf_counter() - start
    finally:
        stop.set()
        server.close()
    assert elapsed < 2.5
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def test_the_error_hook_never_raises_even_when_the_push_breaks(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_URL", "not a url at all")
    hooks = PrometheusHooks()
    hooks.before_pipeline_run({"pipeline_names": ["unit_broken"]}, Pipeline([]))
    hooks.on_pipeline_error(RuntimeError("the run failed"))  # no exception out of the hook
    assert value("aietl_pipeline_last_success", {"pipeline": "unit_broken"}) == 0


def _generate(params: dict) -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0]})


def _summary(frame: pd.DataFrame, history: list) -> dict:
    return {"drift_share": 0.75, "n_drifted": 3, "n_columns": 4, "alert_triggered": True}


@pytest.mark.parametrize("with_generator", [True, False])
def test_drift_metrics_are_labelled_with_the_input_dataset_in_partial_and_whole_runs(with_generator):
    nodes = [node(_summary, ["unit_runs", "drift_history"], "drift_summary", name="unit_summary")]
    if with_generator:  # a whole-project run generates the input too
        nodes.insert(0, node(_generate, "params:unit", "unit_runs", name="unit_generate"))
    pipeline = Pipeline(nodes)
    hooks = PrometheusHooks()
    hooks.before_pipeline_run({"pipeline_names": ["unit_drift_run"]}, pipeline)
    for unit in pipeline.nodes:
        inputs = {"unit_runs": _generate({}), "drift_history": []} if unit.name == "unit_summary" else {}
        hooks.before_node_run(unit, inputs)
        outputs = {"drift_summary": _summary(*inputs.values())} if inputs else {"unit_runs": _generate({})}
        hooks.after_node_run(unit, outputs)
    assert value("aietl_drift_share", {"dataset": "unit_runs"}) == 0.75
    assert value("aietl_drift_drifted_columns", {"dataset": "unit_runs"}) == 3
