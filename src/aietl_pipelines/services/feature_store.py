"""The guide's feature store API: `get_feature_store_service()` (see aietl_pipelines.features.store)."""

from aietl_pipelines.features.store import FeatureStoreService, get_feature_store_service

__all__ = ["FeatureStoreService", "get_feature_store_service"]
