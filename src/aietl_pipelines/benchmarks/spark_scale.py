"""Spark local scaling: rows/s per stage with 1 and 2 cores, parallel efficiency, and the pandas path beside.

    python -m aietl_pipelines.benchmarks.spark_scale --pipelines 200 --days 56 --cores 1,2

Each core count runs in its own process (the master is fixed when the session starts) on the same telemetry
parquet: drift (windows + Evidently's default tests), rolling features, the point-in-time training set and
connected components of a chain-heavy graph, and two dedupe stages on synthetic inputs of the same size (EM on
comparison levels, golden records). Parallel efficiency = speed-up / cores. Writes
docs/benchmarks/spark_scale.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.benchmarks._common import write_report

COLUMNS = ["duration_seconds", "cpu_usage", "memory_usage_mb", "error_count", "rows_processed", "retry_count",
           "pipeline_type", "source_system", "failed"]
TRAIN_FEATURES = ["avg_execution_time", "success_rate", "error_count", "run_count", "last_duration_seconds"]
#: Dedupe stages on synthetic inputs sized by the telemetry rows: comparison levels of PAIRS_PER_ROW pairs per row
#: (6 comparisons of 4 levels) for EM, and the runs as records in clusters of 3 for golden records.
PAIRS_PER_ROW = 10
GOLDEN_FIELDS = ["pipeline_id", "pipeline_type", "source_system", "status", "error_count"]


def _dedupe_inputs(runs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, pd.Series]:
    """Levels of candidate and random pairs, and records with their clusters (both seeded)."""
    rng = np.random.default_rng(0)
    n = len(runs)
    match = rng.random(n * PAIRS_PER_ROW) < 0.3
    levels = np.where(match[:, None], rng.choice(4, (len(match), 6), p=[0.05, 0.7, 0.15, 0.1]),
                      rng.choice(4, (len(match), 6), p=[0.05, 0.05, 0.2, 0.7])).astype(np.int8)
    random_levels = rng.choice(4, (20_000, 6), p=[0.05, 0.01, 0.14, 0.8]).astype(np.int8)
    records = runs[["run_id", *GOLDEN_FIELDS, "finished_at"]].reset_index(drop=True).astype({"run_id": str})
    return levels, random_levels, records, pd.Series(np.arange(n) // 3)


def _dedupe_stages(runs: pd.DataFrame, fit: Any, golden: Any) -> dict[str, float]:
    levels, random_levels, records, clusters = _dedupe_inputs(runs)
    names, sizes = [f"f{k}" for k in range(6)], [4] * 6
    out = {}
    t = time.perf_counter()
    fit(levels, random_levels, names, sizes)
    out["dedupe_em"] = time.perf_counter() - t
    t = time.perf_counter()
    golden(records, clusters, GOLDEN_FIELDS, "run_id", {"order": ["completeness", "recency"],
                                                       "recency_column": "finished_at"})
    out["dedupe_golden"] = time.perf_counter() - t
    return out


def _stages_spark(path: str, cores: int) -> dict[str, float]:
    from aietl_pipelines.dedupe.score import fit_model
    from aietl_pipelines.spark import drift, features, graph, retraining
    from aietl_pipelines.spark.dedupe_records import golden_records
    from aietl_pipelines.spark.patterns import pattern_counts
    from aietl_pipelines.spark.session import get_spark

    spark = get_spark({"spark.master": f"local[{cores}]", "spark.sql.shuffle.partitions": str(4 * cores),
                       "spark.driver.memory": "6g"})
    runs = spark.read.parquet(path).cache()
    n = runs.count()
    out: dict[str, float] = {"rows": float(n)}
    t = time.perf_counter()
    ref, cur = drift.split_windows(runs, "started_at", (0, 28), 7)
    drift.compute_drift(ref.select(COLUMNS), cur.select(COLUMNS))
    out["drift"] = time.perf_counter() - t
    t = time.perf_counter()
    feats = features.compute_pipeline_features(runs).cache()
    feats.count()
    out["features"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = retraining.next_run_failure_labels(runs)
    retraining.point_in_time_join(labels, feats, TRAIN_FEATURES, pd.Timedelta("7d")).count()
    out["training_set"] = time.perf_counter() - t
    t = time.perf_counter()
    ids = np.random.default_rng(0).permutation(n)  # one long chain per 1,000 nodes, ids shuffled
    edges = pd.DataFrame({"src": ids[:-1], "dst": ids[1:]})[np.arange(n - 1) % 1000 != 999]
    graph.connected_components(spark.createDataFrame(edges)).count()
    out["components"] = time.perf_counter() - t

    def fit(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int]) -> Any:
        patterns, counts = pattern_counts(spark, levels)
        return fit_model(patterns, random_levels, names, sizes, counts=counts)

    out.update(_dedupe_stages(runs.toPandas(), fit, golden_records))
    return out


def _stages_pandas(path: str) -> dict[str, float]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from aietl_pipelines.dedupe.score import fit_model
    from aietl_pipelines.dedupe.survivorship import build_golden_records
    from aietl_pipelines.drift.statistics import compute_drift
    from aietl_pipelines.drift.windows import split_windows
    from aietl_pipelines.features.compute import compute_pipeline_features
    from aietl_pipelines.features.store import point_in_time_join
    from aietl_pipelines.retraining.dataset import next_run_failure_labels

    runs = pd.read_parquet(path)
    n = len(runs)
    out: dict[str, float] = {"rows": float(n)}
    t = time.perf_counter()
    ref, cur = split_windows(runs, "started_at", (0, 28), 7)
    compute_drift(ref[COLUMNS], cur[COLUMNS])
    out["drift"] = time.perf_counter() - t
    t = time.perf_counter()
    feats = compute_pipeline_features(runs)
    out["features"] = time.perf_counter() - t
    t = time.perf_counter()
    point_in_time_join(next_run_failure_labels(runs), feats, TRAIN_FEATURES, pd.Timedelta("7d"))
    out["training_set"] = time.perf_counter() - t
    t = time.perf_counter()
    ids = np.random.default_rng(0).permutation(n)
    keep = np.arange(n - 1) % 1000 != 999
    connected_components(coo_matrix((np.ones(keep.sum()), (ids[:-1][keep], ids[1:][keep])), shape=(n, n)),
                         directed=False)
    out["components"] = time.perf_counter() - t
    out.update(_dedupe_stages(runs, fit_model, build_golden_records))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=200, help="pipelines in the generated telemetry")
    parser.add_argument("--days", type=int, default=56)
    parser.add_argument("--cores", default="1,2")
    parser.add_argument("--no-report", action="store_true",
                        help="print the table only (a smoke run must not replace docs/benchmarks/spark_scale.md)")
    parser.add_argument("--worker", nargs=2, metavar=("PATH", "CORES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        path, cores = args.worker
        print(json.dumps(_stages_pandas(path) if cores == "pandas" else _stages_spark(path, int(cores))))
        return
    from aietl_pipelines.datagen.telemetry import generate_etl_runs

    folder = Path(tempfile.mkdtemp(prefix="aietl-spark-bench-"))
    runs = generate_etl_runs(n_pipelines=args.pipelines, days=args.days, seed=1)
    for col in ("started_at", "finished_at"):
        runs[col] = runs[col].dt.floor("us").astype("datetime64[us, UTC]")
    path = str(folder / "etl_runs.parquet")
    runs.to_parquet(path, index=False)
    results = {}
    for cores in ["pandas", *args.cores.split(",")]:
        done = subprocess.run([sys.executable, "-m", "aietl_pipelines.benchmarks.spark_scale", "--worker", path, cores],
                              capture_output=True, text=True, check=True)
        results[cores] = json.loads(done.stdout.strip().splitlines()[-1])
        print(cores, results[cores], flush=True)
    stages = ["drift", "features", "training_set", "components", "dedupe_em", "dedupe_golden"]
    spark_cores = args.cores.split(",")
    rows = []
    for stage in stages:
        row = {"stage": stage, "pandas s": results["pandas"][stage]}
        for cores in spark_cores:
            row[f"spark local[{cores}] s"] = results[cores][stage]
            row[f"rows/s local[{cores}]"] = results[cores]["rows"] / results[cores][stage]
        if len(spark_cores) == 2:
            c1, c2 = spark_cores
            row["parallel efficiency"] = (results[c1][stage] / results[c2][stage]) / (int(c2) / int(c1))
        rows.append(row)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.no_report:
        return
    command = "python -m aietl_pipelines.benchmarks.spark_scale " + " ".join(argv or sys.argv[1:])
    write_report("spark_scale", command, table,
                 f"{int(results['pandas']['rows']):,} telemetry rows; connected components on a graph of "
                 "chains of 1,000 shuffled ids per 1,000 rows; dedupe_em: EM on the levels of "
                 f"{PAIRS_PER_ROW} synthetic pairs per row (6 comparisons; Spark: pattern counts then weighted EM, "
                 "pandas: EM per pair); dedupe_golden: the rows as records in clusters of 3. Rows/s counts "
                 "telemetry rows for every stage. Each column is a fresh process.")


if __name__ == "__main__":
    main()
