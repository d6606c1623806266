"""The platform guide's example requests, verbatim (bodies as the guide writes them; where the guide writes
``[...]`` the lists are filled with concrete values), shared by the TestClient and the uvicorn tests."""

from __future__ import annotations

FULL_KEY, READ_KEY = "full-key-for-tests-0123456789", "read-key-for-tests-0123456789"

FEATURES = ["pipeline_features:avg_execution_time", "pipeline_features:success_rate",
            "pipeline_features:error_count"]

VECTOR_SEARCH = [
    ("POST", "/api/v1/vector-search/collections", {"name": "customer_records", "provider": "qdrant"}),
    ("POST", "/api/v1/vector-search/index", {
        "collection_name": "customer_records", "record_id": "cust_001",
        "text": "John Doe, 123 Main St, john@example.com", "metadata": {"source": "crm"}}),
    ("POST", "/api/v1/vector-search/duplicates", {
        "collection_name": "customer_records", "text": "Jon Doe, 123 Main Street, john@example.com",
        "threshold": 0.9}),
    ("POST", "/api/v1/vector-search/search", {
        "collection_name": "customer_records", "query": "John Doe Main Street", "filters": {"source": "crm"},
        "limit": 10}),
]

DRIFT = [
    ("POST", "/api/v1/drift-monitoring/detect", {
        "reference_data_path": "s3://bucket/training_data.parquet",
        "current_data_path": "s3://bucket/production_data.parquet",
        "target_column": "churn", "save_report": True}),
    ("GET", "/api/v1/drift-monitoring/summary?days=7", None),
    ("GET", "/api/v1/drift-monitoring/retraining-status", None),
]

FEATURE_STORE = [
    ("POST", "/api/v1/features/materialize", {"start_date": "2024-12-29T00:00:00", "end_date": "2025-01-03T00:00:00"}),
    ("POST", "/api/v1/features/online", {"features": FEATURES, "entity_rows": [{"pipeline_id": "123"}]}),
    ("POST", "/api/v1/features/historical", {
        "entity_df": {"pipeline_id": ["123", "456"],
                      "event_timestamp": ["2025-01-01T00:00:00", "2025-01-02T00:00:00"]},
        "features": FEATURES}),
]


def check_vector_search(responses: list) -> None:
    """What the guide's vector search requests must return."""
    created, indexed, dups, found = (r.json() for r in responses)
    assert created == {"collection_name": "customer_records", "dimension": 384, "provider": "qdrant"}
    assert indexed["indexed"] == 1 and indexed["record_id"] == "cust_001"
    assert [d["record_id"] for d in dups["duplicates"]] == ["cust_001"]
    assert [f["record_id"] for f in found["results"]] == ["cust_001"]
    assert found["results"][0]["metadata"]["source"] == "crm"


def check_drift(responses: list) -> None:
    report, summary, status = (r.json() for r in responses)
    assert report["alert_triggered"] is True and "churn" in report["drifted_columns"]
    assert report["report_path"].startswith("data/08_reporting/drift_reports/drift_report_")
    assert summary["days"] == 7 and summary["n_reports"] == 1 and summary["n_alerts"] == 1
    assert status["should_retrain"] is True and status["last_report_at"]


def check_features(responses: list) -> None:
    materialized, online, historical = (r.json() for r in responses)
    assert materialized["materialized"] and materialized["entities"] == 3 and materialized["rows"] > 0
    assert materialized["start_date"] == "2024-12-29T00:00:00+00:00"
    (row,) = online["features"]
    assert row["pipeline_id"] == "123" and row["success_rate"] is not None
    rows = historical["features"]
    assert [r["pipeline_id"] for r in rows] == ["123", "456"]
    assert all(r["avg_execution_time"] is not None for r in rows)
    assert rows[0]["event_timestamp"].startswith("2025-01-01T00:00:00")
