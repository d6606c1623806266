from datetime import UTC, datetime

import pandas as pd

from aietl_pipelines.drift.summary import should_trigger_retraining, summarize_drift


def _table(drifted: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"column": [f"c{i}" for i in range(len(drifted))], "drifted": drifted})


def test_alert_only_strictly_above_threshold():
    assert summarize_drift(_table([True, False, False, False, False]), alert_threshold=0.2)["alert_triggered"] is False
    summary = summarize_drift(_table([True, True, False, False]), alert_threshold=0.3)
    assert summary["alert_triggered"] and summary["drift_share"] == 0.5
    assert summary["drifted_columns"] == ["c0", "c1"]


def test_retraining_rules_share_critical_persistence_cooldown():
    low = summarize_drift(_table([True, False, False, False, False]))
    assert should_trigger_retraining(low)[0] is False
    critical = should_trigger_retraining(low, {"critical_columns": ["c0"]})
    assert critical[0] and "c0" in critical[1]
    high = summarize_drift(_table([True, True, False]))
    assert should_trigger_retraining(high, {"consecutive_windows": 2})[0] is False
    assert should_trigger_retraining(high, {"consecutive_windows": 2}, history=[high])[0] is True
    now = datetime(2026, 11, 24, tzinfo=UTC)
    blocked, reason = should_trigger_retraining(high, {"cooldown_days": 3}, last_retrained_at="2026-11-23T00:00:00+00:00", now=now)
    assert blocked is False and "cooldown" in reason
    assert should_trigger_retraining(high, {"cooldown_days": 3}, last_retrained_at="2026-11-01T00:00:00+00:00", now=now)[0]
