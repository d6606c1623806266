"""Deterministic ETL run telemetry with a known drift episode and failure labels.

One row per pipeline run. Each pipeline has a hidden "health" that wanders slowly (AR(1)); poor health makes
failures likely. Before ``drift_start_day`` poor health shows up as longer runs and more errors. From
``drift_start_day`` on (the drift episode, ``in_drift_episode`` = True):

- the distributions shift: runs take ~1.5x longer, CPU is ~15 points higher, memory grows, and a new
  ``source_system`` value (``kafka_stream``) appears;
- what predicts failure changes: failing pipelines now time out *early* (duration goes down with poor health)
  and poor health shows in memory use, so a model trained before the drift is stale afterwards.

Schema (dtypes as returned):

| column | dtype | meaning |
| --- | --- | --- |
| run_id | str | unique id of the run |
| pipeline_id | str | ``pipeline_001`` ... |
| pipeline_type | category | ingest / transform / export / ml |
| source_system | category | postgres / s3 / salesforce / sftp (+ kafka_stream during drift) |
| started_at, finished_at | datetime64[ns, UTC] | run start and end |
| duration_seconds | float64 | finished_at - started_at |
| status | str | ``success`` or ``failed`` |
| failed | int64 | 1 if the run failed (the label source) |
| error_count | int64 | errors logged by the run |
| rows_processed | int64 | rows the run processed |
| cpu_usage | float64 | mean CPU %, 0-100 |
| memory_usage_mb | float64 | peak memory in MB |
| retry_count | int64 | retries of the run |
| in_drift_episode | bool | ground truth: the run is inside the drift episode |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PIPELINE_TYPES = ("ingest", "transform", "export", "ml")
SOURCE_SYSTEMS = ("postgres", "s3", "salesforce", "sftp")
DRIFT_SOURCE = "kafka_stream"


def generate_etl_runs(
    n_pipelines: int = 40,
    days: int = 56,
    runs_per_day: int = 24,
    drift_start_day: int | None = 42,
    seed: int = 7,
    start: str = "2026-09-01",
) -> pd.DataFrame:
    """Generate ETL run telemetry (see the module docstring for the schema and the drift episode).

    Args:
        n_pipelines: Number of pipelines.
        days: Number of days covered.
        runs_per_day: Runs per pipeline per day (evenly spaced, with jitter).
        drift_start_day: Day the drift episode starts; None for no drift at all.
        seed: Random seed; the same arguments always give the same frame.
        start: First day (UTC).

    Returns:
        One row per run, sorted by started_at then pipeline_id.
    """
    if n_pipelines < 1 or days < 1 or runs_per_day < 1:
        raise ValueError("n_pipelines, days and runs_per_day must be positive")
    rng = np.random.default_rng(seed)
    n_steps = days * runs_per_day
    step = pd.Timedelta(hours=24) / runs_per_day

    ptype = rng.choice(len(PIPELINE_TYPES), size=n_pipelines)
    psource = rng.choice(len(SOURCE_SYSTEMS), size=n_pipelines)
    base_duration = rng.lognormal(mean=np.log(300), sigma=0.6, size=n_pipelines)
    base_cpu = rng.uniform(20, 60, size=n_pipelines)
    base_memory = rng.lognormal(mean=np.log(1500), sigma=0.4, size=n_pipelines)
    base_rows = rng.lognormal(mean=np.log(50_000), sigma=1.0, size=n_pipelines)
    offset = rng.uniform(0, step.total_seconds(), size=n_pipelines)

    # hidden health (h) drives failures; g is an unrelated process of the same kind
    health = np.empty((n_steps, n_pipelines))
    other = np.empty((n_steps, n_pipelines))
    health[0] = rng.normal(0, 1, n_pipelines)
    other[0] = rng.normal(0, 1, n_pipelines)
    phi, sd = 0.95, np.sqrt(1 - 0.95**2)
    for t in range(1, n_steps):
        health[t] = phi * health[t - 1] + sd * rng.normal(0, 1, n_pipelines)
        other[t] = phi * other[t - 1] + sd * rng.normal(0, 1, n_pipelines)

    step_idx = np.repeat(np.arange(n_steps), n_pipelines)
    pipe_idx = np.tile(np.arange(n_pipelines), n_steps)
    h = health.ravel()
    g = other.ravel()
    n = h.size
    drift = (
        np.zeros(n, dtype=bool)
        if drift_start_day is None
        else step_idx >= drift_start_day * runs_per_day
    )

    noise = rng.normal(0, 0.15, n)
    log_dur_pre = 0.45 * h + noise
    log_dur_post = np.log(1.5) - 0.45 * h + 0.2 * g + noise  # failing pipelines now time out early
    duration = base_duration[pipe_idx] * np.exp(np.where(drift, log_dur_post, log_dur_pre))

    cpu = base_cpu[pipe_idx] + 5 * rng.normal(0, 1, n) + np.where(drift, 15 + 3 * h, 0)
    cpu = np.clip(cpu, 0.5, 100.0)
    memory = base_memory[pipe_idx] * np.exp(
        0.05 * rng.normal(0, 1, n) + np.where(drift, 0.25 + 0.35 * h, 0.05 * g)
    )

    p_fail = 1 / (1 + np.exp(-(-3.0 + 1.7 * h)))
    failed = rng.random(n) < p_fail
    error_lambda = np.exp(-1.2 + np.where(drift, 0.3 * g, 0.7 * h))
    errors = rng.poisson(error_lambda) + failed.astype(int) * (1 + rng.poisson(1.0, n))
    retries = rng.poisson(0.1 + 0.8 * failed)
    rows = np.round(base_rows[pipe_idx] * np.exp(rng.normal(0, 0.2, n)) * np.where(failed, 0.3, 1.0))

    t0 = pd.Timestamp(start, tz="UTC")
    jitter = rng.uniform(0, 120, n)
    started = t0 + pd.to_timedelta(step_idx * step.total_seconds() + offset[pipe_idx] + jitter, unit="s")
    finished = started + pd.to_timedelta(duration, unit="s")

    source = np.array(SOURCE_SYSTEMS + (DRIFT_SOURCE,), dtype=object)[psource[pipe_idx]]
    switch = drift & (rng.random(n) < 0.3)
    source[switch] = DRIFT_SOURCE

    frame = pd.DataFrame(
        {
            "run_id": [f"run_{i:08d}" for i in range(n)],
            "pipeline_id": np.array([f"pipeline_{i + 1:03d}" for i in range(n_pipelines)])[pipe_idx],
            "pipeline_type": pd.Categorical(
                np.array(PIPELINE_TYPES)[ptype[pipe_idx]], categories=PIPELINE_TYPES
            ),
            "source_system": pd.Categorical(source, categories=SOURCE_SYSTEMS + (DRIFT_SOURCE,)),
            "started_at": started,
            "finished_at": finished,
            "duration_seconds": duration.astype("float64"),
            "status": np.where(failed, "failed", "success"),
            "failed": failed.astype("int64"),
            "error_count": errors.astype("int64"),
            "rows_processed": rows.astype("int64"),
            "cpu_usage": cpu.astype("float64"),
            "memory_usage_mb": memory.astype("float64"),
            "retry_count": retries.astype("int64"),
            "in_drift_episode": drift,
        }
    )
    return frame.sort_values(["started_at", "pipeline_id"], kind="stable").reset_index(drop=True)
