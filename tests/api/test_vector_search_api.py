import pytest
from fastapi.testclient import TestClient

from aietl_pipelines.api.app import create_app


@pytest.mark.slow
def test_guide_requests_work_as_written():
    client = TestClient(create_app())
    assert client.post("/api/v1/vector-search/collections", json={"collection_name": "customers"}).status_code == 200
    r = client.post("/api/v1/vector-search/index", json={"collection_name": "customers", "record_id": "cust_001",
                    "text": "John Doe, 123 Main St, john@example.com", "metadata": {"source": "crm"}})
    assert r.status_code == 200, r.text
    client.post("/api/v1/vector-search/index", json={"collection_name": "customers", "record_id": "cust_002",
                "text": "Jane Dow, 9 Oak Avenue", "metadata": {"source": "web"}})
    dup = client.post("/api/v1/vector-search/duplicates", json={"collection_name": "customers",
                      "text": "Jon Doe, 123 Main Street, john@example.com", "threshold": 0.9}).json()
    assert [d["record_id"] for d in dup["duplicates"]] == ["cust_001"]
    found = client.post("/api/v1/vector-search/search", json={"collection_name": "customers", "query": "Oak Avenue",
                        "filters": {"source": "web"}, "limit": 5}).json()["results"]
    assert [f["record_id"] for f in found] == ["cust_002"]
    bad = client.post("/api/v1/vector-search/search", json={"collection_name": "nope", "query": "x"})
    assert bad.status_code == 422 and "Unknown collection" in bad.json()["detail"]
