"""The services of one API process, each built once (on first use, or at start-up) and then shared.

Building a Feast `FeatureStore` or loading the embedding model takes from milliseconds to seconds; a
request only reads. `ServiceRegistry` holds the feature store, the drift service and one vector search
service per provider; the app's lifespan creates it and `Depends(services)` hands it to the routes.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

from fastapi import Request

from aietl_pipelines.api.config import ApiSettings

logger = logging.getLogger(__name__)


def limit_torch_threads(threads: int) -> None:
    """Torch's intra-op threads in this process (`ApiSettings.torch_threads`), set before the model runs."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class ServiceRegistry:
    """Lazily built, then cached, services of the app (thread-safe)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._built: dict[Any, Any] = {}

    def _get(self, key: Any, build) -> Any:
        found = self._built.get(key)
        if found is not None:
            return found
        with self._lock:
            if key not in self._built:
                self._built[key] = build()
            return self._built[key]

    def features(self) -> Any:
        """The awaitable feature store service (services.feature_store)."""
        from aietl_pipelines.services.feature_store import get_feature_store_service

        return self._get("features", get_feature_store_service)

    def drift(self) -> Any:
        """The drift monitoring service (services.drift_monitoring)."""
        from aietl_pipelines.services.drift_monitoring import get_drift_monitoring_service

        return self._get("drift", get_drift_monitoring_service)

    def vector(self, provider: str | None = None) -> Any:
        """The vector search service of a provider (the configured default when None)."""
        from aietl_pipelines.services.vector_search import get_vector_search_service

        name = provider or self.settings.vector_provider
        options: dict[str, Any] = {"embedding": self.settings.vector_embedding, "piece_memo": self.settings.piece_memo,
                                   "cache_dir": self.settings.embedding_cache}
        if self.settings.vector_path and name == "qdrant":
            options["path"] = self.settings.vector_path

        def build() -> Any:
            limit_torch_threads(self.settings.torch_threads)  # the service embeds queries with torch
            service = get_vector_search_service(name, **options)
            service.query_concurrency = self.settings.embed_threads  # before its first query builds the batcher
            return service

        return self._get(("vector", name), build)

    def _load_query_model(self) -> None:
        """The query embedding model and the duplicates match model (fitted on first use), loaded now."""
        from aietl_pipelines.dedupe.matcher import score_text_matches
        from aietl_pipelines.embeddings import embed_query, get_query_encoder

        limit_torch_threads(self.settings.torch_threads)
        embed_query("warm-up")
        encoder = get_query_encoder()
        if encoder is not None:  # the CPU: prepare the products' kernels for every batch size now
            encoder.warm_up()
        score_text_matches("warm-up", ["warm-up"])

    def warm_up(self, parts: tuple[str, ...] = ("features", "drift", "vector", "model")) -> None:
        """Build the services and load the embedding model now, so the first requests do not wait for it
        (run in a background thread by the app's lifespan; failures are logged, requests then report them)."""
        steps = {"features": self.features, "drift": self.drift, "vector": self.vector,
                 "model": self._load_query_model}
        for name, step in ((n, steps[n]) for n in parts if n in steps):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - a missing repo or server must not stop the API
                logger.warning("warm-up: %s not ready (%s); requests will retry", name, type(exc).__name__)
        # What start-up built (modules, models, stores) lives as long as the process: moved out of the cyclic
        # garbage collector's generations, a full collection no longer walks it in the middle of requests
        # (benchmarks/api_load.py duplicates on 100K records: p99 277 ms -> 104 ms).
        gc.freeze()

    def built(self) -> list[str]:
        return [k if isinstance(k, str) else ":".join(k) for k in self._built]


async def services(request: Request) -> ServiceRegistry:
    """FastAPI dependency: the app's `ServiceRegistry`."""
    return request.app.state.services
