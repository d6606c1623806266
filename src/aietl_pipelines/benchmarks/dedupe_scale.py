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

Scaling (`--sizes 100000,300000,1000000`): per size, in fresh processes, the records are generated once
(written to parquet, not timed), then a cold run of the dedupe stages one by one (prepare, embed, candidates,
compare, score, cluster) with the time of each, the peak RSS, pair completeness and pairwise F1, and Splink 5.0 on
the same records; `--text-sizes 100000` adds cold free-text runs (`full_text`). The growth exponent b of each
stage is fitted as time ~ N^b over the sizes (least squares on logs). Each size's rows are kept in
`--results-dir` (default data/benchmarks/dedupe_scale), so `--reuse` can add a size measured earlier
(docs/scale.md). Report: docs/benchmarks/dedupe_scale_sizes.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from functools import partial
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
    base, _ = make_records(args.records, args.new)
    return _splink_row(base, args)


def _splink_row(base: pd.DataFrame, args: argparse.Namespace) -> dict:
    import splink.comparison_library as cl

    from aietl_pipelines.dedupe.engine import prepare_records
    from aietl_pipelines.dedupe.evaluate import pairwise_scores

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


STAGES = ("prepare", "embed", "candidates", "compare", "rule_rates", "score", "cluster")


def _records_file(args: argparse.Namespace) -> Path:
    return Path(args.dir) / f"records_{args.records}.parquet"


