from fastapi.testclient import TestClient

from aietl_pipelines.api.app import create_app
from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.features.store import FeatureStoreService


def test_feature_endpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("AIETL_FEAST_REPO", str(tmp_path / "repo"))
    monkeypatch.setenv("AIETL_FEATURES_PATH", str(tmp_path / "features.parquet"))
    features = compute_pipeline_features(generate_etl_runs(n_pipelines=3, days=3, runs_per_day=6))
    service = FeatureStoreService(repo_path=tmp_path / "repo", features_path=tmp_path / "features.parquet")
    service.write_offline_source(features)
    service.apply()
    client = TestClient(create_app())
    start, end = features["event_timestamp"].min(), features["event_timestamp"].max()
    r = client.post("/api/v1/features/materialize", json={"start_date": start.isoformat(), "end_date": end.isoformat()})
    assert r.status_code == 200, r.text
    online = client.post("/api/v1/features/online", json={"pipeline_ids": ["pipeline_001"], "features": ["success_rate"]}).json()
    assert online["features"][0]["pipeline_id"] == "pipeline_001"
    hist = client.post("/api/v1/features/historical", json={
        "entity_rows": [{"pipeline_id": "pipeline_002", "event_timestamp": end.isoformat()}] * 2,
        "features": ["pipeline_features:avg_execution_time"]}).json()["features"]
    assert len(hist) == 2 and hist[0]["avg_execution_time"] is not None
    bad = client.post("/api/v1/features/online", json={"pipeline_ids": ["x"], "features": ["nope"]})
    assert bad.status_code == 422 and "Available" in bad.json()["detail"]
