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
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


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
