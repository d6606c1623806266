"""The vector search service's embeddings (``embedding="pieces"`` and ``"text"``): pieces remembered, identifiers
hashed, the API setting, and that a collection answers what each embedding should find."""

from __future__ import annotations

import numpy as np
import pytest

from aietl_pipelines.api.config import ApiSettings
from aietl_pipelines.api.state import ServiceRegistry
from aietl_pipelines.embeddings import EMBEDDING_DIM, ValueVectorMemo, embed_texts, hashed_vectors
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.services.vector_search import VectorSearchService, text_pieces


def test_text_pieces_are_the_pipeline_pieces_then_the_identifiers():
    pieces = text_pieces("Dariel Carter - +1 502 487 6381 - 3 Pine Dr, Reno, NV 80826 - DANIEL_CARTER6@POST.NET - "
                         "born 30 Apr 1978")
    words = [p for p in pieces if not p.startswith("\x1f")]
    ids = [p[1:] for p in pieces if p.startswith("\x1f")]
    assert "Dariel Carter" in words and "Pine Dr" in words and "Reno" in words
    assert not any(ch.isdigit() for w in words for ch in w)  # numbers are read exactly, not embedded
    assert ids == ["email:daniel_carter6@post.net", "phone:024876381", "date:1978-04-30", "number:3", "number:80826"]
    assert text_pieces("Ann\x1fLee, a@x.org, 12") == ["Ann Lee", "\x1femail:a@x.org", "\x1fnumber:12"]  # the marker is not text
    # the same phone and date written differently give the same identifiers
    other = text_pieces("Daniel Carter; (502) 487-6381; 1978-04-30")
    assert "\x1fphone:024876381" in other and "\x1fdate:1978-04-30" in other


def test_hashed_vectors_are_fixed_unit_and_nearly_orthogonal():
    a = hashed_vectors(["email:a@x.org", "phone:5550100", "email:a@x.org"])
    assert a.shape == (3, EMBEDDING_DIM) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(a[0], a[2]) and np.array_equal(a[0], hashed_vectors(["email:a@x.org"])[0])
    many = hashed_vectors([f"phone:{i}" for i in range(200)])
    off = many @ many.T - np.eye(200)
    assert np.abs(off).max() < 0.3  # random directions in 384 dimensions
    model = embed_texts(["john smith", "springfield", "main street"])
    assert np.abs(model @ many.T).max() < 0.3


def test_the_memo_embeds_each_piece_once_and_keeps_at_most_its_size():
    calls: list[list[str]] = []

    def embed_many(values):
        calls.append(list(values))
        return hashed_vectors(values)

    memo = ValueVectorMemo(max_items=3)
    first = memo.embed(["a", "b", "a"], embed_many)
    assert calls == [["a", "b"]] and np.array_equal(first[0], first[2])
    memo.embed(["b", "c"], embed_many)
    assert calls[-1] == ["c"] and (memo.hits, memo.misses) == (2, 3)
    memo.embed(["d"], embed_many)  # evicts the least recently used: "a"
    assert len(memo) == 3
    memo.embed(["a"], embed_many)
    assert calls[-1] == ["a"]


def test_a_query_of_known_pieces_needs_no_forward_pass(monkeypatch):
    import aietl_pipelines.services.vector_search as vs

    service = VectorSearchService("numpy")
    service.create_collection_sync("people")
    service.batch_index_sync("people", [
        {"id": "1", "text": "Jessica Jones | jj81@inbox.org | 7923 Meadow Ave, Springfield, IL 26565"},
        {"id": "2", "text": "Thomas Rogers, 5975 Church Boulevard, Richmond, VA 18473, (564) 946-6367"}])
    texts: list[list[str]] = []

    def counting(batch, device="auto"):
        texts.append(list(batch))
        return hashed_vectors(batch)

    monkeypatch.setattr(vs, "embed_queries", counting)
    # a new record: other numbers and e-mail, the same name, street and city
    found = service.find_duplicates_sync("people", "Jessica Jones; 12 Meadow Ave; Springfield; IL; jessica.j@mail.com")
    assert texts == [] and found[0]["record_id"] == "1"
    service.find_duplicates_sync("people", "Jessica Jonse, Meadow Ave, Springfield")  # a typo: one new piece
    assert texts == [["Jessica Jonse"]]


def test_a_shared_identifier_brings_records_nearer_with_pieces_only():
    records = [{"id": "a", "text": "Deborah Robinson, Reno, NV, (960) 949-7085, born 1962-03-09"},
               {"id": "b", "text": "Debra Roberts, Reno, NV, 775-555-0199, born 1971-11-30"}]
    query = "D. Robinsen | 960-949-7085 | Reno"
    for embedding in ("pieces", "text"):
        service = VectorSearchService("numpy", embedding=embedding)
        service.create_collection_sync("c")
        service.batch_index_sync("c", records)
        hits = service.search_sync("c", query, limit=2)
        assert hits[0]["record_id"] == "a", embedding
    service = VectorSearchService("numpy", embedding="pieces")
    service.create_collection_sync("c")
    service.batch_index_sync("c", records)
    with_phone = service.search_sync("c", query, limit=2)
    without = service.search_sync("c", "D. Robinsen | Reno", limit=2)
    gap = lambda hits: hits[0]["score"] - hits[1]["score"]  # noqa: E731
    assert gap(with_phone) > gap(without)


