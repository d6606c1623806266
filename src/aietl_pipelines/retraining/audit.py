"""The audit log of retraining decisions: one JSON line per decision, queryable from Python."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aietl_pipelines.datasets import JSONLinesDataset


def load_audit_log(path: str | Path = "data/08_reporting/retraining_audit.jsonl") -> pd.DataFrame:
    """Every decision (when, why, which data, result) as a frame, oldest first."""
    records = JSONLinesDataset(str(path)).load()
    return pd.json_normalize(records) if records else pd.DataFrame(
        columns=["decided_at", "train", "reason", "data_fingerprint", "result"])
