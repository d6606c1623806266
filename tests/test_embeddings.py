import numpy as np
import pytest

from aietl_pipelines import embeddings
from aietl_pipelines.errors import AietlInputError


@pytest.mark.slow
def test_cache_never_embeds_the_same_text_twice(tmp_path, monkeypatch):
    encoded: list[str] = []
    real_encode = embeddings._encode

    def counting_encode(texts, batch_size, show_progress):
        encoded.extend(texts)
        return real_encode(texts, batch_size, show_progress)

    monkeypatch.setattr(embeddings, "_encode", counting_encode)
    first = embeddings.embed_texts(["John Doe, 123 Main St", "Jon Doe, 123 Main Street", "John Doe, 123 Main St"], cache_dir=tmp_path)
    assert encoded == ["John Doe, 123 Main St", "Jon Doe, 123 Main Street"]
    assert first.shape == (3, embeddings.EMBEDDING_DIM) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first[0], first[2])

    second = embeddings.embed_texts(["Jon Doe, 123 Main Street", "Jane Dow, 9 Oak Avenue"], cache_dir=tmp_path)
    assert encoded[2:] == ["Jane Dow, 9 Oak Avenue"]  # only the new text was embedded
    assert np.allclose(second[0], first[1], atol=1e-6)
    uncached = embeddings.embed_texts(["Jane Dow, 9 Oak Avenue"])
    assert np.allclose(uncached[0], second[1], atol=1e-5)
    assert float(first[0] @ first[1]) > float(first[0] @ second[1])  # near-duplicates are closer


def test_non_string_text_is_a_clear_error(tmp_path):
    with pytest.raises(AietlInputError, match="Text #1 .* not a string"):
        embeddings.embed_texts(["ok", None], cache_dir=tmp_path)


def test_empty_input_gives_empty_matrix(tmp_path):
    assert embeddings.embed_texts([], cache_dir=tmp_path).shape == (0, embeddings.EMBEDDING_DIM)


def test_query_vectors_agree_with_indexed_vectors():
    from aietl_pipelines.embeddings import embed_query, embed_texts

    texts = ["John Doe, 123 Main St, john@example.com", "Katherine Henry 1590 Union Place Reno", "jane dow 9 oak avenue"]
    indexed = embed_texts(texts)
    for text, vector in zip(texts, indexed, strict=True):
        query = embed_query(text)
        assert query.dtype == np.float32 and query.shape == (384,)
        assert float(query @ vector) > 0.995
    with pytest.raises(AietlInputError):
        embed_query(None)
