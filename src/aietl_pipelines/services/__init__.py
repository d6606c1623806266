"""The Python API users call directly (notebooks, the FastAPI app, other services).

    from aietl_pipelines.services import get_vector_search_service, get_drift_monitoring_service
    from aietl_pipelines.services import get_feature_store_service, deduplicate_customers

Imports are lazy so that using one service does not load the libraries of the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "get_vector_search_service": "aietl_pipelines.services.vector_search",
    "get_drift_monitoring_service": "aietl_pipelines.services.drift_monitoring",
    "get_feature_store_service": "aietl_pipelines.services.feature_store",
    "deduplicate_customers": "aietl_pipelines.services.dedupe",
    "train_dedupe_with_labels": "aietl_pipelines.services.dedupe",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'aietl_pipelines.services' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
