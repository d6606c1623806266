"""EM on comparison-pattern counts (`spark/patterns.py`) equals `score.fit_model` on one row per pair."""

from __future__ import annotations

import numpy as np
import pytest

from aietl_pipelines.dedupe import score as fs
from aietl_pipelines.spark.patterns import fit_patterns, model_threshold

NAMES = ["first_name", "first_name~tf", "last_name", "email", "date_of_birth"]
SIZES = [4, 3, 4, 3, 4]


def _levels(n: int, match_share: float, seed: int, sizes: list[int] = SIZES, null: float = 0.05) -> np.ndarray:
    """Pairs drawn from a two-class model: matches mostly at level 1, non-matches mostly at the weakest level,
    some nulls (level 0)."""
    rng = np.random.default_rng(seed)
    match = rng.random(n) < match_share
    out = np.zeros((n, len(sizes)), dtype=np.int8)
    for k, size in enumerate(sizes):
        good = np.r_[null, np.linspace(1.0, 0.1, size - 1) ** 2]
        bad = good[::-1].copy()
        bad[0] = null
        for rows, p in ((match, good), (~match, bad)):
            out[rows, k] = rng.choice(size, rows.sum(), p=p / p.sum())
    return out


def test_pattern_fit_equals_the_per_pair_fit():
    levels, random_levels = _levels(20_000, 0.2, 1), _levels(5_000, 0.001, 2)
    sessions = [[3], [2, 4]]
    expected = fs.fit_model(levels, random_levels, NAMES, SIZES, sessions=sessions)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    assert len(patterns) < len(levels) / 10  # the point: far fewer rows
    got = fit_patterns(patterns, counts, random_levels, NAMES, SIZES, sessions=sessions)
    for a, b in zip(got.m + got.u, expected.m + expected.u, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)
    assert got.prior == pytest.approx(expected.prior, rel=1e-9)
    assert got.threshold == pytest.approx(expected.threshold, rel=1e-9)
    assert 0.01 < expected.prior < 0.5 and 0 < expected.threshold < 1  # a real fit, not the defaults
    np.testing.assert_allclose(got.probability(levels), expected.probability(levels), rtol=1e-9)


def test_pattern_fit_without_usable_sessions_falls_back_like_the_per_pair_fit():
    levels, random_levels = _levels(3_000, 0.3, 3), _levels(2_000, 0.001, 4)
    expected = fs.fit_model(levels, random_levels, NAMES, SIZES, sessions=[[0, 2, 3, 4]], min_session_pairs=10**6)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    got = fit_patterns(patterns, counts, random_levels, NAMES, SIZES, sessions=[[0, 2, 3, 4]],
                       min_session_pairs=10**6)
    for a, b in zip(got.m, expected.m, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)


def test_pattern_fit_equals_the_per_pair_fit_for_free_text_parts():
    """Free text's parts: related comparisons left out of each other's sessions, the only declared rules too rare
    (sessions per field, then single-comparison estimates for what no session could estimate)."""
    from aietl_pipelines.dedupe.textparse import TEXT_RELATED

    names = ["words", "words~tf", "segments", "email", "date", "numbers"]
    sizes = [5, 3, 4, 3, 4, 3]
    levels = _levels(8_000, 0.25, 6, sizes, null=0.6)
    random_levels = _levels(4_000, 0.001, 7, sizes, null=0.6)
    for sessions in ([[3]], [[4], [0]], [[2]]):
        expected = fs.fit_model(levels, random_levels, names, sizes, sessions=sessions, related=TEXT_RELATED)
        patterns, counts = np.unique(levels, axis=0, return_counts=True)
        got = fit_patterns(patterns, counts, random_levels, names, sizes, sessions=sessions, related=TEXT_RELATED)
        for a, b in zip(got.m, expected.m, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        assert got.prior == pytest.approx(expected.prior, rel=1e-9)
        assert got.threshold == pytest.approx(expected.threshold, rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_weighted_threshold_equals_the_expanded_one(seed):
    rng = np.random.default_rng(seed)
    p = rng.choice([0.01, 0.2, 0.5, 0.51, 0.9, 0.99, 0.999], 12)
    counts = rng.integers(1, 50, len(p)).astype(float)
    assert model_threshold(p, counts) == fs.model_threshold(np.repeat(p, counts.astype(int)))


@pytest.mark.spark
def test_patterns_are_counted_on_spark(spark):
    from aietl_pipelines.spark.patterns import pattern_counts

    levels = _levels(4_000, 0.2, 5)
    patterns, counts = pattern_counts(spark, levels)
    expected, n = np.unique(levels, axis=0, return_counts=True)
    np.testing.assert_array_equal(patterns, expected)
    np.testing.assert_array_equal(counts, n)
    assert patterns.dtype == levels.dtype
