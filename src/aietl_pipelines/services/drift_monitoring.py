"""The guide's drift monitoring API: `get_drift_monitoring_service()`.

Methods named as in the guide are async (``await service.detect_data_drift(...)``); each has a sync twin with
the suffix ``_sync`` for notebooks and scripts. The pipeline and the service share `aietl_pipelines.drift`.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from aietl_pipelines.datasets import JSONLinesDataset
from aietl_pipelines.drift.report import render_html_report
from aietl_pipelines.drift.statistics import compute_drift, input_warnings
from aietl_pipelines.drift.summary import (
    DEFAULT_RULES,
    data_fingerprint,
    should_trigger_retraining,
    summarize_drift,
)
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.monitoring.instrument import drift_detection
from aietl_pipelines.paths import project_path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise AietlInputError(f"{name}={raw!r} is not a whole number; set it to e.g. {default}.") from None


class DriftMonitoringService:
    """Detect drift between two frames, keep a history of summaries, advise on retraining."""

    def __init__(
        self,
        report_dir: str | Path | None = None,
        history_path: str | Path | None = None,
        alert_threshold: float = 0.3,
        retraining_rules: Mapping[str, Any] | None = None,
        max_reports: int | None = None,
        max_report_bytes: int | None = None,
        max_history: int | None = None,
    ) -> None:
        # defaults under the project root (aietl_pipelines.paths), whatever the working directory
        self.report_dir = project_path(report_dir or "data/08_reporting/drift_reports")
        self.history_path = project_path(history_path or "data/08_reporting/drift_history.jsonl")
        self.history = JSONLinesDataset(str(self.history_path))
        self.alert_threshold = alert_threshold
        self.rules = {**DEFAULT_RULES, **(retraining_rules or {})}
        # retention: newest reports kept by count and total bytes, newest history lines by count
        self.max_reports = max_reports or _env_int("AIETL_DRIFT_REPORTS_KEEP", 50)
        self.max_report_bytes = max_report_bytes or _env_int("AIETL_DRIFT_REPORTS_MAX_BYTES", 256 * 1024 * 1024)
        self.max_history = max_history or _env_int("AIETL_DRIFT_HISTORY_KEEP", 10_000)
        self._lock = threading.RLock()

    def apply_retention(self) -> dict[str, int]:
        """Delete the oldest HTML reports past ``max_reports`` or ``max_report_bytes`` and the oldest history
        lines past ``max_history``; returns what was removed."""
        removed = {"reports": 0, "history_lines": 0}
        with self._lock:
            if self.report_dir.is_dir():
                reports = sorted(self.report_dir.glob("drift_report_*.html"), key=lambda p: p.name, reverse=True)
                total = 0
                for i, path in enumerate(reports):
                    size = path.stat().st_size
                    total += size
                    if i >= self.max_reports or (i > 0 and total > self.max_report_bytes):
                        path.unlink(missing_ok=True)
                        removed["reports"] += 1
            history = self.history.load()
            if len(history) > self.max_history:
                keep = history[-self.max_history:]
                # a temp name of its own: API worker processes may trim the same history at once
                tmp = self.history_path.with_name(f".{self.history_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
                tmp.write_text("".join(json.dumps(h, default=str) + "\n" for h in keep), encoding="utf-8")
                os.replace(tmp, self.history_path)
                removed["history_lines"] = len(history) - len(keep)
        return removed

    # sync core -------------------------------------------------------------------------------------
    @drift_detection("service")
    def detect_data_drift_sync(
        self,
        reference_data: pd.DataFrame,
        current_data: pd.DataFrame,
        target_column: str | None = None,
        save_report: bool = True,
        columns: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Drift report: alert_triggered, drift_share, drifted_columns, per_column, report_path."""
        if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
            raise AietlInputError(f"columns must be a list of column names, got {columns!r}.")
        table, skipped = compute_drift(reference_data, current_data, columns)
        if target_column and target_column not in table["column"].tolist():
            raise AietlInputError(
                f"target_column '{target_column}' is not a monitored column of both frames "
                f"(monitored: {table['column'].tolist()}, skipped: {list(skipped)})."
            )
        notes = input_warnings(reference_data, current_data, columns)
        fingerprint = data_fingerprint(reference_data, current_data)
        report = summarize_drift(table, skipped, self.alert_threshold, target_column, notes, fingerprint)
        history = self.history.load()
        retrain, reason = should_trigger_retraining(report, self.rules, history)
        report["retraining_recommendation"] = {"should_retrain": retrain, "reason": reason}
        report["report_path"] = None
        if save_report:
            self.report_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            path = self.report_dir / f"drift_report_{stamp}.html"
            path.write_text(render_html_report(report, reference_data, current_data), encoding="utf-8")
            report["report_path"] = str(path)
        if not history or history[-1].get("data_fingerprint") != fingerprint:  # a rerun adds no window
            with self._lock:  # no append lost to a concurrent retention rewrite
                self.history.save(
                    {k: report[k] for k in ("generated_at", "drift_share", "drifted_columns", "alert_triggered",
                                            "target_drifted", "retraining_recommendation", "n_columns",
                                            "data_fingerprint")}
                )
        self.apply_retention()
        return report

    def should_trigger_retraining_sync(self, report: Mapping[str, Any]) -> tuple[bool, str]:
        """(retrain?, reason) for a report from `detect_data_drift`, with the configured rules."""
        if not isinstance(report, Mapping):
            raise AietlInputError(
                f"The drift report must be a dict as returned by detect_data_drift, got {type(report).__name__}."
            )
        history = [h for h in self.history.load() if h.get("generated_at") != report.get("generated_at")]
        return should_trigger_retraining(report, self.rules, history)

    def generate_drift_summary_sync(
        self,
        reference_data: pd.DataFrame,
        current_data: pd.DataFrame,
        target_column: str | None = None,
        features: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Drift over `features` (+ target) with the retraining recommendation, no HTML."""
        columns = list(features or [c for c in reference_data.columns if c != target_column])
        if target_column and target_column not in columns:
            columns.append(target_column)
        return self.detect_data_drift_sync(reference_data, current_data, target_column, False, columns)

    def summary_sync(self, days: int = 7) -> dict[str, Any]:
        """Summaries of the last `days` days from the history."""
        since = datetime.now(UTC) - timedelta(days=days)
        recent = [h for h in self.history.load() if pd.Timestamp(h["generated_at"]) >= since]
        return {
            "days": days,
            "n_reports": len(recent),
            "n_alerts": sum(bool(h.get("alert_triggered")) for h in recent),
            "mean_drift_share": (sum(h["drift_share"] for h in recent) / len(recent)) if recent else None,
            "max_drift_share": max((h["drift_share"] for h in recent), default=None),
            "reports": recent,
        }

    def retraining_status_sync(self) -> dict[str, Any]:
        """The latest recommendation in the history."""
        history = self.history.load()
        if not history:
            return {"should_retrain": False, "reason": "no drift report yet", "last_report_at": None}
        last = history[-1]
        return {**last["retraining_recommendation"], "last_report_at": last["generated_at"],
                "drift_share": last["drift_share"]}

    # async API of the guide ----------------------------------------------------------------------
    async def detect_data_drift(self, reference_data, current_data, target_column=None, save_report=True,
                                columns=None):
        return await asyncio.to_thread(
            self.detect_data_drift_sync, reference_data, current_data, target_column, save_report, columns
        )

    async def summary(self, days: int = 7) -> dict[str, Any]:
        return await asyncio.to_thread(self.summary_sync, days)

    async def retraining_status(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.retraining_status_sync)

    async def should_trigger_retraining(self, report):
        return self.should_trigger_retraining_sync(report)

    async def generate_drift_summary(self, reference_data, current_data, target_column=None, features=None):
        return await asyncio.to_thread(
            self.generate_drift_summary_sync, reference_data, current_data, target_column, features
        )


def get_drift_monitoring_service(**options: Any) -> DriftMonitoringService:
    """The drift monitoring service (options: report_dir, history_path, alert_threshold, retraining_rules,
    max_reports, max_report_bytes, max_history; defaults under the project root and from
    AIETL_DRIFT_REPORTS_KEEP / AIETL_DRIFT_REPORTS_MAX_BYTES / AIETL_DRIFT_HISTORY_KEEP)."""
    return DriftMonitoringService(**options)