def test_the_embedding_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("AIETL_VECTOR_EMBEDDING", raising=False)
    assert ApiSettings.from_env().vector_embedding == "pieces"
    monkeypatch.setenv("AIETL_VECTOR_EMBEDDING", "TEXT")
    settings = ApiSettings.from_env()
    assert settings.vector_embedding == "text"
    assert ServiceRegistry(ApiSettings(vector_provider="numpy", vector_embedding="text")).vector().embedding == "text"
    monkeypatch.setenv("AIETL_VECTOR_EMBEDDING", "words")
    with pytest.raises(AietlInputError, match="AIETL_VECTOR_EMBEDDING='words': use one of pieces, text"):
        ApiSettings.from_env()
    with pytest.raises(AietlInputError, match="embedding='words'"):
        VectorSearchService("numpy", embedding="words")


def test_a_batch_gives_each_record_the_vector_it_gets_alone():
    """Regression: identifiers of several records in one batch stay apart (a NUL marker made pandas read every
    identifier as the same empty string, and all records took the first record's e-mail)."""
    texts = ["Samantha Mitchell, 1660 Forest Lane, Raleigh, NC 28537, samantha_mitchell@inbox.org",
             "Nancy Moreno | 3008 Lincoln Terrace, Raleigh, NC 64811 | 555-010-0199",
             "Tom Brown, Reno, NV, tb@x.org, born 1970-01-02"]
    together = VectorSearchService("numpy")._embed(texts)
    alone = np.vstack([VectorSearchService("numpy")._embed([t]) for t in texts])
    assert np.allclose(np.sum(together * alone, axis=1), 1.0, atol=1e-4)


def test_a_new_process_reads_the_indexed_pieces_from_the_disk_cache(tmp_path, monkeypatch):
    """The API's query path: pieces indexed by another process (here another service) come from the embedding
    cache, not the model; the others from the query encoder, and they are not written by the query path."""
    import aietl_pipelines.services.vector_search as vs
    from aietl_pipelines.embeddings import EmbeddingCache, uses_bf16

    indexer = VectorSearchService("numpy", cache_dir=str(tmp_path))
    indexer.create_collection_sync("c")
    indexer.batch_index_sync("c", [{"id": "1", "text": "Jessica Jones, Meadow Ave, Springfield, IL"}])
    stored = len(EmbeddingCache(tmp_path, bf16=uses_bf16()))
    assert stored == 4
    asked: list[list[str]] = []

    def counting(batch, device="auto"):
        asked.append(list(batch))
        return hashed_vectors(batch)

    monkeypatch.setattr(vs, "embed_queries", counting)
    server = VectorSearchService("numpy", cache_dir=str(tmp_path))
    vectors = server.embed_query_texts(["Jessica Jones; Springfield; Meadow Ave; Chicago"])
    assert asked == [["Chicago"]] and len(EmbeddingCache(tmp_path, bf16=uses_bf16())) == stored
    expected = indexer.embed_query_texts(["Jessica Jones; Springfield; Meadow Ave"])
    assert float(vectors[0] @ expected[0]) > 0.8


def test_a_collection_is_queried_with_the_embedding_it_was_indexed_with():
    """The embedding is kept with each record: another one on the query side is a clear error, not poor answers."""
    writer = VectorSearchService("numpy", embedding="text")
    writer.create_collection_sync("people")
    writer.batch_index_sync("people", [{"id": "1", "text": "Ann Lee, 1 Main St, Boston"}])
    assert "aietl_embedding" not in writer.search_sync("people", "Ann Lee Boston")[0]["metadata"]
    assert "aietl_embedding" not in writer.find_duplicates_sync("people", "Ann Lee, Boston")[0]["metadata"]
    reader = VectorSearchService("numpy", embedding="pieces")
    reader.store = writer.store  # the same collection, read by a service that embeds pieces
    with pytest.raises(AietlInputError, match="indexed with embedding 'text' and is queried with 'pieces': set "
                                              "AIETL_VECTOR_EMBEDDING=text"):
        reader.find_duplicates_sync("people", "Ann Lee, Boston")
    with pytest.raises(AietlInputError, match="index the collection again"):
        reader.search_sync("people", "Ann Lee")
    other = VectorSearchService("numpy", embedding="pieces")
    other.store.create_collection("old", EMBEDDING_DIM)  # records written without the key (before it existed)
    other.store.upsert("old", ["2"], embed_texts(["Bob Ray"]), [{"text": "Bob Ray"}])
    assert other.search_sync("old", "Bob Ray", limit=1)[0]["record_id"] == "2"
