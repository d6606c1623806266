"""The online read the API serves (`FeatureStoreService._read_online`) answers exactly what Feast's own
``get_online_features(...).to_dict(include_event_timestamps=True)`` answers: same columns, order, values,
types and event times, for known and unknown ids, repeated ids, both feature views and a pushed row."""

from __future__ import annotations

import pandas as pd
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features import definitions as defs


@pytest.fixture
def store(feature_repo):
    from aietl_pipelines.services.feature_store import get_feature_store_service

    service = get_feature_store_service()
    service.materialize_sync(pd.Timestamp("2024-12-29"), pd.Timestamp("2025-01-03"))
    service.push_features_sync(defs.PUSH_SOURCE, pd.DataFrame({
        "pipeline_id": ["456"], "event_timestamp": [pd.Timestamp.now(tz="UTC")], "current_cpu_usage": [0.7],
        "current_memory_usage": [0.4], "anomaly_detected": [1]}))
    return service.core


CASES = [
    (["pipeline_features:avg_execution_time"], ["123"]),
    (None, ["123", "unknown", "123", "pipeline_003", "456"]),
    (["pipeline_realtime_features:anomaly_detected", "pipeline_features:error_count",
      "pipeline_realtime_features:current_cpu_usage", "success_rate"], ["456", "123", "nobody"]),
]


@pytest.mark.parametrize(("features", "ids"), CASES)
def test_online_read_equals_feasts_own(store, features, ids):
    refs = store._resolve(features)
    ours = store._read_online(refs, ids)
    feasts = store.store.get_online_features(
        features=refs, entity_rows=[{defs.JOIN_KEY: i} for i in ids]).to_dict(include_event_timestamps=True)
    assert list(ours) == list(feasts)
    assert ours == feasts
    assert [[type(v) for v in column] for column in ours.values()] == \
           [[type(v) for v in column] for column in feasts.values()]
    assert any(v is not None for name, column in ours.items() if name != defs.JOIN_KEY and not name.endswith("__ts")
               for v in column)  # something was found, not only missing values


def test_online_columns_drop_event_times_and_check_ids(store):
    columns = store.online_feature_columns("123", ["pipeline_features:success_rate"])
    assert list(columns) == ["pipeline_id", "success_rate"] and columns["pipeline_id"] == ["123"]
    with pytest.raises(AietlInputError, match=r"pipeline_ids.pipeline_id must be non-empty strings; 1 row"):
        store.online_feature_columns(["123", " "])
    with pytest.raises(AietlInputError, match="pipeline_ids is empty"):
        store.online_feature_columns([])
    with pytest.raises(AietlInputError, match="must be a list of pipeline ids, got int"):
        store.online_feature_columns(5)
