"""Keys, limits and the one error format."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from aietl_pipelines.api.app import create_app
from aietl_pipelines.api.errors import scrub
from aietl_pipelines.paths import project_root
from tests.api.guide import FULL_KEY, READ_KEY

ONLINE = {"features": ["pipeline_features:success_rate"], "entity_rows": [{"pipeline_id": "123"}]}
MATERIALIZE = {"start_date": "2024-12-29T00:00:00", "end_date": "2025-01-03T00:00:00"}


def _is_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code and body["detail"]
    return body


def test_keys_are_required_and_read_keys_cannot_write(feature_repo):
    client = TestClient(create_app())
    assert client.get("/health").status_code == 200  # open
    _is_error(client.post("/api/v1/features/online", json=ONLINE), 401, "unauthorized")
    _is_error(client.post("/api/v1/features/online", json=ONLINE, headers={"X-API-Key": "nope"}), 401,
              "unauthorized")
    assert client.post("/api/v1/features/online", json=ONLINE, headers={"X-API-Key": READ_KEY}).status_code == 200
    assert client.post("/api/v1/features/online", json=ONLINE,
                       headers={"Authorization": f"Bearer {READ_KEY}"}).status_code == 200
    body = _is_error(client.post("/api/v1/features/materialize", json=MATERIALIZE, headers={"X-API-Key": READ_KEY}),
                     403, "forbidden")
    assert "read-only" in body["detail"]
    ok = client.post("/api/v1/features/materialize", json=MATERIALIZE, headers={"Authorization": f"Bearer {FULL_KEY}"})
    assert ok.status_code == 200 and ok.json()["entities"] == 3
    # Prometheus scrapes /metrics with a bearer token
    _is_error(client.get("/metrics"), 401, "unauthorized")
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {READ_KEY}"})
    assert metrics.status_code == 200 and "# TYPE" in metrics.text


def test_open_mode_only_when_disabled_explicitly(feature_repo, monkeypatch):
    monkeypatch.delenv("AIETL_API_KEYS")
    monkeypatch.delenv("AIETL_API_READ_KEYS")
    body = _is_error(TestClient(create_app()).post("/api/v1/features/online", json=ONLINE), 401, "unauthorized")
    assert "AIETL_API_KEYS" in body["detail"]
    monkeypatch.setenv("AIETL_API_AUTH", "disabled")
    assert TestClient(create_app()).post("/api/v1/features/online", json=ONLINE).status_code == 200


def test_body_limit_answers_413_before_reading(api_env, monkeypatch):
    monkeypatch.setenv("AIETL_API_MAX_BODY_BYTES", "1000")
    client = TestClient(create_app())
    started = time.perf_counter()
    big = b'{"collection_name": "c", "query": "' + b"x" * 50_000_000 + b'"}'
    body = _is_error(client.post("/api/v1/vector-search/search", content=big,
                                 headers={"X-API-Key": FULL_KEY, "content-type": "application/json"}),
                     413, "payload_too_large")
    assert "1,000 bytes" in body["detail"] and time.perf_counter() - started < 5

    def chunks():  # no Content-Length: refused once past the limit
        for _ in range(100):
            yield b"x" * 100

    _is_error(client.post("/api/v1/vector-search/search", content=chunks(), headers={"X-API-Key": FULL_KEY}),
              413, "payload_too_large")


@pytest.mark.parametrize("body, fragment", [
    ({"collection_name": "c", "query": "x", "limit": 0}, "limit"),
    ({"collection_name": "c", "query": "x", "limit": 10**9}, "limit"),
    ({"collection_name": "a\x00b", "query": "x"}, "collection_name"),
    ({"collection_name": "c" * 300, "query": "x"}, "collection_name"),
    ({"collection_name": "c", "query": "x", "filters": {"n": None}}, "filters"),
    ({"collection_name": "c", "query": "x", "filters": {"n": {"gte": "a"}}}, "filters"),
    ({"collection_name": "c", "query": "x", "filters": {"n": {"gte": {"x": 1}}}}, "filters"),
    ({"collection_name": "c", "query": "x" * 10_001}, "query"),
])
def test_bad_search_bodies_are_422_in_the_one_format(api_env, body, fragment):
    client = TestClient(create_app())
    response = client.post("/api/v1/vector-search/search", json=body, headers={"X-API-Key": READ_KEY})
    assert fragment in _is_error(response, 422, "invalid_input")["detail"]


def test_bad_feature_and_drift_bodies(feature_repo, api_env):
    client = TestClient(create_app())
    headers = {"X-API-Key": FULL_KEY}

    def post(path, body):
        return client.post(path, json=body, headers=headers)

    assert "pipeline_ids" in _is_error(post("/api/v1/features/online", {"pipeline_ids": []}), 422,
                                       "invalid_input")["detail"]
    assert "Available" in _is_error(post("/api/v1/features/online", {"pipeline_ids": ["x"], "features": ["nope"]}),
                                    422, "invalid_input")["detail"]
    bad_time = {"entity_df": {"pipeline_id": ["123"], "event_timestamp": ["yesterday"]}}
    assert "ISO 8601" in _is_error(post("/api/v1/features/historical", bad_time), 422, "invalid_input")["detail"]
    unequal = {"entity_df": {"pipeline_id": ["1", "2"], "event_timestamp": ["2025-01-01"]}}
    assert "length" in _is_error(post("/api/v1/features/historical", unequal), 422, "invalid_input")["detail"]
    _is_error(post("/api/v1/features/materialize", {"start_date": "2025-02-01", "end_date": "2025-01-01"}), 422,
              "invalid_input")
    (api_env / "data" / "ok.csv").write_text("x\n1\n2\n")
    for path, fragment in (("/etc/passwd", "outside the allowed data roots"),
                           ("data/../../secret.parquet", "outside the allowed data roots"),
                           ("data/missing.parquet", "does not exist"),
                           ("s3://other-bucket/x.parquet", "outside the allowed data roots")):
        body = {"reference_data_path": path, "current_data_path": "data/ok.csv"}
        detail = _is_error(post("/api/v1/drift-monitoring/detect", body), 422, "invalid_input")["detail"]
        assert fragment in detail and str(api_env) not in detail
    huge = [{"x": 1e300}, {"x": -1e300}]
    _is_error(post("/api/v1/drift-monitoring/detect", {"reference_data": huge, "current_data": huge}), 422,
              "invalid_input")
    rng = np.random.default_rng(0)
    rows = [{"x": float(v)} for v in rng.normal(0, 1, 50)]
    assert "current_data" in _is_error(post("/api/v1/drift-monitoring/detect",
                                            {"reference_data": rows, "current_data": []}), 422,
                                       "invalid_input")["detail"]


def test_unknown_collection_does_not_reveal_other_collections(api_env, monkeypatch, tmp_path):
    monkeypatch.setenv("AIETL_VECTOR_PROVIDER", "numpy")
    client = TestClient(create_app())
    headers = {"X-API-Key": FULL_KEY}
    assert client.post("/api/v1/vector-search/collections", json={"name": "tenant_a_secret"},
                       headers=headers).status_code == 200
    response = client.post("/api/v1/vector-search/duplicates", json={"collection_name": "tenant_b", "text": "x"},
                           headers=headers)
    detail = _is_error(response, 422, "invalid_input")["detail"]
    assert "tenant_b" in detail and "tenant_a_secret" not in detail


def test_scrub_removes_server_folders():
    message = f"The offline source ({project_root()}/feast_repo/data/x.parquet) and /srv/secret/dir/file.csv"
    cleaned = scrub(message)
    assert str(project_root()) not in cleaned and "/srv/secret" not in cleaned and "file.csv" in cleaned


def test_openapi_documents_the_error_format_for_every_operation(api_env):
    schema = TestClient(create_app()).get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path == "/health":
                continue
            for status in ("401", "422"):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorBody"), (method, path, status)
    assert "without a zone it is UTC" in str(schema["components"]["schemas"]["EntityDf"])


def test_settings_from_the_environment(monkeypatch):
    from aietl_pipelines.api.config import ApiSettings
    from aietl_pipelines.errors import AietlInputError

    monkeypatch.setenv("AIETL_API_KEYS", " a, b ,")
    monkeypatch.setenv("AIETL_API_WARMUP", "features,model")
    monkeypatch.setenv("AIETL_DATA_ROOTS", "s3://bucket/prefix, /srv/data")
    settings = ApiSettings.from_env()
    assert settings.full_keys == ("a", "b") and settings.warm_up == ("features", "model")
    assert settings.data_roots == ("s3://bucket/prefix", "/srv/data")
    for name, value in (("AIETL_API_WARMUP", "everything"), ("AIETL_API_AUTH", "off"),
                        ("AIETL_API_MAX_BODY_BYTES", "lots")):
        monkeypatch.setenv(name, value)
        with pytest.raises(AietlInputError, match=name):
            ApiSettings.from_env()
        monkeypatch.delenv(name)


def test_drift_reports_and_history_are_kept_under_the_retention_policy(tmp_path):
    import pandas as pd

    from aietl_pipelines.services import get_drift_monitoring_service

    service = get_drift_monitoring_service(report_dir=tmp_path / "reports", history_path=tmp_path / "h.jsonl",
                                           max_reports=2, max_history=3)
    rng = np.random.default_rng(1)
    for shift in range(5):  # distinct data each time: each run is a new history window
        ref = pd.DataFrame({"x": rng.normal(0, 1, 200)})
        cur = pd.DataFrame({"x": rng.normal(shift, 1, 200)})
        report = service.detect_data_drift_sync(ref, cur, save_report=True)
    reports = sorted((tmp_path / "reports").glob("*.html"))
    assert len(reports) == 2 and str(reports[-1]) == report["report_path"]  # the newest is kept
    assert len(service.history.load()) == 3
