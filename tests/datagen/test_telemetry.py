import pandas as pd
import pytest

from aietl_pipelines.datagen.telemetry import DRIFT_SOURCE, generate_etl_runs


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return generate_etl_runs(n_pipelines=10, days=20, runs_per_day=12, drift_start_day=14, seed=3)


def test_same_seed_same_frame(runs):
    again = generate_etl_runs(n_pipelines=10, days=20, runs_per_day=12, drift_start_day=14, seed=3)
    pd.testing.assert_frame_equal(runs, again)
    other = generate_etl_runs(n_pipelines=10, days=20, runs_per_day=12, drift_start_day=14, seed=4)
    assert not runs["duration_seconds"].equals(other["duration_seconds"])


def test_schema_and_consistency(runs):
    assert len(runs) == 10 * 20 * 12
    assert runs["run_id"].is_unique
    assert str(runs["started_at"].dtype) == "datetime64[ns, UTC]"
    assert (runs["finished_at"] > runs["started_at"]).all()
    dur = (runs["finished_at"] - runs["started_at"]).dt.total_seconds()
    assert (dur - runs["duration_seconds"]).abs().max() < 1e-3
    assert set(runs["status"]) == {"success", "failed"}
    assert ((runs["status"] == "failed") == (runs["failed"] == 1)).all()
    assert (runs.loc[runs["failed"] == 1, "error_count"] >= 1).all()
    assert runs["cpu_usage"].between(0, 100).all()
    assert runs["started_at"].is_monotonic_increasing


def test_drift_episode_shifts_distributions(runs):
    pre = runs[~runs["in_drift_episode"]]
    post = runs[runs["in_drift_episode"]]
    assert post["started_at"].min() >= pd.Timestamp("2026-09-15", tz="UTC")
    assert post["duration_seconds"].median() > 1.2 * pre["duration_seconds"].median()
    assert post["cpu_usage"].mean() > pre["cpu_usage"].mean() + 8
    assert DRIFT_SOURCE in set(post["source_system"]) and DRIFT_SOURCE not in set(pre["source_system"])


def test_failure_signal_flips_in_drift(runs):
    """Before the drift, slow runs fail more; during it, failing pipelines time out early."""
    pre = runs[~runs["in_drift_episode"]]
    post = runs[runs["in_drift_episode"]]

    def corr(frame):
        z = frame.groupby("pipeline_id")["duration_seconds"].transform(lambda s: (s - s.mean()) / s.std())
        return z.corr(frame["failed"].astype(float))

    assert corr(pre) > 0.1
    assert corr(post) < -0.1


def test_no_drift_mode():
    runs = generate_etl_runs(n_pipelines=4, days=5, runs_per_day=6, drift_start_day=None)
    assert not runs["in_drift_episode"].any()
    assert DRIFT_SOURCE not in set(runs["source_system"])


def test_rejects_nonsense_sizes():
    with pytest.raises(ValueError, match="positive"):
        generate_etl_runs(n_pipelines=0)