def _cpu_seconds() -> float:
    """CPU time of this process (all threads): unlike wall time, barely changed by other work on the machine."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_generate(args: argparse.Namespace) -> dict:
    base, _ = make_records(args.records, 0)
    base.to_parquet(_records_file(args), index=False)
    return {"records": len(base)}


def worker_stages(args: argparse.Namespace) -> dict:
    """A cold run (empty embedding cache) of the stages one by one: seconds per stage, peak RSS, quality."""
    from aietl_pipelines.dedupe.engine import run_counts
    from aietl_pipelines.dedupe.steps import steps_for

    base = pd.read_parquet(_records_file(args))
    truth = pd.factorize(base["true_cluster_id"])[0]
    config = _config(f"{args.dir}/cache_{args.mode}_{args.records}")
    if args.mode == "text":
        config.text_column, config.fields, config.blocking = "full_text", {}, []
    steps = steps_for(config)
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}

    peaks: dict[str, float] = {}

    def timed(stage: str, fn, *a):
        t0, c0 = time.perf_counter(), _cpu_seconds()
        out = fn(*a)
        times[stage], cpu[stage] = time.perf_counter() - t0, _cpu_seconds() - c0
        peaks[stage] = peak_rss_mb()
        print(f"{stage}: {times[stage]:.1f} s, peak RSS so far {peaks[stage]:,.0f} MB", file=sys.stderr, flush=True)
        return out

    prepared = timed("prepare", steps.prepare, base, config)
    vectors = timed("embed", steps.embed, prepared, config)
    pairs, _ = timed("candidates", steps.candidates, prepared, vectors, config)
    levels, random_levels, names, sizes = timed("compare", steps.compare, prepared, pairs, vectors, config)
    rates = timed("rule_rates", steps.rule_rates, prepared, config)
    probability, _ = timed("score", partial(steps.score, rule_rates=rates), levels, random_levels, names, sizes, config)
    pairs = pairs.assign(match_probability=probability)
    clusters = timed("cluster", steps.cluster, prepared, pairs, probability, config)
    result = type("R", (), {"pairs": pairs, "clusters": clusters})
    counts = run_counts(prepared, clusters, config)
    return {"records": args.records, "mode": args.mode, "tool": "aietl dedupe",
            "seconds": sum(times.values()), **{f"{k}_s": v for k, v in times.items()},
            "cpu_seconds": sum(cpu.values()), **{f"{k}_cpu_s": v for k, v in cpu.items()},
            "peak_rss_mb": peak_rss_mb(), "peak_stage": next(s for s, p in peaks.items() if p >= max(peaks.values())),
            "candidate_pairs": len(pairs),
            "oversized_blocks": counts.get("n_dropped_blocks", float("nan")), **_quality(result, truth)}


def worker_splink_size(args: argparse.Namespace) -> dict:
    base = pd.read_parquet(_records_file(args))
    row = _splink_row(base, args)
    return {"records": args.records, "mode": "structured", **row}


WORKERS = {"generate": worker_generate, "stages": worker_stages, "splink_size": worker_splink_size,
           "cold": worker_cold, "incremental": worker_incremental, "splink": worker_splink, "search": worker_search}


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


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    """b of time ~ N^b, least squares on log time against log N (NaN with fewer than two sizes)."""
    ok = [(n, t) for n, t in zip(sizes, seconds, strict=True) if t and t > 0 and np.isfinite(t)]
    if len({n for n, _ in ok}) < 2:
        return float("nan")
    return float(np.polyfit(np.log([n for n, _ in ok]), np.log([t for _, t in ok]), 1)[0])


def scaling(args: argparse.Namespace) -> None:
    """Per size: generate, cold staged run, Splink; then the growth exponent of each stage."""
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    jobs = [(n, "structured") for n in _sizes(args.sizes)] + [(n, "text") for n in _sizes(args.text_sizes)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        args.dir = tmp
        for n, mode in jobs:
            saved = results / f"{mode}_{n}.json"
            if args.report_only and not saved.exists():
                print(f"no result for {mode} {n:,} in {results}: left out", flush=True)
                continue
            if (args.reuse or args.report_only) and saved.exists():
                found = json.loads(saved.read_text())
                print(f"reusing {saved}", flush=True)
                rows.extend(found)
                continue
            args.records = n
            _spawn("generate", args)
            found = [_spawn("stages", args, "--mode", mode)]
            if mode == "structured" and not args.no_splink:
                found.append(_spawn("splink_size", args))
            _records_file(args).unlink()
            saved.write_text(json.dumps(found))
            rows.extend(found)
    table = pd.DataFrame(rows)
    ours = table[(table["tool"] == "aietl dedupe") & (table["mode"] == "structured")].sort_values("records")
    growth = {"records": "growth exponent b (time ~ N^b)", "mode": "structured", "tool": "aietl dedupe"}
    for column in [f"{s}_s" for s in STAGES] + ["seconds"] + [f"{s}_cpu_s" for s in STAGES] + ["cpu_seconds"]:
        growth[column] = growth_exponent(ours["records"].tolist(), ours[column].tolist())
    theirs = table[table["tool"] != "aietl dedupe"].sort_values("records")
    if len(theirs) > 1:
        table = pd.concat([table, pd.DataFrame([growth, {"records": "growth exponent b (time ~ N^b)",
                                                          "mode": "structured", "tool": theirs["tool"].iloc[0],
                                                          "seconds": growth_exponent(theirs["records"].tolist(),
                                                                                     theirs["seconds"].tolist())}])])
    else:
        table = pd.concat([table, pd.DataFrame([growth])])
    print(table.to_string(index=False))
    command = f"python -m aietl_pipelines.benchmarks.dedupe_scale --sizes {args.sizes}"
    if args.text_sizes:
        command += f" --text-sizes {args.text_sizes}"
    write_report("dedupe_scale_sizes", command, table,
                 "Each size runs in fresh processes (generation untimed); `seconds` is the sum of the stage times of a "
                 "cold run (empty embedding cache), `cpu_seconds` the CPU time of that process (all threads; on a "
                 "shared machine it is the steadier figure); `peak_rss_mb` is the process's peak resident memory, "
                 "records included, and `peak_stage` the stage during which it was reached. Splink gets the same "
                 "normalised fields. The growth exponent b is the least-squares slope of log time against log N over "
                 "the sizes. Structured records: the rule agreement rates are counted inside `prepare`, from the "
                 "integer codes of its normalisation (`scoring.prepare_with_rule_rates`), so `rule_rates_s` only "
                 "reads them back; free text has no codes and counts them in `rule_rates_s`.")


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
    parser.add_argument("--mode", default="structured", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help="scaling run: comma-separated record counts, e.g. 100000,300000,1000000")
    parser.add_argument("--text-sizes", default="", help="scaling run: free-text cold runs at these sizes")
    parser.add_argument("--no-splink", action="store_true", help="scaling run: skip Splink")
    parser.add_argument("--reuse", action="store_true", help="scaling run: reuse sizes already in --results-dir")
    parser.add_argument("--report-only", action="store_true",
                        help="scaling run: only write the report from the sizes already in --results-dir")
    parser.add_argument("--results-dir", default="data/benchmarks/dedupe_scale")
    args = parser.parse_args()
    if args.sizes and not args.worker:
        scaling(args)
        return
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
