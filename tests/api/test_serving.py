"""Serving settings: torch's intra-op threads of an API process (AIETL_API_TORCH_THREADS, default 1)."""

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
