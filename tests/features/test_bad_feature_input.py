"""The issue's bad feature inputs, each answered with one AietlInputError line and nothing written."""

from __future__ import annotations

import pandas as pd
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.definitions import PUSH_SOURCE
from aietl_pipelines.features.store import FeatureStoreService


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    service = FeatureStoreService(repo_path=tmp_path_factory.mktemp("repo"))
    service.apply()
    return service


def _row(**changes):
    row = {"pipeline_id": "pipeline_001", "event_timestamp": pd.Timestamp.now(tz="UTC"), "current_cpu_usage": 50.0,
           "current_memory_usage": 512.0, "anomaly_detected": 0}
    row.update(changes)
    return pd.DataFrame({k: pd.Series([v], dtype=object if k in changes else None) for k, v in row.items()})


@pytest.mark.parametrize(("changes", "message"), [
    ({"current_cpu_usage": "high"}, r"current_cpu_usage must be finite numbers; 1 row\(s\) are not \(first: row 0, 'high'\)"),
    ({"anomaly_detected": 0.7}, r"anomaly_detected is a flag: 0 or 1 \(or False/True\); .*0.7"),
    ({"pipeline_id": None}, r"pipeline_id must be non-empty strings; .*None.*astype\(str\)"),
    ({"pipeline_id": 7}, r"pipeline_id must be non-empty strings; .*7\)"),
    ({"event_timestamp": "2026-01-01T00:00:00"}, r"timezone-naive"),
    ({"current_memory_usage": float("inf")}, r"current_memory_usage must be finite numbers"),
])
@pytest.mark.parametrize("to", ["online", "offline", "online_and_offline"])
def test_bad_pushes_are_one_line_and_write_nothing(store, changes, message, to):
    before = len(pd.read_parquet(store.realtime_path))
    with pytest.raises(AietlInputError, match=message) as info:
        store.push_features(PUSH_SOURCE, _row(**changes), to=to)
    assert "\n" not in str(info.value)
    assert len(pd.read_parquet(store.realtime_path)) == before


def test_good_push_values_are_typed(store):
    frame = _row(anomaly_detected=True, current_cpu_usage="12.5", pipeline_id="p-typed")
    assert store.push_features(PUSH_SOURCE, frame, to="online_and_offline") == 1
    got = store.get_pipeline_features(["p-typed"], ["pipeline_realtime_features:current_cpu_usage",
                                                     "pipeline_realtime_features:anomaly_detected"])
    assert got[["current_cpu_usage", "anomaly_detected"]].iloc[0].tolist() == [12.5, 1]
    offline = pd.read_parquet(store.realtime_path)
    assert offline.dtypes["anomaly_detected"] == "int64" and offline["pipeline_id"].iloc[-1] == "p-typed"


def test_retrieval_inputs(store):
    with pytest.raises(AietlInputError, match=r"pipeline_ids is empty"):
        store.get_pipeline_features([])
    with pytest.raises(AietlInputError, match=r"pipeline_ids.pipeline_id must be non-empty strings"):
        store.get_pipeline_features(["a", None])
    store.push_features(PUSH_SOURCE, _row(pipeline_id="p-mixed"), to="offline")
    now = pd.Timestamp.now(tz="UTC")
    mixed = pd.DataFrame({"pipeline_id": ["p-mixed", "p-mixed"],
                          "event_timestamp": [now.isoformat(), now.tz_convert("Asia/Tokyo").isoformat()]})
    got = store.get_historical_features(mixed, ["pipeline_realtime_features:current_cpu_usage"])
    assert got["current_cpu_usage"].tolist() == [50.0, 50.0]  # the same instant in two offsets
    with pytest.raises(AietlInputError, match=r"timezone-naive.*First naive value: '2026-01-01 00:00:00'"):
        store.get_historical_features(mixed.assign(event_timestamp=["2026-01-01 00:00:00", now.isoformat()]))
    with pytest.raises(AietlInputError, match=r"entity_df.pipeline_id must be non-empty strings"):
        store.get_historical_features(mixed.assign(pipeline_id=[1, 2]))


def test_a_corrupt_offline_target_is_one_line_and_kept(tmp_path):
    service = FeatureStoreService(repo_path=tmp_path / "repo")
    service.apply()
    service.realtime_path.write_bytes(b"PAR1")  # what an in-place rewrite killed with kill -9 used to leave
    with pytest.raises(AietlInputError, match=r"cannot be appended to .* nothing was written"):
        service.push_features(PUSH_SOURCE, _row(), to="offline")
    assert service.realtime_path.read_bytes() == b"PAR1"
