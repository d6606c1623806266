"""Fault injection on feature pushes: concurrent threads and processes with readers, kill -9 in the middle of
a push, Redis killed. After each: every acknowledged row is stored, no push is half-stored, nothing
half-written is visible to readers, and the next push succeeds."""

from __future__ import annotations

import random
import re
import signal
import threading
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.features.definitions import PUSH_SOURCE
from tests.faults.conftest import ATTEMPTS, report, start_worker
from tests.faults.worker import REALTIME, batch_frame, batch_ids, service

pytestmark = pytest.mark.faults


@pytest.fixture
def store(tmp_path):
    service_ = service(str(tmp_path / "repo"))
    service_.apply()
    return service_


def online_values(store, ids: list[str]) -> pd.DataFrame:
    got = store.get_pipeline_features(ids, REALTIME)
    return got.set_index("pipeline_id")[["current_cpu_usage", "current_memory_usage", "anomaly_detected"]]


def check_online(store, prefix: str, batch: int, size: int) -> str:
    """'whole' (every row of the push stored with its values), 'absent' (none) or 'torn' (anything else)."""
    got = online_values(store, batch_ids(prefix, batch, size))
    expected = batch_frame(prefix, batch, size).set_index("pipeline_id")
    if got.isna().all().all():
        return "absent"
    if got.isna().any().any():
        return "torn"
    same = (np.allclose(got["current_cpu_usage"], expected["current_cpu_usage"])
            and np.allclose(got["current_memory_usage"], expected["current_memory_usage"])
            and (got["anomaly_detected"].to_numpy() == expected["anomaly_detected"].to_numpy()).all())
    return "whole" if same else "torn"


def check_offline(frame: pd.DataFrame, prefix: str, batch: int, size: int) -> str:
    rows = frame[frame["pipeline_id"].str.startswith(f"{prefix}-{batch}-")]
    if rows.empty:
        return "absent"
    expected = batch_frame(prefix, batch, size)
    if len(rows) != size or not np.allclose(np.sort(rows["current_cpu_usage"]), expected["current_cpu_usage"]):
        return "torn"
    return "whole"


