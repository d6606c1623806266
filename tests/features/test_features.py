"""Feature computation and the Feast adapter on the embedded store (SQLite online, parquet offline)."""

import threading

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import generate_etl_runs
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.compute import compute_pipeline_features
from aietl_pipelines.features.definitions import PUSH_SOURCE
from aietl_pipelines.features.store import FeatureStoreService


@pytest.fixture(scope="module")
def runs():
    return generate_etl_runs(n_pipelines=5, days=12, runs_per_day=12, drift_start_day=8, seed=2)


@pytest.fixture(scope="module")
def features(runs):
    return compute_pipeline_features(runs)


@pytest.fixture
def store(tmp_path, features):
    service = FeatureStoreService(repo_path=tmp_path / "repo")
    service.write_offline_source(features)
    service.apply()
    return service


def test_features_use_only_the_past(runs, features):
    one = runs[runs["pipeline_id"] == "pipeline_003"].sort_values("finished_at")
    row = features[features["pipeline_id"] == "pipeline_003"].iloc[40]
    window = one[(one["finished_at"] <= row["event_timestamp"]) & (one["finished_at"] >= row["event_timestamp"] - pd.Timedelta("24h"))]
    assert row["avg_execution_time"] == pytest.approx(window["duration_seconds"].mean())
    assert row["success_rate"] == pytest.approx(1 - window["failed"].mean())
    assert row["error_count"] == window["error_count"].sum()
    assert features["failure_probability"].isna().all()
    assert len(features) == len(runs)


def _reference_join(entity_df, features, ttl):
    """What the join must equal: merge_asof per row, latest event (then latest created) wins, within ttl."""
    out = []
    for _, ent in entity_df.iterrows():
        cands = features[(features["pipeline_id"] == ent["pipeline_id"])
                         & (features["event_timestamp"] <= ent["event_timestamp"])
                         & (features["event_timestamp"] >= ent["event_timestamp"] - ttl)]
        if cands.empty:
            out.append(np.nan)
        else:
            best = cands.sort_values(["event_timestamp", "created_timestamp"]).iloc[-1]
            out.append(best["avg_execution_time"])
    return np.array(out, dtype=float)


def test_historical_join_keeps_every_row_and_matches_reference(store, runs, features):
    rng = np.random.default_rng(0)
    sample = runs.sample(300, random_state=1)
    entity_df = pd.DataFrame({"pipeline_id": sample["pipeline_id"].to_numpy(),
                              "event_timestamp": sample["started_at"].to_numpy()})
    entity_df = pd.concat([entity_df, entity_df.iloc[:50]], ignore_index=True)  # repeated (id, ts) rows
    entity_df.loc[0, "event_timestamp"] = pd.Timestamp("2020-01-01", tz="UTC")  # nothing in range → null
    entity_df["label"] = rng.integers(0, 2, len(entity_df))
    result = store.get_historical_features(entity_df, ["pipeline_features:avg_execution_time"])
    assert len(result) == len(entity_df)
    assert result["label"].tolist() == entity_df["label"].tolist()  # order and rows kept
    expected = _reference_join(entity_df, features, pd.Timedelta(days=7))
    np.testing.assert_allclose(result["avg_execution_time"].to_numpy(dtype=float), expected, equal_nan=True)
    assert np.isnan(result.loc[0, "avg_execution_time"])


def test_ties_broken_by_created_timestamp(tmp_path):
    ts = pd.Timestamp("2026-09-01", tz="UTC")
    feats = compute_pipeline_features(generate_etl_runs(n_pipelines=1, days=1, runs_per_day=2)).iloc[:1]
    twice = pd.concat([feats, feats], ignore_index=True)
    twice["event_timestamp"] = ts
    twice["created_timestamp"] = [ts + pd.Timedelta("1h"), ts]
    twice["avg_execution_time"] = [2.0, 1.0]
    service = FeatureStoreService(repo_path=tmp_path)
    service.write_offline_source(twice)
    got = service.get_historical_features(
        pd.DataFrame({"pipeline_id": [feats["pipeline_id"].iloc[0]], "event_timestamp": [ts]}),
        ["avg_execution_time"])
    assert got["avg_execution_time"].tolist() == [2.0]


def test_online_after_materialize_equals_historical_at_end(store, features):
    end = features["event_timestamp"].max() + pd.Timedelta(seconds=1)
    store.materialize(features["event_timestamp"].min().to_pydatetime(), end.to_pydatetime())
    ids = sorted(features["pipeline_id"].unique())
    online = store.get_pipeline_features(ids, ["avg_execution_time", "success_rate"])
    hist = store.get_historical_features(pd.DataFrame({"pipeline_id": ids, "event_timestamp": [end] * len(ids)}),
                                         ["avg_execution_time", "success_rate"])
    np.testing.assert_allclose(online["avg_execution_time"].to_numpy(float), hist["avg_execution_time"].to_numpy(float))
    np.testing.assert_allclose(online["success_rate"].to_numpy(float), hist["success_rate"].to_numpy(float))


def _push_frame(n=1, pid="pipeline_001"):
    now = pd.Timestamp.now(tz="UTC")
    return pd.DataFrame({"pipeline_id": [pid] * n, "event_timestamp": [now] * n,
                         "current_cpu_usage": np.linspace(10, 90, n), "current_memory_usage": [512.0] * n,
                         "anomaly_detected": [1] * n})


def test_pushed_row_is_online_at_once_and_offline_pushes_lose_nothing(store):
    store.push_features(PUSH_SOURCE, _push_frame(), to="online")
    got = store.get_pipeline_features(["pipeline_001"], ["pipeline_realtime_features:current_cpu_usage"])
    assert got["current_cpu_usage"].tolist() == [10.0]
    threads = [threading.Thread(target=store.push_features, args=(PUSH_SOURCE, _push_frame(5, f"p{i}"), "offline"))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pd.read_parquet(store.realtime_path)) == 30


def test_bad_input_is_clear_and_nothing_is_written(store):
    with pytest.raises(AietlInputError, match="Unknown feature 'pipeline_features:nope'. Available:"):
        store.get_pipeline_features(["pipeline_001"], ["pipeline_features:nope"])
    with pytest.raises(AietlInputError, match="no join key column 'pipeline_id'"):
        store.get_historical_features(pd.DataFrame({"event_timestamp": [pd.Timestamp.now(tz="UTC")]}))
    with pytest.raises(AietlInputError, match="no 'event_timestamp' column"):
        store.get_historical_features(pd.DataFrame({"pipeline_id": ["a"]}))
    with pytest.raises(AietlInputError, match="timezone-naive"):
        store.get_historical_features(pd.DataFrame({"pipeline_id": ["a"], "event_timestamp": [pd.Timestamp("2026-01-01")]}))
    before = len(pd.read_parquet(store.realtime_path))
    with pytest.raises(AietlInputError, match=r"missing \['anomaly_detected'\], extra \['oops'\]"):
        store.push_features(PUSH_SOURCE, _push_frame().drop(columns="anomaly_detected").assign(oops=1), to="offline")
    with pytest.raises(AietlInputError, match="Unknown push source"):
        store.push_features("nope", _push_frame())
    assert len(pd.read_parquet(store.realtime_path)) == before
