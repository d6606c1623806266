"""Dedupe at 100K records: cold end-to-end run, incremental run, and find_duplicates latency, in one command.

Data: the project's customer generator (several sources, known clusters), shuffled; the first `--records` rows
are the base, the next `--new` rows arrive later. Steps, each in a fresh subprocess (time and peak memory):

1. cold: the dedupe engine on the base with an empty embedding cache (structured fields of
   conf/base/parameters_dedupe.yml): time, peak RSS, pair completeness / reduction ratio of the candidates,
   pairwise F1; its state is saved;
2. incremental: the new records against the saved state (only they are embedded and compared);
3. Splink 5.0 on the same base records (the tool we compete with on structured records);
4. find_duplicates on a collection of the base records (query text embedded per call): p50/p95 on the
   Qdrant Edge backend (the embedded default) and on qdrant-client local mode.

`python -m aietl_pipelines.benchmarks.dedupe_scale [--records 100000] [--new 1000]`; with `--write-records DIR`
it only writes the records, for measuring `kedro run --pipeline dedupe` on them (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from aietl_pipelines.benchmarks._common import peak_rss_mb, splink_dedupe, write_report

PARAMS = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_dedupe.yml"


def make_records(n_base: int, n_new: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Base and new customer records (new ones include duplicates of base people)."""
    from aietl_pipelines.datagen.customers import generate_customers

    n_entities = int((n_base + n_new) / 1.9) + 1000
    records = generate_customers(n_entities=n_entities, seed=seed)
    records = records.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if len(records) < n_base + n_new:
        raise SystemExit(f"generator gave {len(records)} records, fewer than {n_base + n_new}")
    return records.iloc[:n_base].reset_index(drop=True), records.iloc[n_base:n_base + n_new].reset_index(drop=True)


def _config(cache_dir: str):
    from aietl_pipelines.dedupe.engine import DedupeConfig

    params = yaml.safe_load(PARAMS.read_text())["dedupe"]
    return DedupeConfig.from_params({**params, "cache_dir": cache_dir})


def _quality(result, truth: np.ndarray) -> dict:
    from aietl_pipelines.dedupe.evaluate import candidate_quality, pairwise_scores

    q = candidate_quality(result.pairs["left"].to_numpy(), result.pairs["right"].to_numpy(), truth)
    s = pairwise_scores(result.clusters["cluster_id"].to_numpy(), truth)
    return {"pair_completeness": q["pair_completeness"], "reduction_ratio": q["reduction_ratio"],
            "f1": s["f1"], "precision": s["precision"], "recall": s["recall"]}


def worker_cold(args: argparse.Namespace) -> dict:
    from aietl_pipelines.dedupe import engine

    base, _ = make_records(args.records, args.new)
    truth = pd.factorize(base["true_cluster_id"])[0]
    config = _config(f"{args.dir}/cache")
    t0 = time.perf_counter()
    result = engine.run(base, config, keep_state=True)
    seconds = time.perf_counter() - t0
    engine.save_state(result.state, f"{args.dir}/state")
    return {"step": f"cold run, {len(base):,} records (embeddings included)", "tool": "aietl dedupe",
            "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "candidate_pairs": len(result.pairs),
            **_quality(result, truth)}


def worker_incremental(args: argparse.Namespace) -> dict:
    from aietl_pipelines.dedupe import engine
    from aietl_pipelines.embeddings import EmbeddingCache

    base, new = make_records(args.records, args.new)
    combined_truth = pd.factorize(pd.concat([base["true_cluster_id"], new["true_cluster_id"]]))[0]
    config = _config(f"{args.dir}/cache")
    cached_before = len(EmbeddingCache(config.cache_dir))  # every text the model embeds lands in the cache
    t0 = time.perf_counter()
    state = engine.load_state(f"{args.dir}/state")
    result = engine.run_incremental(new, state, config)
    seconds = time.perf_counter() - t0
    quality = _quality(result, combined_truth)
    return {"step": f"incremental: {len(new):,} new vs {len(base):,} (state load included)", "tool": "aietl dedupe",
            "seconds": seconds, "peak_rss_mb": peak_rss_mb(), "candidate_pairs": len(result.pairs),
            "texts embedded": len(EmbeddingCache(config.cache_dir)) - cached_before, **{k: quality[k] for k in ("f1", "precision", "recall")}}


