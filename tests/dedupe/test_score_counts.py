"""`score.fit_model` on comparison patterns with counts (`counts=`) equals the fit on one row per pair."""

from __future__ import annotations

import numpy as np
import pytest

from aietl_pipelines.dedupe import score as fs
from aietl_pipelines.dedupe.textparse import TEXT_RELATED

NAMES = ["first_name", "first_name~tf", "last_name", "email", "date_of_birth"]
SIZES = [4, 3, 4, 3, 4]
TEXT_NAMES = ["words", "words~tf", "segments", "email", "date", "numbers"]
TEXT_SIZES = [5, 3, 4, 3, 4, 3]


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


def _assert_same_model(got: fs.FellegiSunterModel, expected: fs.FellegiSunterModel, levels: np.ndarray) -> None:
    for a, b in zip(got.m + got.u, expected.m + expected.u, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert got.prior == pytest.approx(expected.prior, rel=1e-9)
    assert got.threshold == pytest.approx(expected.threshold, rel=1e-9)
    np.testing.assert_allclose(got.probability(levels), expected.probability(levels), rtol=1e-9)


def test_pattern_fit_equals_the_per_pair_fit():
    levels, random_levels = _levels(20_000, 0.2, 1), _levels(5_000, 0.001, 2)
    sessions = [[3], [2, 4]]
    expected = fs.fit_model(levels, random_levels, NAMES, SIZES, sessions=sessions)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    assert len(patterns) < len(levels) / 10  # the point: far fewer rows
    got = fs.fit_model(patterns, random_levels, NAMES, SIZES, sessions=sessions, counts=counts)
    _assert_same_model(got, expected, levels)
    assert 0.01 < expected.prior < 0.5 and 0 < expected.threshold < 1  # a real fit, not the defaults


def test_pattern_fit_without_usable_sessions_falls_back_like_the_per_pair_fit():
    levels, random_levels = _levels(3_000, 0.3, 3), _levels(2_000, 0.001, 4)
    expected = fs.fit_model(levels, random_levels, NAMES, SIZES, sessions=[[0, 2, 3, 4]], min_session_pairs=10**6)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    got = fs.fit_model(patterns, random_levels, NAMES, SIZES, sessions=[[0, 2, 3, 4]], min_session_pairs=10**6,
                       counts=counts)
    _assert_same_model(got, expected, levels)


@pytest.mark.parametrize("sessions", [[[3]], [[4], [0]], [[2]]])
def test_pattern_fit_equals_the_per_pair_fit_for_free_text_parts(sessions):
    """Free text's parts: related comparisons left out of each other's sessions, the only declared rules too rare
    (sessions per field, then single-comparison estimates for what no session could estimate)."""
    levels = _levels(8_000, 0.25, 6, TEXT_SIZES, null=0.6)
    random_levels = _levels(4_000, 0.001, 7, TEXT_SIZES, null=0.6)
    expected = fs.fit_model(levels, random_levels, TEXT_NAMES, TEXT_SIZES, sessions=sessions, related=TEXT_RELATED)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    got = fs.fit_model(patterns, random_levels, TEXT_NAMES, TEXT_SIZES, sessions=sessions, related=TEXT_RELATED,
                       counts=counts)
    _assert_same_model(got, expected, levels)


def test_session_sizes_are_counted_in_pairs_not_patterns():
    """A session of few patterns standing for many pairs runs (min_session_pairs compares pairs): the same
    rows, each counted once, are too few and the fit differs."""
    levels, random_levels = _levels(20_000, 0.2, 8), _levels(5_000, 0.001, 9)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    small = int(counts.max())  # more than any single pattern, fewer than the pairs of a session
    expected = fs.fit_model(levels, random_levels, NAMES, SIZES, sessions=[[3]], min_session_pairs=small)
    got = fs.fit_model(patterns, random_levels, NAMES, SIZES, sessions=[[3]], min_session_pairs=small, counts=counts)
    _assert_same_model(got, expected, levels)
    unweighted = fs.fit_model(patterns, random_levels, NAMES, SIZES, sessions=[[3]], min_session_pairs=small)
    assert not np.allclose(unweighted.m[2], expected.m[2], rtol=1e-3)


def test_unit_counts_give_the_unweighted_fit():
    levels, random_levels = _levels(2_000, 0.2, 10), _levels(2_000, 0.001, 11)
    expected = fs.fit_model(levels, random_levels, NAMES, SIZES, sessions=[[3]])
    got = fs.fit_model(levels, random_levels, NAMES, SIZES, sessions=[[3]], counts=np.ones(len(levels)))
    _assert_same_model(got, expected, levels)


@pytest.mark.parametrize("seed", range(5))
def test_weighted_threshold_equals_the_expanded_one(seed):
    rng = np.random.default_rng(seed)
    p = rng.choice([0.01, 0.2, 0.5, 0.51, 0.9, 0.99, 0.999], 12)
    counts = rng.integers(1, 50, len(p)).astype(float)
    assert fs.model_threshold(p, counts) == pytest.approx(fs.model_threshold(np.repeat(p, counts.astype(int))),
                                                          rel=1e-12)
    assert fs.model_threshold(np.zeros(0), np.zeros(0)) == 0.5


def test_single_comparison_estimate_on_patterns_equals_the_per_pair_one():
    """The m of a comparison no EM session estimated, from the pairs agreeing on an estimated one (the fits above
    never need it): patterns with counts give the per-pair estimate."""
    levels, random_levels = _levels(8_000, 0.25, 12, TEXT_SIZES, null=0.6), _levels(4_000, 0.001, 13, TEXT_SIZES)
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    u = fs.random_pair_u(random_levels, TEXT_SIZES)
    per_field = [[k] for k, name in enumerate(TEXT_NAMES) if not name.endswith("~tf")]
    companions = {k: [] for k in range(len(TEXT_SIZES))}
    is_tf = [name.endswith("~tf") for name in TEXT_NAMES]
    exact = [[1] for _ in TEXT_SIZES]

    def estimate(rows: np.ndarray, weights: np.ndarray | None) -> list[list[np.ndarray]]:
        estimates = [[m] if k != 4 else [] for k, m in enumerate(fs._start_m(TEXT_SIZES))]
        fs._single_comparison_sessions(rows, random_levels, u, exact, per_field, companions, estimates,
                                       [([3], 0.6)], TEXT_SIZES, 10, is_tf, weights)
        return estimates

    expected, got = estimate(levels, None), estimate(patterns, counts)
    assert len(expected[4]) == 1  # estimated here
    np.testing.assert_allclose(got[4][0], expected[4][0], rtol=1e-9, atol=1e-12)


def test_score_on_patterns_equals_the_per_pair_fit():
    """`scoring.score` fits on the distinct patterns with counts: the same model and probabilities as the fit on
    every pair."""
    from aietl_pipelines.dedupe.config import DedupeConfig
    from aietl_pipelines.dedupe.scoring import level_patterns, score

    levels = _levels(20_000, 0.1, seed=4)
    random_levels = _levels(5_000, 0.0, seed=5)
    config = DedupeConfig(fields={"first_name": "name", "last_name": "name", "email": "email",
                                  "date_of_birth": "date"}, blocking=[["email"], ["date_of_birth", "last_name"]])
    rates = {("email",): 2e-5, ("date_of_birth", "last_name"): 1e-5}
    probability, model = score(levels, random_levels, NAMES, SIZES, config, rule_rates=rates)
    sessions = [[NAMES.index("email")], [NAMES.index("date_of_birth"), NAMES.index("last_name")]]
    expected = fs.fit_model(levels, random_levels, NAMES, SIZES, iterations=config.em_iterations, sessions=sessions,
                            rule_rates=rates)
    _assert_same_model(model, expected, levels)
    np.testing.assert_allclose(probability, expected.probability(levels), rtol=1e-9)
    patterns, inverse, counts = level_patterns(levels)
    assert np.array_equal(patterns[inverse], levels) and counts.sum() == len(levels)
    assert len(patterns) == len(np.unique(levels, axis=0))
