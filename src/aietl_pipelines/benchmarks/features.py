"""Feature store: this project's adapter vs stock Feast 0.67 calls on the same repo, in one run.

- historical features for 100K and 1M entity rows (with repeated (pipeline_id, timestamp) rows): time and
  whether the result has one row per entity row and equals a pandas merge_asof reference;
- online features for one entity: p50/p99 over 2,000 reads (SQLite in process; Redis when reachable);
- materialize 1M rows / 100K entities into the SQLite online store: the adapter's bulk writer (median of 3) and
  Feast's own materialize, and whether the two online tables are byte-for-byte equal.

`python -m aietl_pipelines.benchmarks.features [--quick]`.
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import tempfile
import time

import numpy as np
import pandas as pd

from aietl_pipelines.benchmarks._common import write_report
from aietl_pipelines.features.definitions import BATCH_FIELDS
from aietl_pipelines.features.store import FeatureStoreService

FEATURES = ["avg_execution_time", "success_rate", "error_count"]


def make_features(n_entities: int, rows_per_entity: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_entities * rows_per_entity
    ts = pd.Timestamp("2026-09-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 6 * 86400, n), unit="s")
    frame = pd.DataFrame({"pipeline_id": np.repeat([f"p{i:07d}" for i in range(n_entities)], rows_per_entity),
                          "event_timestamp": ts})
    for name, dtype in BATCH_FIELDS.items():
        frame[name] = rng.normal(100, 10, n) if "Float" in str(dtype) else rng.integers(0, 10, n)
    frame["failure_probability"] = rng.random(n)
    frame["created_timestamp"] = frame["event_timestamp"]
    return frame


def make_entity_df(features: pd.DataFrame, n_rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = features["pipeline_id"].unique()
    base = pd.DataFrame({"pipeline_id": rng.choice(ids, n_rows // 2),
                         "event_timestamp": pd.Timestamp("2026-09-03", tz="UTC")
                         + pd.to_timedelta(rng.integers(0, 5 * 86400, n_rows // 2), unit="s")})
    return pd.concat([base, base], ignore_index=True)  # every (pipeline_id, timestamp) twice


def reference(entity_df: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    left = entity_df.reset_index().sort_values("event_timestamp")
    right = features.sort_values(["event_timestamp", "created_timestamp"]).drop_duplicates(
        ["pipeline_id", "event_timestamp"], keep="last").rename(columns={"event_timestamp": "fts"})
    merged = pd.merge_asof(left, right[["pipeline_id", "fts", *FEATURES]], left_on="event_timestamp", right_on="fts",
                           by="pipeline_id", direction="backward", tolerance=pd.Timedelta(days=7))
    return merged.sort_values("index").reset_index(drop=True)


def _equal(result: pd.DataFrame, expected: pd.DataFrame) -> bool:
    if len(result) != len(expected):
        return False
    return all(np.allclose(result[f].to_numpy(float), expected[f].to_numpy(float), equal_nan=True) for f in FEATURES)


def _online_tables_equal(a: str, b: str) -> bool:
    sql = ("SELECT entity_key, feature_name, value, value_text, event_ts, created_ts "
           "FROM aietl_pipeline_features ORDER BY 1, 2")
    with sqlite3.connect(a) as left, sqlite3.connect(b) as right:
        return left.execute(sql).fetchall() == right.execute(sql).fetchall()


def _timed(fn, repeats: int = 3):
    """Median wall time of `repeats` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def _percentiles(fn, n: int = 2000) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_entities, per_entity = (10_000, 10) if args.quick else (100_000, 10)
    sizes = [10_000] if args.quick else [100_000, 1_000_000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        features = make_features(n_entities, per_entity)
        service = FeatureStoreService(repo_path=f"{tmp}/repo", features_path=f"{tmp}/features.parquet")
        service.write_offline_source(features)
        service.apply()
        refs = [f"pipeline_features:{f}" for f in FEATURES]
        for n in sizes:
            entity_df = make_entity_df(features, n)
            expected = reference(entity_df, features)
            t_ours, ours = _timed(lambda e=entity_df: service.get_historical_features(e, refs))
            rows.append({"operation": f"historical, {n:,} entity rows", "tool": "aietl adapter (NumPy point-in-time join), median of 3",
                         "seconds": t_ours, "rows returned": len(ours), "equals merge_asof": _equal(ours, expected)})
            t0 = time.perf_counter()
            stock = service.store.get_historical_features(entity_df=entity_df, features=refs).to_df()
            t_stock = time.perf_counter() - t0
            stock_sorted = stock.sort_values(["pipeline_id", "event_timestamp"]).reset_index(drop=True)
            exp_sorted = expected.sort_values(["pipeline_id", "event_timestamp"]).reset_index(drop=True)
            rows.append({"operation": f"historical, {n:,} entity rows", "tool": "stock Feast 0.67 (dask file store)",
                         "seconds": t_stock, "rows returned": len(stock), "equals merge_asof": _equal(stock_sorted, exp_sorted)})
            print(pd.DataFrame(rows[-2:]).to_string(index=False), flush=True)
        start = features["event_timestamp"].min().to_pydatetime()
        end = (features["event_timestamp"].max() + pd.Timedelta(seconds=1)).to_pydatetime()
        stock_svc = FeatureStoreService(repo_path=f"{tmp}/repo_stock", features_path=f"{tmp}/features.parquet")
        stock_svc.apply()
        t_mat = []
        for _ in range(3):  # each repeat rewrites every entity (upserts into the filled table after the first)
            t0 = time.perf_counter()
            service.materialize(start, end)
            t_mat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stock_svc.store.materialize(start_date=start, end_date=end, feature_views=["pipeline_features"])
        t_stock = time.perf_counter() - t0
        same = _online_tables_equal(f"{tmp}/repo/data/online_store.db", f"{tmp}/repo_stock/data/online_store.db")
        label = f"materialize {len(features):,} rows / {n_entities:,} entities (SQLite)"
        rows.append({"operation": label, "tool": "aietl adapter (bulk SQLite writer), median of 3",
                     "seconds": float(np.median(t_mat)), "rows returned": None,
                     "equals merge_asof": None, "online table equals stock Feast's": same})
        rows.append({"operation": label, "tool": "stock Feast 0.67 materialize", "seconds": t_stock,
                     "rows returned": None, "equals merge_asof": None})
        print(pd.DataFrame(rows[-2:]).to_string(index=False), flush=True)
        p50, p99 = _percentiles(lambda: service.get_pipeline_features(["p0000042"], FEATURES))
        rows.append({"operation": "online, 1 entity (SQLite, in process)", "tool": "aietl service (Feast get_online_features)",
                     "seconds": p99 / 1000, "rows returned": 1, "equals merge_asof": None, "p50 ms": p50, "p99 ms": p99})
        try:
            socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
            redis_ok = True
        except OSError:
            redis_ok = False
        if redis_ok:
            small = features[features["pipeline_id"].isin([f"p{i:07d}" for i in range(1000)])]
            rsvc = FeatureStoreService(repo_path=f"{tmp}/repo_redis", features_path=f"{tmp}/small.parquet", config="server",
                                       registry_url=f"sqlite:///{tmp}/registry.db", project="aietl_bench")
            rsvc.write_offline_source(small)
            rsvc.apply()
            rsvc.materialize(start, end)
            p50, p99 = _percentiles(lambda: rsvc.get_pipeline_features(["p0000042"], FEATURES))
            rows.append({"operation": "online, 1 entity (Redis 127.0.0.1)", "tool": "aietl service (Feast get_online_features)",
                         "seconds": p99 / 1000, "rows returned": 1, "equals merge_asof": None, "p50 ms": p50, "p99 ms": p99})
            rsvc.store.teardown()
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    write_report("features", "python -m aietl_pipelines.benchmarks.features" + (" --quick" if args.quick else ""), table,
                 f"Offline source: {len(features):,} feature rows for {n_entities:,} entities. Entity frames repeat every "
                 "(pipeline_id, timestamp) twice. Adapter times: median of 3 calls; stock Feast: one call each (it is the slow side).")


if __name__ == "__main__":
    main()
