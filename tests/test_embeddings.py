import numpy as np
import pytest

from aietl_pipelines import embeddings
from aietl_pipelines.errors import AietlInputError


@pytest.mark.slow
def test_cache_never_embeds_the_same_text_twice(tmp_path, monkeypatch):
    encoded: list[str] = []
    real_encode = embeddings._encode

    def counting_encode(texts, batch_size, show_progress, device="auto", precision="auto"):
        encoded.extend(texts)
        return real_encode(texts, batch_size, show_progress, device, precision)

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


def test_device_choice_follows_what_torch_sees():
    import torch

    from aietl_pipelines.embeddings import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(AietlInputError, match="Device 'tpu' is not one of auto, cpu, cuda, mps"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(AietlInputError, match="sees no CUDA device: install the CUDA build"):
            resolve_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(AietlInputError, match="no Apple MPS device"):
            resolve_device("mps")


def test_auto_picks_cuda_when_torch_reports_a_device(monkeypatch):
    """The choice logic on torch's own API: only `torch.cuda.is_available` is made to answer yes."""
    import torch

    from aietl_pipelines.embeddings import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_cpu_model_and_knn_run_on_the_cpu():
    from aietl_pipelines.dedupe.candidates import knn_search
    from aietl_pipelines.embeddings import embed_texts, get_model, get_query_model

    assert get_model("cpu").device.type == "cpu" and next(get_query_model("cpu").parameters()).device.type == "cpu"
    vectors = embed_texts(["John Doe", "Jon Doe", "Jane Dow"], device="cpu")
    found = knn_search(vectors, vectors, 1, self_offset=0, device="cpu")
    assert found.indices[:, 0].tolist()[:2] == [1, 0]


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device (CPU build of torch or no GPU)")
def test_cuda_path_is_taken_when_a_device_is_present():
    import torch

    from aietl_pipelines.dedupe.candidates import knn_search
    from aietl_pipelines.embeddings import embed_query, embed_texts, get_model, get_query_model

    assert get_model("auto").device.type == "cuda"
    assert next(get_model("auto").parameters()).dtype == torch.float16
    assert next(get_query_model("cuda").parameters()).device.type == "cuda"
    texts = ["John Doe, 123 Main St", "Jon Doe, 123 Main Street", "Jane Dow, 9 Oak Avenue"]
    on_gpu, on_cpu = embed_texts(texts, device="cuda"), embed_texts(texts, device="cpu")
    assert on_gpu.dtype == np.float32 and np.all(np.sum(on_gpu * on_cpu, axis=1) > 0.999)
    assert float(embed_query(texts[0], device="cuda") @ on_cpu[0]) > 0.999
    found = knn_search(on_gpu, on_gpu, 1, self_offset=0, device="cuda")
    assert found.indices[:, 0].tolist()[:2] == [1, 0]


def test_field_values_are_embedded_once_and_summed(tmp_path, monkeypatch):
    encoded: list[str] = []
    real_encode = embeddings._encode

    def counting_encode(texts, batch_size, show_progress, device="auto", precision="auto"):
        encoded.extend(texts)
        return real_encode(texts, batch_size, show_progress, device, precision)

    monkeypatch.setattr(embeddings, "_encode", counting_encode)
    columns = {"first": ["john", "jon", "john", None], "last": ["doe", "doe", "doe", ""]}
    vectors = embeddings.embed_field_values(columns, cache_dir=tmp_path)
    assert sorted(encoded) == ["doe", "john", "jon"]  # each distinct value once
    single = embeddings.embed_texts(["john", "doe"])
    expected = (single[0] + single[1]) / np.linalg.norm(single[0] + single[1])
    assert np.allclose(vectors[0], expected, atol=1e-5) and np.array_equal(vectors[0], vectors[2])
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no value: the zero vector
    with pytest.raises(AietlInputError, match="different lengths"):
        embeddings.embed_field_values({"a": ["x"], "b": ["x", "y"]})


def test_batch_embeddings_stay_within_cosine_0_9998_of_float32():
    """Indexed texts go through `get_inference_model` (bf16 on CPUs with native bf16): their vectors must stay
    interchangeable with the float32 model's."""
    import torch

    from aietl_pipelines.embeddings import (
        bf16_matmul_is_fast,
        embed_texts,
        get_inference_model,
        get_model,
    )

    texts = ["katherine", "henry", "1590 union place", "reno", "Иван Петров", "王伟", "john doe 123 main st"]
    with torch.inference_mode():
        reference = get_model("cpu").encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    vectors = embed_texts(texts, device="cpu")
    assert np.all(np.sum(vectors * reference, axis=1) > 0.9998)
    expected = torch.bfloat16 if bf16_matmul_is_fast() else torch.float32
    assert next(get_inference_model("cpu").parameters()).dtype == expected
    exact = embed_texts(texts, device="cpu", precision="float32")
    assert np.allclose(exact, reference, atol=1e-5)  # `embed_precision: float32` is the float32 model
    with pytest.raises(AietlInputError, match="precision"):
        embed_texts(texts, precision="int8")


def test_each_precision_has_its_own_cache(tmp_path):
    from aietl_pipelines.embeddings import EmbeddingCache, embed_texts, uses_bf16

    embed_texts(["ann lee"], cache_dir=tmp_path, device="cpu", precision="float32")
    assert len(EmbeddingCache(tmp_path)) == 1
    embed_texts(["bob kim"], cache_dir=tmp_path, device="cpu")
    assert len(EmbeddingCache(tmp_path, bf16=True)) == (1 if uses_bf16("cpu") else 0)
