"""A pushing process for the fault tests (forked by tests/faults/conftest.py, or
`python worker.py REPO MODE PREFIX BATCHES SIZE [CONFIG REDIS REGISTRY]`).

Emits `BEGIN b` before and `ACK b` after each push returns, so the test knows which pushes were acknowledged
when it kills this process with SIGKILL.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

REALTIME = ["pipeline_realtime_features:current_cpu_usage", "pipeline_realtime_features:current_memory_usage",
            "pipeline_realtime_features:anomaly_detected"]


def batch_ids(prefix: str, batch: int, size: int) -> list[str]:
    return [f"{prefix}-{batch}-{i}" for i in range(size)]


def batch_frame(prefix: str, batch: int, size: int) -> pd.DataFrame:
    """Fresh rows: every entity new, values derived from (batch, row) so a reader can check them."""
    cpu = batch * 1000.0 + np.arange(size, dtype="float64")
    return pd.DataFrame({"pipeline_id": batch_ids(prefix, batch, size),
                         "event_timestamp": pd.Timestamp.now(tz="UTC"),
                         "current_cpu_usage": cpu, "current_memory_usage": cpu + 0.5,
                         "anomaly_detected": np.arange(size) % 2})


def service(repo: str, config: str = "embedded", redis_url: str | None = None, registry_url: str | None = None):
    from aietl_pipelines.features.store import FeatureStoreService

    options = {"repo_path": repo, "config": config}
    if config == "server":
        options.update(redis_url=redis_url, registry_url=registry_url, project="aietl_faults")
    return FeatureStoreService(**options)


def main(argv: list[str], emit=lambda line: print(line, flush=True)) -> None:
    repo, mode, prefix, batches, size = argv[:5]
    store = service(repo, *argv[5:8])
    for batch in range(int(batches)):
        frame = batch_frame(prefix, batch, int(size))
        emit(f"BEGIN {batch}")
        store.push_features("pipeline_realtime_push_source", frame, to=mode)
        emit(f"ACK {batch}")


if __name__ == "__main__":
    main(sys.argv[1:])