def worker_splink(args: argparse.Namespace) -> dict:
    import splink.comparison_library as cl

    from aietl_pipelines.dedupe.engine import prepare_records
    from aietl_pipelines.dedupe.evaluate import pairwise_scores

    base, _ = make_records(args.records, args.new)
    truth = pd.factorize(base["true_cluster_id"])[0]
    t0 = time.perf_counter()
    # Splink gets the same normalised fields our comparisons see (phones, dates, e-mails in one format each):
    # on the raw fields its EM fails (dates come in four formats, so the date blocks hold no matches)
    prepared = prepare_records(base, _config(f"{args.dir}/cache"))
    frame = prepared.drop(columns=["__text"]).rename(columns={"record_id": "unique_id"})
    prepare_seconds = time.perf_counter() - t0
    comparisons = [cl.JaroWinklerAtThresholds("first_name", [0.9]), cl.JaroWinklerAtThresholds("last_name", [0.9]),
                   cl.JaroWinklerAtThresholds("street", [0.9]), cl.JaroWinklerAtThresholds("city", [0.9]),
                   cl.ExactMatch("postcode"), cl.ExactMatch("state"), cl.ExactMatch("phone"),
                   cl.ExactMatch("email"), cl.ExactMatch("date_of_birth")]
    labels, seconds = splink_dedupe(
        frame, comparisons,
        [["email"], ["phone"], ["date_of_birth", "last_name"], ["postcode", "last_name"], ["first_name", "last_name"],
         ["street", "postcode"]],
        [["first_name", "last_name", "date_of_birth"], ["email"]], [["date_of_birth"], ["postcode"]])
    s = pairwise_scores(labels.to_numpy(), truth)
    return {"step": f"cold run, {len(base):,} records", "tool": "Splink 5.0 (unsupervised EM, DuckDB)",
            "seconds": prepare_seconds + seconds, "peak_rss_mb": peak_rss_mb(), "f1": s["f1"],
            "precision": s["precision"], "recall": s["recall"]}


def worker_search(args: argparse.Namespace) -> dict:
    from aietl_pipelines.dedupe import engine
    from aietl_pipelines.services.vector_search import TEXT_KEY, VectorSearchService

    base, new = make_records(args.records, args.new)
    state = engine.load_state(f"{args.dir}/state")  # the cold run's vectors: nothing is embedded twice
    texts = state.prepared["__text"].tolist()
    queries = engine.prepare_records(new, _config(f"{args.dir}/cache"))["__text"].tolist()[: args.queries]
    provider = args.provider
    n_points = len(texts) if provider == "qdrant" else min(len(texts), args.local_points)
    service = VectorSearchService(provider="qdrant" if provider == "qdrant" else "qdrant_local",
                                  **({"path": f"{args.dir}/edge"} if provider == "qdrant" else {}))
    service.create_collection_sync("customers", recreate=True)
    t0 = time.perf_counter()
    service.store.upsert("customers", state.prepared["record_id"].tolist()[:n_points], state.vectors[:n_points],
                         [{TEXT_KEY: t} for t in texts[:n_points]])
    index_seconds = time.perf_counter() - t0
    service.find_duplicates_sync("customers", queries[0])  # load the model
    times = []
    for text in queries:
        t0 = time.perf_counter()
        service.find_duplicates_sync("customers", text, limit=10)
        times.append((time.perf_counter() - t0) * 1000)
    label = ("Qdrant Edge (embedded engine, HNSW): aietl default" if provider == "qdrant"
             else "qdrant-client local mode")
    return {"step": f"find_duplicates on {n_points:,} records (query embedding included)", "tool": label,
            "seconds": index_seconds, "p50 ms": float(np.percentile(times, 50)),
            "p95 ms": float(np.percentile(times, 95)), "queries": len(times), "peak_rss_mb": peak_rss_mb()}


WORKERS = {"cold": worker_cold, "incremental": worker_incremental, "splink": worker_splink, "search": worker_search}


def _spawn(step: str, args: argparse.Namespace, *extra: str) -> dict:
    command = [sys.executable, "-m", "aietl_pipelines.benchmarks.dedupe_scale", "--worker", step, "--dir", args.dir,
               "--records", str(args.records), "--new", str(args.new), "--queries", str(args.queries),
               "--local-points", str(args.local_points), *extra]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"step {step} failed:\n{proc.stderr[-4000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--local-points", type=int, default=100_000, help="points for qdrant-client local mode")
    parser.add_argument("--write-records", metavar="DIR",
                        help="only write DIR/customers_base.parquet and DIR/customers_new.parquet (for kedro run)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--provider", default="qdrant", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    if args.write_records:
        base, new = make_records(args.records, args.new)
        Path(args.write_records).mkdir(parents=True, exist_ok=True)
        base.to_parquet(Path(args.write_records) / "customers_base.parquet", index=False)
        new.to_parquet(Path(args.write_records) / "customers_new.parquet", index=False)
        print(f"wrote {len(base):,} + {len(new):,} records to {args.write_records}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.dir = tmp
        rows = [_spawn("cold", args), _spawn("incremental", args), _spawn("splink", args),
                _spawn("search", args, "--provider", "qdrant"), _spawn("search", args, "--provider", "qdrant_local")]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    command = "python -m aietl_pipelines.benchmarks.dedupe_scale"
    if args.records != 100_000 or args.new != 1_000:
        command += f" --records {args.records} --new {args.new}"
    write_report("dedupe_scale", command, table,
                 "Each step runs in a fresh process; `peak_rss_mb` is that process's peak resident memory. The cold "
                 "run starts with an empty embedding cache. For find_duplicates, `seconds` is the time to load the "
                 "collection (Qdrant Edge builds its HNSW index during the upsert); latencies include embedding the query text "
                 "and scoring the hits with the match model.")


if __name__ == "__main__":
    main()
