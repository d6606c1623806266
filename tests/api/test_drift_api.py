import numpy as np
from fastapi.testclient import TestClient

from aietl_pipelines.api.app import create_app


def test_drift_endpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the service writes its history and reports under ./data
    client = TestClient(create_app())
    rng = np.random.default_rng(0)
    reference = [{"x": float(v), "kind": "a" if v > 0 else "b"} for v in rng.normal(0, 1, 300)]
    current = [{"x": float(v) + 2, "kind": "a"} for v in rng.normal(0, 1, 300)]
    response = client.post("/api/v1/drift-monitoring/detect", json={"reference_data": reference, "current_data": current})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["alert_triggered"] and set(body["drifted_columns"]) == {"x", "kind"}
    assert client.get("/api/v1/drift-monitoring/summary", params={"days": 7}).json()["n_reports"] == 1
    assert client.get("/api/v1/drift-monitoring/retraining-status").json()["should_retrain"] is True
    bad = client.post("/api/v1/drift-monitoring/detect", json={"reference_data": reference, "current_data": []})
    assert bad.status_code == 422 and "current data has no rows" in bad.json()["detail"]
