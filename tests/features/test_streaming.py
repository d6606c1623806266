import asyncio

import pandas as pd
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.store import FeatureStoreService
from aietl_pipelines.features.streaming import RealtimeFeatureConsumer, event_to_row, kafka_events


@pytest.fixture
def service(tmp_path):
    svc = FeatureStoreService(repo_path=tmp_path / "repo")
    svc.apply()
    return svc


def _events(n, start=0):
    now = pd.Timestamp.now(tz="UTC")
    return [{"pipeline_id": f"pipeline_{i % 3:03d}", "timestamp": (now + pd.Timedelta(seconds=i)).isoformat(),
             "cpu_usage": 50.0 + i, "memory_usage": 1000.0} for i in range(start, start + n)]


def test_iterable_stream_reaches_the_online_store_and_bad_events_are_counted(service):
    consumer = RealtimeFeatureConsumer(service, batch_size=4)
    stats = consumer.consume([*_events(9), {"pipeline_id": "x"}])
    assert stats == {"received": 10, "pushed": 9, "skipped": 1}
    online = service.get_pipeline_features(["pipeline_002"], ["pipeline_realtime_features:current_cpu_usage"])
    assert online["current_cpu_usage"].iloc[0] == 58.0  # the latest event of that pipeline


def test_async_stream(service):
    async def source():
        for event in _events(5):
            yield event

    stats = asyncio.run(RealtimeFeatureConsumer(service, to="online_and_offline").aconsume(source()))
    assert stats["pushed"] == 5 and len(pd.read_parquet(service.realtime_path)) == 5


def test_event_rules_and_kafka_without_aiokafka():
    row = event_to_row({"pipeline_id": "p", "timestamp": 1_790_000_000, "cpu_usage": 95, "memory_usage": 1})
    assert row["anomaly_detected"] == 1 and str(row["event_timestamp"].tz) == "UTC"
    with pytest.raises(AietlInputError, match="no time zone"):
        event_to_row({"pipeline_id": "p", "timestamp": "2026-01-01T00:00:00", "cpu_usage": 1, "memory_usage": 1})

    async def first():
        async for event in kafka_events("t", "127.0.0.1:9"):
            return event

    try:
        import aiokafka  # noqa: F401
    except ImportError:
        with pytest.raises(AietlInputError, match="aiokafka"):
            asyncio.run(first())


def test_bad_event_values_are_skipped_in_one_line():
    good = {"pipeline_id": "p", "timestamp": "2026-01-01T00:00:00Z", "cpu_usage": 1, "memory_usage": 1}
    for bad in ({"anomaly_detected": 0.7}, {"anomaly_detected": "yes"}, {"cpu_usage": float("inf")},
                {"pipeline_id": None}, {"pipeline_id": ""}):
        with pytest.raises(AietlInputError) as info:
            event_to_row({**good, **bad})
        assert "\n" not in str(info.value)
    assert event_to_row({**good, "anomaly_detected": True})["anomaly_detected"] == 1

