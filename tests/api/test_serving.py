"""Serving settings and the query embedding path: torch threads (AIETL_API_TORCH_THREADS), embedding threads
(AIETL_API_EMBED_THREADS), the query encoder and batcher."""

from __future__ import annotations

import pytest

from aietl_pipelines.api.config import ApiSettings
from aietl_pipelines.api.state import ServiceRegistry
from aietl_pipelines.errors import AietlInputError


def test_torch_threads_setting(monkeypatch):
    monkeypatch.delenv("AIETL_API_TORCH_THREADS", raising=False)
    assert ApiSettings.from_env().torch_threads == 1
    monkeypatch.setenv("AIETL_API_TORCH_THREADS", "2")
    assert ApiSettings.from_env().torch_threads == 2
    monkeypatch.setenv("AIETL_API_TORCH_THREADS", "0")
    with pytest.raises(AietlInputError, match="AIETL_API_TORCH_THREADS='0' must be positive"):
        ApiSettings.from_env()


def test_the_vector_service_of_the_api_embeds_on_the_configured_threads(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        registry = ServiceRegistry(ApiSettings(vector_provider="numpy", torch_threads=1))
        registry.vector()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_query_encoder_is_the_model_without_its_overhead():
    """`QueryEncoder` (packed tokens, fused products) computes the SentenceTransformer's vectors: equal in float32,
    within cosine 0.999 in the serving precision (bf16 where the CPU has it), for any batch of texts."""
    import numpy as np
    import torch

    from aietl_pipelines.embeddings import QueryEncoder, embed_queries, embed_query, get_model

    texts = ["John Doe, 123 Main St, john@example.com", "jane dow 9 oak avenue", "Katherine Henry 1590 Union Place",
             "", "word " * 400, "é 中文 🙂 Zoë"]
    model = get_model("cpu")
    with torch.inference_mode():
        reference = model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, batch_size=1)
    exact = QueryEncoder(model, torch.float32)(texts)
    assert np.abs(exact - reference).max() < 1e-5
    served = embed_queries(texts, device="cpu")
    assert served.dtype == np.float32 and served.shape == (len(texts), 384)
    assert float((served * reference).sum(1).min()) > 0.999
    assert float(embed_query(texts[0], device="cpu") @ reference[0]) > 0.999


def test_query_batcher_embeds_two_batches_at_once():
    """With concurrency 2 two batches run in two threads at the same time, and every caller gets its own vector."""
    import asyncio
    import threading
    import time

    import numpy as np

    from aietl_pipelines.services.vector_search import QueryBatcher

    running, most, lock = [0], [0], threading.Lock()

    def embed_many(texts):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return np.array([[float(t)] for t in texts])

    batcher = QueryBatcher(embed_many, concurrency=2)

    async def ask():
        return await asyncio.gather(*(batcher.embed(str(i)) for i in range(10)))

    vectors = asyncio.run(ask())
    assert [float(v[0]) for v in vectors] == list(range(10))
    assert most[0] == 2
    assert ApiSettings.from_env().embed_threads >= 1
