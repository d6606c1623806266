"""Drift detection: this project vs Evidently 0.7.23's DataDriftPreset on the same generated data, one run.

Data: 16 numeric + 4 categorical columns, reference and current of n rows each, some columns shifted.
Each tool runs in its own subprocess (time and peak memory above the input frames), HTML report included;
every column's verdict is compared. `python -m aietl_pipelines.benchmarks.drift [--quick] [--sizes ...]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from aietl_pipelines.benchmarks._common import write_report

EVIDENTLY_METHODS = {"K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z",
                     "Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon"}


def make_frames(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames; numeric columns 0-3 and categorical 0-1 drift."""
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for i in range(16):
        shift = 0.3 if i < 4 else 0.0
        ref[f"num_{i}"] = rng.normal(0, 1, n)
        cur[f"num_{i}"] = rng.normal(shift, 1, n)
    cats = np.array(list("abcdefgh"))
    for i in range(4):
        p_ref = np.full(8, 1 / 8)
        p_cur = np.r_[np.full(4, 0.2), np.full(4, 0.05)] if i < 2 else p_ref
        ref[f"cat_{i}"] = pd.Categorical(rng.choice(cats, n, p=p_ref))
        cur[f"cat_{i}"] = pd.Categorical(rng.choice(cats, n, p=p_cur))
    return pd.DataFrame(ref), pd.DataFrame(cur)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(tool: str, n: int, out: str) -> None:
    """Run one tool once on freshly generated frames; print JSON with time, memory and verdicts."""
    ref, cur = make_frames(n)
    import gc

    gc.collect()
    base = _rss_mb()
    html = Path(out) / f"{tool}_{n}.html"
    if tool == "aietl":
        from aietl_pipelines.drift.report import render_html_report
        from aietl_pipelines.drift.statistics import compute_drift
        from aietl_pipelines.drift.summary import summarize_drift

        t0 = time.perf_counter()
        table, skipped = compute_drift(ref, cur)
        t_stats = time.perf_counter() - t0
        summary = summarize_drift(table, skipped)
        html.write_text(render_html_report(summary, ref, cur), encoding="utf-8")
        seconds = time.perf_counter() - t0
        verdicts = {r["column"]: [r["test"], r["score"], bool(r["drifted"])] for r in summary["per_column"]}
    else:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        t0 = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        t_stats = time.perf_counter() - t0
        snapshot.save_html(str(html))
        seconds = time.perf_counter() - t0
        verdicts = {}
        for metric in snapshot.dict()["metrics"]:
            cfg = metric["config"]
            if cfg.get("type", "").endswith("ValueDrift"):
                test = EVIDENTLY_METHODS.get(cfg["method"], cfg["method"])
                value = float(metric["value"])
                thr = float(cfg["threshold"])
                drifted = value <= thr if test == "ks" else value < thr if test in ("chisquare", "z") else value >= thr
                verdicts[cfg["column"]] = [test, value, drifted]
    print(json.dumps({"tool": tool, "n": n, "seconds": seconds, "stats_seconds": t_stats,
                      "peak_mb_above_input": _rss_mb() - base, "verdicts": verdicts}))


def run_worker(tool: str, n: int, out: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "aietl_pipelines.benchmarks.drift", "--worker", tool, str(n), out],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "N", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="10K rows only")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool and size (median reported)")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return
    sizes = [10_000] if args.quick else args.sizes
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for n in sizes:
            results = {tool: [run_worker(tool, n, out) for _ in range(args.repeats)] for tool in ("aietl", "evidently")}
            ours, theirs = results["aietl"][0]["verdicts"], results["evidently"][0]["verdicts"]
            same_test = sum(ours[c][0] == theirs[c][0] for c in theirs)
            same_verdict = sum(ours[c][2] == theirs[c][2] for c in theirs)
            max_rel = max(abs(ours[c][1] - theirs[c][1]) / max(abs(theirs[c][1]), 1e-300) for c in theirs)
            med = {t: statistics.median(r["seconds"] for r in results[t]) for t in results}
            for tool in ("aietl", "evidently"):
                rows.append({
                    "rows": n, "tool": tool, "seconds (median, with HTML)": med[tool],
                    "statistics seconds (median)": statistics.median(r["stats_seconds"] for r in results[tool]),
                    "peak MB above input": max(r["peak_mb_above_input"] for r in results[tool]),
                    "speed-up vs Evidently": med["evidently"] / med[tool],
                    "same test / verdict": f"{same_test}/{len(theirs)} / {same_verdict}/{len(theirs)}",
                    "max relative score difference": max_rel,
                })
            print(pd.DataFrame(rows[-2:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    cmd = "python -m aietl_pipelines.benchmarks.drift" + (" --quick" if args.quick else "")
    write_report("drift", cmd + (f" --repeats {args.repeats}" if args.repeats != 3 else ""), table,
                 "Each tool runs in a fresh subprocess per repetition; 20 columns (16 numeric, 4 categorical), "
                 "reference and current of `rows` rows each; 6 columns shifted.")


if __name__ == "__main__":
    main()