def test_threads_push_online_while_readers_read(store):
    """8 threads x 500 fresh rows per push, plus one rejected push per thread and round, 2 readers."""
    threads, size = 8, 500
    acked: list[tuple[str, int]] = []
    errors: list[str] = []
    torn_reads = 0
    reads = 0
    stop = threading.Event()

    def pusher(t: int) -> None:
        for attempt in range(ATTEMPTS):
            prefix = f"t{t}"
            try:
                store.push_features(PUSH_SOURCE, batch_frame(prefix, attempt, size))
                acked.append((prefix, attempt))
            except Exception as exc:  # noqa: BLE001 - every failure is counted and fails the test
                errors.append(f"{type(exc).__name__}: {exc}")
            bad = batch_frame(f"bad{t}", attempt, size).astype({"current_cpu_usage": object})
            bad.loc[size - 1, "current_cpu_usage"] = "high"
            try:
                store.push_features(PUSH_SOURCE, bad)
                errors.append("a push with current_cpu_usage='high' was accepted")
            except AietlInputError as exc:
                assert "current_cpu_usage" in str(exc) and "\n" not in str(exc)

    def reader() -> None:
        nonlocal torn_reads, reads
        rng = random.Random(0)
        while not stop.is_set():
            done = list(acked)
            if not done:
                time.sleep(0.01)
                continue
            prefix, batch = rng.choice(done)
            try:
                got = online_values(store, batch_ids(prefix, batch, size)[:50])
            except Exception as exc:  # noqa: BLE001
                errors.append(f"read: {type(exc).__name__}: {exc}")
                continue
            reads += 1
            time.sleep(0.02)
            torn_reads += int(got.isna().any(axis=None) or got["current_cpu_usage"].isna().any())

    workers = [threading.Thread(target=pusher, args=(t,)) for t in range(threads)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for w in workers + readers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    for r in readers:
        r.join()
    outcomes = [check_online(store, f"t{t}", a, size) for t in range(threads) for a in range(ATTEMPTS)]
    rejected = [check_online(store, f"bad{t}", a, size) for t in range(threads) for a in range(ATTEMPTS)]
    report("online pushes, 8 threads (SQLite)", attempts=ATTEMPTS, pushes=threads * ATTEMPTS,
           rows_acknowledged=len(acked) * size, rows_stored=outcomes.count("whole") * size,
           rejected_pushes=len(rejected), rejected_rows_stored=(len(rejected) - rejected.count("absent")) * size,
           reads=reads, torn_reads=torn_reads, errors=len(errors))
    assert errors == []
    assert len(acked) == threads * ATTEMPTS and outcomes.count("whole") == len(outcomes)
    assert set(rejected) == {"absent"}
    assert torn_reads == 0 and reads > 0


def test_processes_push_online_and_offline_while_readers_read(store):
    """3 processes push to both stores; this process reads online and historical features meanwhile."""
    procs, batches, size = 3, 2 * ATTEMPTS, 300
    workers = [start_worker(str(store.repo_path), "online_and_offline", f"p{i}", str(batches), str(size))
               for i in range(procs)]
    reads = failures = 0
    entity = pd.DataFrame({"pipeline_id": ["p0-0-0"], "event_timestamp": [pd.Timestamp.now(tz="UTC")]})
    while any(w.process.is_alive() for w in workers):
        time.sleep(0.05)
        try:
            store.get_historical_features(entity.assign(event_timestamp=pd.Timestamp.now(tz="UTC")), REALTIME)
            online_values(store, ["p0-0-0", "p1-0-0", "p2-0-0"])
            reads += 1
        except Exception as exc:  # noqa: BLE001
            failures += 1
            print(type(exc).__name__, exc)
    outs = [w.wait() for w in workers]
    assert all(code == 0 for code, _ in outs), [rest[-2000:] for _, rest in outs]
    offline = pd.read_parquet(store.realtime_path)
    whole_online = sum(check_online(store, f"p{i}", b, size) == "whole" for i in range(procs) for b in range(batches))
    whole_offline = sum(check_offline(offline, f"p{i}", b, size) == "whole" for i in range(procs) for b in range(batches))
    report("online+offline pushes, 3 processes", pushes=procs * batches, rows_acknowledged=procs * batches * size,
           rows_online=whole_online * size, rows_offline=len(offline), reads=reads, read_failures=failures)
    assert whole_online == whole_offline == procs * batches
    assert len(offline) == procs * batches * size and failures == 0 and reads > 0


def _kill_mid_push(worker, rng: random.Random, after_acks: int) -> tuple[list[int], int | None]:
    """Wait for `after_acks` acknowledged pushes and the next BEGIN, sleep a little, SIGKILL; returns the
    acknowledged batches and the batch in flight."""
    acked, begun = [], None
    for line in worker.stdout:
        kind, batch = line.split(maxsplit=1)
        assert kind != "ERROR", batch
        if kind == "ACK":
            acked.append(int(batch))
        elif kind == "BEGIN":
            begun = int(batch)
            if len(acked) >= after_acks:
                time.sleep(rng.uniform(0.0, 0.25))
                break
    worker.kill()
    code, rest = worker.wait()
    assert code == -signal.SIGKILL, (code, rest)
    acked += [int(b) for b in re.findall(r"ACK (\d+)", rest)]
    return acked, begun


def test_kill_9_in_the_middle_of_offline_pushes(store):
    """A 165,400-row offline source; a process appends 2,000-row pushes and is killed at a random moment."""
    base = batch_frame("base", 0, 165_400)
    store.push_features(PUSH_SOURCE, base, to="offline")
    rng = random.Random(1)
    counts = {"kills": 0, "acked_pushes": 0, "in_flight_whole": 0, "in_flight_absent": 0, "torn": 0}
    for attempt in range(ATTEMPTS * 3):
        prefix = f"k{attempt}"
        worker = start_worker(str(store.repo_path), "offline", prefix, "50", "2000")
        acked, in_flight = _kill_mid_push(worker, rng, after_acks=rng.randint(0, 2))
        counts["kills"] += 1
        counts["acked_pushes"] += len(acked)
        frame = pd.read_parquet(store.realtime_path)  # readable after every kill
        assert len(frame) >= len(base)
        for batch in acked:
            assert check_offline(frame, prefix, batch, 2000) == "whole"
        if in_flight is not None and in_flight not in acked:
            state = check_offline(frame, prefix, in_flight, 2000)
            counts["torn"] += state == "torn"
            counts[f"in_flight_{state}"] = counts.get(f"in_flight_{state}", 0) + 1
    store.push_features(PUSH_SOURCE, batch_frame("after", 0, 10), to="offline")  # the next push succeeds
    final = pd.read_parquet(store.realtime_path)
    report("kill -9 during offline pushes", base_rows=len(base), rows_after=len(final), **counts)
    assert counts["torn"] == 0
    assert pq.read_metadata(store.realtime_path).num_rows == len(final)
    assert check_offline(final, "after", 0, 10) == "whole"
    assert not list(store.realtime_path.parent.glob(".pipeline_realtime.parquet.*.tmp"))  # killed writers' swept


def test_kill_9_in_the_middle_of_online_pushes(store):
    rng = random.Random(2)
    counts = {"kills": 0, "acked_pushes": 0, "in_flight_whole": 0, "in_flight_absent": 0, "torn": 0}
    for attempt in range(ATTEMPTS * 3):
        prefix = f"o{attempt}"
        worker = start_worker(str(store.repo_path), "online", prefix, "50", "1000")
        acked, in_flight = _kill_mid_push(worker, rng, after_acks=rng.randint(0, 2))
        counts["kills"] += 1
        counts["acked_pushes"] += len(acked)
        for batch in acked:
            assert check_online(store, prefix, batch, 1000) == "whole"
        if in_flight is not None and in_flight not in acked:
            state = check_online(store, prefix, in_flight, 1000)
            counts["torn"] += state == "torn"
            counts[f"in_flight_{state}"] = counts.get(f"in_flight_{state}", 0) + 1
    store.push_features(PUSH_SOURCE, batch_frame("after", 0, 10))
    report("kill -9 during online pushes (SQLite)", **counts)
    assert counts["torn"] == 0
    assert check_online(store, "after", 0, 10) == "whole"


def test_redis_online_store_threads_and_redis_killed(tmp_path, redis_server):
    """Redis online store (Feast's, as MULTI/EXEC): threads push while readers read; Redis is killed with
    SIGKILL: pushes fail in one line and store nothing; after a restart every acknowledged row is there."""
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    store = service(str(tmp_path / "repo"), "server", redis_server.url, registry)
    store.apply()
    size, acked, errors = 500, [], []

    def pusher(t: int) -> None:
        for attempt in range(ATTEMPTS):
            try:
                store.push_features(PUSH_SOURCE, batch_frame(f"r{t}", attempt, size))
                acked.append((f"r{t}", attempt))
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=pusher, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    torn_reads = 0
    while any(w.is_alive() for w in workers):
        for prefix, batch in list(acked)[-3:]:
            torn_reads += check_online(store, prefix, batch, size) != "whole"
        time.sleep(0.02)
    for w in workers:
        w.join()
    assert errors == [] and torn_reads == 0
    redis_server.kill()
    started = time.monotonic()
    with pytest.raises(AietlInputError, match=f"Redis online store at {redis_server.url} is unreachable") as info:
        store.push_features(PUSH_SOURCE, batch_frame("down", 0, size))
    down_seconds = time.monotonic() - started
    assert "\n" not in str(info.value)
    redis_server.start()  # same port and append-only file
    outcomes = [check_online(store, p, b, size) for p, b in acked]
    assert check_online(store, "down", 0, size) == "absent"
    store.push_features(PUSH_SOURCE, batch_frame("after", 0, 10))
    report("online pushes, 8 threads (Redis), then Redis killed", attempts=ATTEMPTS, rows_acknowledged=len(acked) * size,
           rows_stored_after_restart=outcomes.count("whole") * size, torn_reads=torn_reads,
           push_while_down_failed_in_s=round(down_seconds, 2))
    assert outcomes.count("whole") == len(acked) == 8 * ATTEMPTS
    assert check_online(store, "after", 0, 10) == "whole"
