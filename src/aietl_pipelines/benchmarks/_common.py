"""Machine description and markdown output shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd


def machine() -> str:
    """CPU model, cores and memory of this machine."""
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), model)
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    isa = ("AMX" if "amx_bf16" in flags else "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags
           else "no AVX2")
    bf16 = "native bf16" if flags & {"amx_bf16", "avx512_bf16"} else "no native bf16: float32 embeddings"
    return f"{model} ({isa}, {bf16}), {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_report(area: str, command: str, table: pd.DataFrame, notes: str = "") -> Path:
    """Write docs/benchmarks/<area>.md with the command, machine, date and the table."""
    path = Path("docs/benchmarks") / f"{area}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(
        f"# Benchmark: {area}\n\nCommand: `{command}`  \nMachine: {machine()}  \nRun: {stamp}\n\n"
        f"{table.to_markdown(index=False, floatfmt='.4g')}\n\n{notes}\n", encoding="utf-8")
    return path


def splink_dedupe(frame: pd.DataFrame, comparisons: list, blocking_rules: list[list[str]],
                  deterministic_rules: list[list[str]], em_rules: list[list[str]]) -> tuple[pd.Series, float]:
    """Splink 5.0's unsupervised recipe (DuckDB): prior from deterministic rules, u by random sampling, m by EM
    sessions, predictions clustered at 0.99. `frame` has `unique_id`; returns (cluster label per row, seconds)."""
    import time

    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t0 = time.perf_counter()
    settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=[block_on(*r) for r in blocking_rules],
                               retain_intermediate_calculation_columns=False)
    linker = Linker(DuckDBAPI().register(frame), settings, log_level="ERROR")
    linker.training.estimate_probability_two_random_records_match([block_on(*r) for r in deterministic_rules],
                                                                  recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.99).as_pandas_dataframe()
    seconds = time.perf_counter() - t0
    mapping = dict(zip(clusters["unique_id"], clusters["cluster_id"], strict=True))
    return pd.Series(pd.factorize(frame["unique_id"].map(mapping))[0], index=frame.index), seconds
