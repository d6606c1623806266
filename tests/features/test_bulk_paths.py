"""The hand-written fast paths against the libraries' own answers: the bulk online writer against Feast's
materialize (byte for byte), the NumPy point-in-time join against pandas merge_asof."""

import sqlite3
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.benchmarks.features import make_features
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.online_writer import entity_keys, latest_per_entity
from aietl_pipelines.features.store import FeatureStoreService, point_in_time_join

ROWS = "SELECT entity_key, feature_name, value, value_text, event_ts, created_ts FROM aietl_pipeline_features ORDER BY 1, 2"


@pytest.fixture
def source():
    frame = make_features(300, 4, seed=3)
    frame.loc[3, "avg_cpu_usage"] = np.nan  # null double → empty ValueProto
    frame.loc[5, "avg_memory_usage"] = np.inf
    frame.loc[6, "success_rate"] = 0.0  # a default value must still be written
    frame["error_count"] = frame["error_count"].astype("Int64")
    frame.loc[7, "error_count"] = pd.NA  # null integer
    frame.loc[9, "run_count"] = -3  # negative varint
    return frame


def test_bulk_materialize_writes_what_feast_writes(tmp_path, source, monkeypatch):
    # Feast stores int(naive_utc.timestamp()), which Python reads as local time: compare on UTC, as CI runs
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    ours = FeatureStoreService(repo_path=tmp_path / "ours", features_path=tmp_path / "f.parquet")
    ours.write_offline_source(source)
    ours.apply()
    stock = FeatureStoreService(repo_path=tmp_path / "stock", features_path=tmp_path / "f.parquet")
    stock.apply()
    start = source["event_timestamp"].min().to_pydatetime()
    end = source["event_timestamp"].quantile(0.7).to_pydatetime()  # a range that leaves some rows out
    assert ours.materialize(start, end) == source[source["event_timestamp"] <= end]["pipeline_id"].nunique()
    stock.store.materialize(start_date=start, end_date=end, feature_views=["pipeline_features"])
    got = sqlite3.connect(tmp_path / "ours" / "data" / "online_store.db").execute(ROWS).fetchall()
    want = sqlite3.connect(tmp_path / "stock" / "data" / "online_store.db").execute(ROWS).fetchall()
    assert len(got) == len(want) > 0
    assert got == want
    # Feast reads it back, and the interval is in the registry for materialize_incremental
    assert ours.store.get_feature_view("pipeline_features").most_recent_end_time == end
    ids = sorted(source["pipeline_id"].unique())[:20]
    np.testing.assert_allclose(ours.get_pipeline_features(ids, ["success_rate"])["success_rate"].to_numpy(float),
                               stock.get_pipeline_features(ids, ["success_rate"])["success_rate"].to_numpy(float))


def test_materialize_incremental_continues_from_the_last_end(tmp_path, source):
    service = FeatureStoreService(repo_path=tmp_path / "repo", features_path=tmp_path / "f.parquet")
    service.write_offline_source(source)
    service.apply()
    first_end = source["event_timestamp"].quantile(0.5).to_pydatetime()
    service.materialize(source["event_timestamp"].min().to_pydatetime(), first_end)
    later = source[source["event_timestamp"] > first_end]
    written = service.materialize_incremental(source["event_timestamp"].max().to_pydatetime())
    assert written == later["pipeline_id"].nunique()
    assert service.store.get_feature_view("pipeline_features").most_recent_end_time == source["event_timestamp"].max()
    with pytest.raises(AietlInputError, match="is before start_date"):
        service.materialize(pd.Timestamp("2026-09-02").to_pydatetime(), pd.Timestamp("2026-09-01").to_pydatetime())
    with pytest.raises(AietlInputError, match="not a date"):
        service.materialize("yesterday", pd.Timestamp("2026-09-01", tz="UTC"))


def test_entity_keys_equal_feasts_serialization():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    ids = ["p1", "", "pipeline_ü_日本", "x" * 300]
    want = [serialize_entity_key(EntityKey(join_keys=["pipeline_id"], entity_values=[Value(string_val=i)]), 3)
            for i in ids]
    assert entity_keys(ids, "pipeline_id") == want


def test_latest_per_entity_breaks_ties_by_created_then_position():
    ts = pd.Timestamp("2026-09-01", tz="UTC")
    frame = pd.DataFrame({"pipeline_id": ["a", "a", "a", "b"],
                          "event_timestamp": [ts, ts, ts - pd.Timedelta("1h"), ts],
                          "created_timestamp": [ts + pd.Timedelta("1s"), ts, ts + pd.Timedelta("1d"), ts],
                          "v": [1, 2, 3, 4]})
    assert latest_per_entity(frame, "pipeline_id")["v"].tolist() == [1, 4]
    assert latest_per_entity(frame, "pipeline_id", end=ts - pd.Timedelta("1m"))["v"].tolist() == [3]


def test_point_in_time_join_equals_merge_asof():
    rng = np.random.default_rng(7)
    n = 5_000
    base = pd.Timestamp("2026-09-01", tz="UTC")
    features = pd.DataFrame({
        "pipeline_id": rng.choice([f"p{i}" for i in range(50)], n),
        "event_timestamp": base + pd.to_timedelta(rng.integers(0, 20 * 86400, n) // 3600 * 3600, unit="s"),
        "value": rng.normal(size=n), "count": rng.integers(0, 9, n)})
    features["created_timestamp"] = features["event_timestamp"] + pd.to_timedelta(rng.integers(0, 5, n), unit="s")
    entity = pd.DataFrame({"pipeline_id": rng.choice([f"p{i}" for i in range(55)], 3_000),  # 5 unknown ids
                           "event_timestamp": base + pd.to_timedelta(rng.integers(-86400, 25 * 86400, 3_000), unit="s")})
    entity = pd.concat([entity, entity.iloc[:500]], ignore_index=True)  # repeated rows
    ttl = pd.Timedelta(days=2)
    got = point_in_time_join(entity, features, ["value", "count"], ttl)

    right = (features.sort_values(["event_timestamp", "created_timestamp"], kind="stable")
             .drop_duplicates(["pipeline_id", "event_timestamp"], keep="last")
             .rename(columns={"event_timestamp": "fts"}).sort_values("fts", kind="stable"))
    left = entity.reset_index().sort_values("event_timestamp", kind="stable")
    want = pd.merge_asof(left, right[["pipeline_id", "fts", "value", "count"]], left_on="event_timestamp",
                         right_on="fts", by="pipeline_id", direction="backward", tolerance=ttl)
    want = want.sort_values("index").reset_index(drop=True)
    assert len(got) == len(entity)
    assert got["pipeline_id"].tolist() == entity["pipeline_id"].tolist()
    assert 0 < got["value"].isna().sum() < len(got)
    np.testing.assert_array_equal(got["value"].to_numpy(float), want["value"].to_numpy(float))
    np.testing.assert_array_equal(got["count"].to_numpy(float), want["count"].to_numpy(float))
    empty = point_in_time_join(entity, features.iloc[:0], ["value"], ttl)
    assert len(empty) == len(entity) and empty["value"].isna().all()


def test_materialize_range_with_no_rows_writes_nothing(tmp_path, source):
    service = FeatureStoreService(repo_path=tmp_path / "repo", features_path=tmp_path / "f.parquet")
    service.write_offline_source(source)
    service.apply()
    before = source["event_timestamp"].min() - timedelta(days=30)
    assert service.materialize(before.to_pydatetime(), (before + timedelta(days=1)).to_pydatetime()) == 0
