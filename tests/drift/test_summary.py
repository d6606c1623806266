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


def test_bad_reports_and_rules_are_clear_errors():
    import pytest

    from aietl_pipelines.errors import AietlInputError

    with pytest.raises(AietlInputError, match=r"'drift_share' must be a number between 0 and 1, got 'high'"):
        should_trigger_retraining({"drift_share": "high"})
    with pytest.raises(AietlInputError, match="'drift_share' must be a number between 0 and 1, got 1.5"):
        should_trigger_retraining({"drift_share": 1.5})
    with pytest.raises(AietlInputError, match="'drifted_columns' must be a list of column names"):
        should_trigger_retraining({"drift_share": 0.5, "drifted_columns": "x"})
    with pytest.raises(AietlInputError, match="must be a dict"):
        should_trigger_retraining(["not", "a", "report"])
    with pytest.raises(AietlInputError, match="history entry's 'drift_share'"):
        should_trigger_retraining({"drift_share": 0.9}, {"consecutive_windows": 2}, history=[{"drift_share": None}])
    with pytest.raises(AietlInputError, match="'consecutive_windows' must be a number"):
        should_trigger_retraining({"drift_share": 0.9}, {"consecutive_windows": "two"})


def test_a_rerun_on_identical_data_is_not_another_window():
    high = {**summarize_drift(_table([True, True, False]), fingerprint="aaa")}
    rules = {"consecutive_windows": 2}
    # the same data again (same fingerprint) does not make two windows
    assert should_trigger_retraining(high, rules, history=[high])[0] is False
    assert should_trigger_retraining(high, rules, history=[high, high, high])[0] is False
    other = {**high, "data_fingerprint": "bbb"}
    assert should_trigger_retraining(high, rules, history=[other, other])[0] is True


def test_summary_lists_warnings_and_skipped_columns():
    summary = summarize_drift(_table([False]), {"when": "datetime column"}, warnings=["few rows"])
    assert summary["warnings"][0] == "few rows" and "'when' (datetime column)" in summary["warnings"][1]
