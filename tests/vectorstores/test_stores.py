import numpy as np
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.vectorstores import get_vector_store
from aietl_pipelines.vectorstores.weaviate import build_filter as weaviate_filter
from aietl_pipelines.vectorstores.weaviate import collection_name


@pytest.mark.parametrize("backend", ["numpy", "qdrant_edge", "qdrant_local"])
def test_same_answers_on_every_embedded_backend(backend):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    store = get_vector_store(backend)
    store.create_collection("c", 8)
    store.upsert("c", [f"r{i}" for i in range(50)], vectors, [{"group": i % 3, "n": i} for i in range(50)])
    assert store.count("c") == 50
    hits = store.query("c", vectors[7], limit=3)
    assert hits[0].record_id == "r7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    filtered = store.query("c", vectors[7], limit=5, filters={"group": 1, "n": {"gte": 10}})
    assert filtered and all(h.payload["group"] == 1 and h.payload["n"] >= 10 for h in filtered)
    anyof = store.query("c", vectors[0], limit=50, filters={"group": [0, 2]})
    assert {h.payload["group"] for h in anyof} == {0, 2}
    with pytest.raises(AietlInputError, match="dimension 8"):
        store.upsert("c", ["x"], np.ones((1, 5)))
    with pytest.raises(AietlInputError, match="Unknown collection 'nope'"):
        store.query("nope", vectors[0])


def test_servers_need_urls_and_weaviate_filters_translate(monkeypatch):
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("WEAVIATE_URL", raising=False)
    with pytest.raises(AietlInputError, match="QDRANT_URL"):
        get_vector_store("qdrant")
    with pytest.raises(AietlInputError, match="WEAVIATE_URL"):
        get_vector_store("weaviate")
    with pytest.raises(AietlInputError, match="Unknown vector store backend"):
        get_vector_store("faiss")
    assert collection_name("customers") == "Customers"
    assert weaviate_filter(None) is None
    assert weaviate_filter({"source": "crm", "n": {"gte": 2}}) is not None
    with pytest.raises(AietlInputError, match="Qdrant at http://127.0.0.1:9 is unreachable"):
        get_vector_store("qdrant", url="http://127.0.0.1:9")
