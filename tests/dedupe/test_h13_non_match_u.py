"""u read among the random pairs' NON-matches (score.non_match_u, fit_model's u rounds): where entities are big,
random pairs hold true matches at the prior's rate, and counted as non-matches they inflate u of agreement."""

from __future__ import annotations

import numpy as np

from aietl_pipelines.dedupe.score import FellegiSunterModel, fit_model, non_match_u, random_pair_u

M = np.array([0.0, 0.9, 0.1])   # P(agree), P(disagree) among matches (index 0: null)
U = np.array([0.0, 0.01, 0.99])  # among non-matches


def _pairs(rng: np.random.Generator, n: int, share: float, fields: int = 3) -> np.ndarray:
    """Level rows of `n` pairs, a `share` of them matches, each field independent given the class."""
    match = rng.random(n) < share
    agree = np.where(match[:, None], rng.random((n, fields)) < M[1], rng.random((n, fields)) < U[1])
    return np.where(agree, 1, 2).astype(np.int8)


def _fit(u_rounds: int | None) -> FellegiSunterModel:
    rng = np.random.default_rng(0)
    random_levels = _pairs(rng, 40_000, 0.05)  # 5% of all pairs match: an entity of dozens of records
    levels = _pairs(rng, 6_000, 0.4)           # the candidates
    return fit_model(levels, random_levels, ["a", "b", "c"], [3, 3, 3], u_rounds=u_rounds)


def test_non_match_u_takes_likely_matches_out():
    rng = np.random.default_rng(1)
    random_levels = _pairs(rng, 40_000, 0.05)
    model = FellegiSunterModel(["a", "b", "c"], [3, 3, 3], [M.copy() for _ in range(3)], [U.copy() for _ in range(3)],
                               prior=0.05)
    plain, corrected = random_pair_u(random_levels, [3, 3, 3]), non_match_u(random_levels, [3, 3, 3], model)
    for k in range(3):
        assert plain[k][1] > 4 * U[1]          # 0.05 * 0.9 + 0.95 * 0.01: the matches' agreements counted
        assert abs(np.log2(corrected[k][1] / U[1])) < 0.3


def test_fit_model_reads_u_among_non_matches():
    fitted, uncorrected = _fit(None), _fit(0)
    for k in range(3):
        assert np.log2(uncorrected.u[k][1] / U[1]) > 2.0  # agreement worth 2+ bits less than it is
        assert abs(np.log2(fitted.u[k][1] / U[1])) < 0.3
        assert fitted.weights()[k][1] > uncorrected.weights()[k][1] + 1.5


def test_u_rounds_keep_the_first_fits_prior():
    # re-estimated from the refitted m, FEBRL3 free text's prior fell 30-fold (score._fit_given_u)
    assert _fit(None).prior == _fit(0).prior
