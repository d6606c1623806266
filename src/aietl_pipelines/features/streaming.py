"""The guide's "real-time feature pipeline": events in, pushes to `pipeline_realtime_push_source` out.

Events are mappings with pipeline_id, timestamp (ISO 8601 with zone, or epoch seconds), cpu_usage and
memory_usage (or current_cpu_usage / current_memory_usage) and optionally anomaly_detected. They come from any
iterable, any async iterator, or a Kafka topic (`kafka_events`, needs the optional package aiokafka).
Events are pushed in batches; an event that cannot be read is logged and counted in `stats["skipped"]`, never
pushed half-way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import pandas as pd

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.definitions import PUSH_SOURCE

logger = logging.getLogger(__name__)


def event_to_row(event: Mapping[str, Any], cpu_alert: float = 90.0) -> dict[str, Any]:
    """One push-source row from an event; raises AietlInputError naming what is missing."""
    try:
        pipeline_id = event["pipeline_id"]
        if pipeline_id is None or not str(pipeline_id).strip():
            raise KeyError("pipeline_id")
        pipeline_id = str(pipeline_id)
        raw_ts = event.get("event_timestamp", event.get("timestamp"))
        if raw_ts is None:
            raise KeyError("timestamp")
        ts = pd.to_datetime(raw_ts, unit="s", utc=True) if isinstance(raw_ts, int | float) else pd.Timestamp(raw_ts)
        if ts.tzinfo is None:
            raise AietlInputError(f"event timestamp {raw_ts!r} has no time zone: send UTC (e.g. ...Z)")
        cpu = float(event.get("current_cpu_usage", event.get("cpu_usage")))
        memory = float(event.get("current_memory_usage", event.get("memory_usage")))
    except (KeyError, TypeError, ValueError) as exc:
        raise AietlInputError(f"event {dict(event)!r} is missing or has a bad field ({exc}); expected pipeline_id, "
                              "timestamp, cpu_usage, memory_usage") from None
    anomaly = event.get("anomaly_detected")
    if anomaly is not None and (isinstance(anomaly, str) or anomaly not in (0, 1)):  # True/False are 1/0
        raise AietlInputError(f"event {dict(event)!r}: anomaly_detected must be 0 or 1 (or False/True), got {anomaly!r}")
    if not (math.isfinite(cpu) and math.isfinite(memory)):
        raise AietlInputError(f"event {dict(event)!r}: cpu_usage and memory_usage must be finite numbers")
    return {"pipeline_id": pipeline_id, "event_timestamp": ts.tz_convert("UTC"), "current_cpu_usage": cpu,
            "current_memory_usage": memory,
            "anomaly_detected": int(anomaly) if anomaly is not None else int(cpu >= cpu_alert)}


class RealtimeFeatureConsumer:
    """Turns an event stream into pushes (batched) through the feature store service."""

    def __init__(self, service: Any, push_source_name: str = PUSH_SOURCE, to: str = "online",
                 batch_size: int = 100) -> None:
        self.service, self.push_source_name, self.to, self.batch_size = service, push_source_name, to, batch_size
        self.stats = {"received": 0, "pushed": 0, "skipped": 0}
        self._batch: list[dict[str, Any]] = []

    def _accept(self, event: Mapping[str, Any]) -> None:
        self.stats["received"] += 1
        try:
            self._batch.append(event_to_row(event))
        except AietlInputError as exc:
            self.stats["skipped"] += 1
            logger.warning("skipped event: %s", exc)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Push what is buffered."""
        if self._batch:
            self.stats["pushed"] += self.service.push_features(self.push_source_name, pd.DataFrame(self._batch), to=self.to)
            self._batch = []

    def consume(self, events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Process every event of an iterable, then flush."""
        for event in events:
            self._accept(event)
        self.flush()
        return dict(self.stats)

    async def aconsume(self, events: AsyncIterable[Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Process an async iterator (or a plain iterable), then flush."""
        if isinstance(events, AsyncIterable):
            async for event in events:
                self._accept(event)
        else:
            for event in events:
                self._accept(event)
        self.flush()
        return dict(self.stats)


async def kafka_events(topic: str, bootstrap_servers: str, group_id: str = "aietl-features") -> AsyncIterator[dict]:
    """Events from a Kafka topic (JSON values), through aiokafka."""
    try:
        from aiokafka import AIOKafkaConsumer
    except ImportError:
        raise AietlInputError("Kafka input needs the optional package aiokafka: `pip install aiokafka`.") from None
    import json

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, group_id=group_id,
                                value_deserializer=lambda b: json.loads(b.decode("utf-8")))
    await consumer.start()
    try:
        async for message in consumer:
            yield message.value
    finally:
        await consumer.stop()
