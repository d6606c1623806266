"""The guide's production set-up: Redis online store + PostgreSQL SQL registry (CI machines run both)."""

import uuid

import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.features.definitions import PUSH_SOURCE
from aietl_pipelines.features.store import FeatureStoreService


@pytest.mark.services
def test_redis_and_postgres_round_trip(tmp_path, redis_url, postgres_dsn):
    project = f"aietl_test_{uuid.uuid4().hex[:8]}"
    registry = postgres_dsn.replace("postgresql://", "postgresql+psycopg://")
    service = FeatureStoreService(repo_path=tmp_path, config="server", redis_url="127.0.0.1:6379",
                                  registry_url=registry, project=project)
    features = compute_pipeline_features(generate_etl_runs(n_pipelines=3, days=3, runs_per_day=6))
    service.write_offline_source(features)
    service.apply()
    try:
        end = features["event_timestamp"].max() + pd.Timedelta(seconds=1)
        service.materialize(features["event_timestamp"].min().to_pydatetime(), end.to_pydatetime())
        online = service.get_pipeline_features(["pipeline_002"], ["avg_execution_time"])
        last = features[features["pipeline_id"] == "pipeline_002"].iloc[-1]
        assert online["avg_execution_time"].iloc[0] == pytest.approx(last["avg_execution_time"])
        now = pd.Timestamp.now(tz="UTC")
        service.push_features(PUSH_SOURCE, pd.DataFrame({
            "pipeline_id": ["pipeline_002"], "event_timestamp": [now], "current_cpu_usage": [77.0],
            "current_memory_usage": [1.0], "anomaly_detected": [0]}))
        pushed = service.get_pipeline_features(["pipeline_002"], ["pipeline_realtime_features:current_cpu_usage"])
        assert pushed["current_cpu_usage"].iloc[0] == 77.0
        assert {fv.name for fv in service.store.list_feature_views()} >= {"pipeline_features"}
    finally:
        service.store.teardown()
