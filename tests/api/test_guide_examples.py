"""Every example request of the platform guide, sent verbatim through TestClient, and the guide's awaited
Python calls."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from aietl_pipelines.api.app import create_app
from tests.api.conftest import drift_frames
from tests.api.guide import (
    DRIFT,
    FEATURE_STORE,
    FEATURES,
    FULL_KEY,
    VECTOR_SEARCH,
    check_drift,
    check_features,
    check_vector_search,
)


def send(client: TestClient, requests: list) -> list:
    out = []
    for method, path, body in requests:
        response = client.request(method, path, json=body, headers={"X-API-Key": FULL_KEY})
        assert response.status_code == 200, (path, response.text)
        out.append(response)
    return out


@pytest.mark.slow
def test_vector_search_guide_requests(api_env):
    with TestClient(create_app()) as client:
        check_vector_search(send(client, VECTOR_SEARCH))


def test_drift_guide_requests_read_s3_through_the_aws_variables(s3_bucket, api_env):
    with TestClient(create_app()) as client:
        check_drift(send(client, DRIFT))
    reports = list((api_env / "data" / "08_reporting" / "drift_reports").glob("*.html"))
    assert len(reports) == 1


def test_feature_guide_requests(feature_repo):
    with TestClient(create_app()) as client:
        check_features(send(client, FEATURE_STORE))


def test_feature_store_python_guide_calls_are_awaitable(feature_repo):
    from aietl_pipelines.services import get_feature_store_service

    async def guide():
        feast_service = get_feature_store_service()
        done = await feast_service.materialize(pd.Timestamp("2024-12-29"), pd.Timestamp("2025-01-03"))
        online = await feast_service.get_pipeline_features(pipeline_ids=["123"], features=FEATURES)
        entity_df = pd.DataFrame({"pipeline_id": ["123", "456"],
                                  "event_timestamp": pd.to_datetime(["2025-01-01", "2025-01-02"])})  # naive = UTC
        training_df = await feast_service.get_historical_features(entity_df=entity_df, features=FEATURES)
        pushed = await feast_service.push_features(
            push_source_name="pipeline_realtime_push_source",
            df=pd.DataFrame({"pipeline_id": ["123"], "event_timestamp": [pd.Timestamp.now(tz="UTC")],
                             "current_cpu_usage": [0.7], "current_memory_usage": [0.5], "anomaly_detected": [0]}),
            to="online")
        realtime = await feast_service.get_pipeline_features(
            ["123"], ["pipeline_realtime_features:current_cpu_usage"])
        return done, online, training_df, pushed, realtime

    done, online, training_df, pushed, realtime = asyncio.run(guide())
    assert done["entities"] == 3 and done["rows"] > 0
    assert online["pipeline_id"].tolist() == ["123"] and online["success_rate"].notna().all()
    assert len(training_df) == 2 and training_df["avg_execution_time"].notna().all()
    assert pushed == 1 and realtime["current_cpu_usage"].tolist() == [0.7]


def test_drift_python_guide_calls_are_awaitable(api_env):
    from aietl_pipelines.services import get_drift_monitoring_service

    reference, current = drift_frames()

    async def guide():
        drift_service = get_drift_monitoring_service()
        report = await drift_service.detect_data_drift(reference_data=reference, current_data=current,
                                                       target_column="churn", save_report=True)
        should, reason = await drift_service.should_trigger_retraining(report)
        summary = await drift_service.generate_drift_summary(reference, current, "churn", ["tenure", "plan"])
        return report, should, reason, summary

    report, should, reason, summary = asyncio.run(guide())
    assert report["alert_triggered"] and should and reason
    assert report["report_path"].startswith(str(api_env))  # under AIETL_PROJECT_ROOT, not the cwd
    assert "retraining_recommendation" in summary


@pytest.mark.slow
def test_vector_search_python_guide_calls_are_awaitable(tmp_path):
    from aietl_pipelines.services import get_vector_search_service

    async def guide():
        vector_service = get_vector_search_service(provider="qdrant", path=str(tmp_path / "edge"))
        await vector_service.create_collection("customer_records")
        await vector_service.index_record(collection_name="customer_records", record_id="cust_001",
                                          text="John Doe, 123 Main St, john@example.com", metadata={"source": "crm"})
        await vector_service.batch_index("customer_records", [{"id": "cust_002", "text": "Jane Dow, 9 Oak Avenue"}],
                                         text_field="text", id_field="id")
        duplicates = await vector_service.find_duplicates(
            collection_name="customer_records", text="Jon Doe, 123 Main Street, john@example.com", threshold=0.90)
        results = await vector_service.search(collection_name="customer_records", query="Oak Avenue",
                                              filters=None, limit=5)
        # concurrent queries are embedded together (QueryBatcher): same answers as one at a time
        texts = ["Jon Doe, 123 Main Street", "Jane Dow, Oak Ave 9", "john@example.com", "Oak Avenue 9, Jane"]
        together = await asyncio.gather(*(vector_service.find_duplicates("customer_records", t) for t in texts))
        return duplicates, results, texts, together, vector_service

    duplicates, results, texts, together, service = asyncio.run(guide())
    assert [d["record_id"] for d in duplicates if d["is_duplicate"]] == ["cust_001"]
    assert results[0]["record_id"] == "cust_002"
    for text, batched in zip(texts, together, strict=True):
        alone = service.find_duplicates_sync("customer_records", text)
        assert [d["record_id"] for d in batched] == [d["record_id"] for d in alone]
        assert [d["cosine"] for d in batched] == pytest.approx([d["cosine"] for d in alone], abs=0.01)
