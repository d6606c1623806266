import numpy as np
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.vectorstores import get_vector_store
from aietl_pipelines.vectorstores.weaviate import build_filter as weaviate_filter
from aietl_pipelines.vectorstores.weaviate import collection_name


def _round_trip(store, name="c"):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    store.create_collection(name, 8, recreate=True)
    store.upsert(name, [f"r{i}" for i in range(50)], vectors, [{"group": i % 3, "n": i} for i in range(50)])
    assert store.count(name) == 50
    hits = store.query(name, vectors[7], limit=3)
    assert hits[0].record_id == "r7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    filtered = store.query(name, vectors[7], limit=5, filters={"group": 1, "n": {"gte": 10}})
    assert filtered and all(h.payload["group"] == 1 and h.payload["n"] >= 10 for h in filtered)
    anyof = store.query(name, vectors[0], limit=50, filters={"group": [0, 2]})
    assert {h.payload["group"] for h in anyof} == {0, 2}
    batch = store.query_batch(name, vectors[:4], limit=1)
    assert [b[0].record_id for b in batch] == ["r0", "r1", "r2", "r3"]
    with pytest.raises(AietlInputError, match="dimension 8"):
        store.upsert(name, ["x"], np.ones((1, 5)))
    with pytest.raises(AietlInputError, match="Unknown collection 'nope'"):
        store.query("nope", vectors[0])
    store.delete_collection(name)
    assert not store.has_collection(name)


@pytest.mark.parametrize("backend", ["numpy", "qdrant_edge", "qdrant_local"])
def test_same_answers_on_every_embedded_backend(backend):
    _round_trip(get_vector_store(backend))


@pytest.mark.parametrize(("backend", "variable"), [("qdrant", "QDRANT_URL"), ("weaviate", "WEAVIATE_URL")])
def test_same_answers_on_a_server_when_one_is_configured(backend, variable):
    import os

    if not os.environ.get(variable):
        pytest.skip(f"{variable} is not set: no {backend} server to test against (docker compose up {backend})")
    _round_trip(get_vector_store(backend), name="aietl_test_round_trip")


def test_edge_store_persists_and_builds_its_index(tmp_path):
    store = get_vector_store("qdrant_edge", path=str(tmp_path))
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    store.create_collection("people", 16)
    store.upsert("people", [f"p{i}" for i in range(300)], vectors, [{"i": i} for i in range(300)])
    store.optimize("people")
    store.close()
    reopened = get_vector_store("qdrant_edge", path=str(tmp_path))
    assert reopened.collections() == ["people"] and reopened.count("people") == 300
    assert reopened.query("people", vectors[42], limit=1)[0].record_id == "p42"


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


def test_edge_upsert_builds_the_hnsw_index_past_the_threshold(monkeypatch):
    from aietl_pipelines.vectorstores import edge

    monkeypatch.setattr(edge, "INDEXING_THRESHOLD_KB", 10)  # 160 points of 16 floats
    store = edge.EdgeVectorStore()
    vectors = np.random.default_rng(2).normal(size=(300, 16)).astype(np.float32)
    store.create_collection("c", 16)
    store.upsert("c", [f"p{i}" for i in range(100)], vectors[:100])
    assert store._shard("c").info().indexed_vectors_count == 0  # 6 KB: searched exactly
    store.upsert("c", [f"p{i}" for i in range(100, 300)], vectors[100:])
    assert store._shard("c").info().indexed_vectors_count == 300
    assert store.query("c", vectors[250], limit=1)[0].record_id == "p250"
