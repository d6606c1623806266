"""The unsupervised scoring model: random-pair u, EM sessions, bounded monotone weights, neutral missing fields,
prior and threshold from the fitted model, term-frequency companions, phone and organisation parsing."""

import numpy as np
import pytest

from aietl_pipelines.dedupe import normalize
from aietl_pipelines.dedupe.compare import compare_column, compare_pairs, tf_bands
from aietl_pipelines.dedupe.score import (
    M_FLOOR,
    FellegiSunterModel,
    bound_and_order,
    fit_model,
    model_threshold,
    random_pair_u,
)
from aietl_pipelines.dedupe.textparse import parse_text


def _synthetic(n_match: int = 400, n_non: int = 1600, seed: int = 0):
    """Three comparisons (4 levels + null). Matches agree mostly at level 1, non-matches among the candidates
    agree more often than random pairs do (they were chosen for looking alike). The third field is sparse: null
    in 70% of the pairs, and its matches always agree."""
    rng = np.random.default_rng(seed)
    m_true = [[0.9, 0.06, 0.02, 0.02], [0.85, 0.1, 0.03, 0.02], [1.0, 0.0, 0.0, 0.0]]
    cand_u = [[0.15, 0.15, 0.2, 0.5], [0.02, 0.08, 0.2, 0.7], [0.05, 0.05, 0.2, 0.7]]
    rand_u = [[0.002, 0.01, 0.05, 0.938], [0.001, 0.01, 0.05, 0.939], [0.05, 0.05, 0.2, 0.7]]

    def draw(probs, n):
        cols = [rng.choice([1, 2, 3, 4], size=n, p=p) for p in probs]
        out = np.stack(cols, axis=1).astype(np.int8)
        out[rng.random(n) < 0.7, 2] = 0  # the sparse field
        return out

    levels = np.concatenate([draw(m_true, n_match), draw(cand_u, n_non)])
    truth = np.r_[np.ones(n_match, bool), np.zeros(n_non, bool)]
    random_levels = draw(rand_u, 50_000)
    return levels, truth, random_levels


def test_u_comes_from_random_pairs_not_from_the_candidates():
    levels, _, random_levels = _synthetic()
    model = fit_model(levels, random_levels, ["a", "b", "c"], [5, 5, 5])
    expected = random_pair_u(random_levels, [5, 5, 5])
    for got, want in zip(model.u, expected, strict=True):
        # the random pairs' level frequencies, less the few the model calls matches (score.non_match_u)
        assert np.allclose(got, want, rtol=0.1)
    plain = fit_model(levels, random_levels, ["a", "b", "c"], [5, 5, 5], u_rounds=0)
    for got, want in zip(plain.u, expected, strict=True):
        assert np.allclose(got, want)
    # an exact agreement on a field is rare among random pairs: worth far more than among the candidates
    assert model.weights()[0][1] > 7.0


def test_weights_are_bounded_and_monotone():
    levels, _, random_levels = _synthetic()
    model = fit_model(levels, random_levels, ["a", "b", "c"], [5, 5, 5])
    for w, _u in zip(model.weights(), model.u, strict=True):
        body = w[1:]
        assert np.all(np.diff(body) <= 1e-9), body  # a weaker level never weighs more
        assert np.all(body >= np.log2(M_FLOOR) - 1e-6)
    # the sparse field's matches always agree (m = 1.0 at level 1), yet a disagreement is not -20 bits
    assert model.weights()[2][4] > -7.0


def test_bound_and_order_pools_a_non_monotone_pattern():
    u = np.array([1.0, 0.2, 0.05, 0.05, 0.7])
    m = np.array([1.0, 0.1, 0.6, 0.3, 0.0])  # level 2 "better" than level 1, level 4 impossible
    fixed = bound_and_order(m, u, np.array([0, 100, 10, 10, 100.0]))
    w = np.log2(fixed[1:] / u[1:])
    assert np.all(np.diff(w) <= 1e-9)
    assert w[-1] >= np.log2(M_FLOOR) - 1e-6


def test_missing_field_is_neutral():
    levels, _, random_levels = _synthetic()
    model = fit_model(levels, random_levels, ["a", "b", "c"], [5, 5, 5])
    for w in model.weights():
        assert w[0] == 0.0
    with_null = np.array([[1, 1, 0]], dtype=np.int8)
    without_field = FellegiSunterModel(["a", "b"], [5, 5], model.m[:2], model.u[:2], model.prior)
    assert model.match_weight(with_null)[0] == pytest.approx(without_field.match_weight(with_null[:, :2])[0])


def test_prior_and_threshold_come_from_the_fitted_model():
    levels, truth, random_levels = _synthetic()
    model = fit_model(levels, random_levels, ["a", "b", "c"], [5, 5, 5])
    assert 0 < model.prior < 0.05  # the share among ALL pairs, not among the candidates (0.2 here)
    p = model.probability(levels)
    assert model.threshold == pytest.approx(model_threshold(p))
    predicted = p >= model.threshold
    tp = (predicted & truth).sum()
    f1 = 2 * tp / (predicted.sum() + truth.sum())
    assert f1 > 0.9
    # round trip keeps the threshold
    again = FellegiSunterModel.from_dict(model.to_dict())
    assert again.threshold == model.threshold and again.prior == model.prior


def test_model_threshold_maximises_expected_f1():
    p = np.array([0.99, 0.98, 0.9, 0.6, 0.2, 0.01])
    t = model_threshold(p)
    assert t in p and 0.2 < t <= 0.9
    assert model_threshold(np.zeros(0)) == 0.5


def test_term_frequency_companion_rewards_rare_values():
    names = ["smith"] * 60 + ["jones"] * 30 + [f"rare{i}" for i in range(20) for _ in range(2)]
    bands = tf_bands(names)
    assert bands["rare0"] == 1 and bands["smith"] == 3
    left = np.array([0, 60, 90, 1])
    right = np.array([1, 61, 91, 90])
    levels, cols, sizes = compare_pairs({"surname": names}, {"surname": "name"}, left, right)
    assert cols == ["surname", "surname~tf"] and sizes == [5, 4]
    assert levels[:, 1].tolist() == [3, bands["jones"], 1, 0]  # not exact -> null (neutral)
    # fitted on random pairs + candidates, the rare band outweighs the common one
    rng = np.random.default_rng(0)
    ra, rb = rng.integers(0, len(names), 20_000), rng.integers(0, len(names), 20_000)
    keep = ra != rb
    random_levels, _, _ = compare_pairs({"surname": names}, {"surname": "name"}, ra[keep], rb[keep])
    pairs = np.array([(i, i + 1) for i in range(90, 130, 2)] + [(0, i) for i in range(1, 60)])
    cand, _, _ = compare_pairs({"surname": names}, {"surname": "name"}, pairs[:, 0], pairs[:, 1])
    model = fit_model(cand, random_levels, cols, sizes)
    w = model.weights()[1]
    assert w[1] > w[3]


@pytest.mark.parametrize("raw, other", [("310/246-1501", "310-246-1501"), ("(310) 246 1501", "310.246.1501"),
                                        ("+44 20 7946 0958", "020 7946 0958"), ("0049 30 1234567", "030 1234567")])
def test_phone_formats_of_other_countries_agree_exactly(raw, other):
    a, b = normalize.phone(raw), normalize.phone(other)
    assert compare_column("phone", [a], [b])[0] == 1


def test_phone_in_free_text_with_a_slash():
    assert parse_text("arnie mortons of chicago, 435 s. la cienega blv., 310/246-1501")["phone"] == "3102461501"


@pytest.mark.parametrize("a, b, level", [
    ("Canon Kabushiki Kaisha", "CANON K.K.", 1), ("LS Cable & System Ltd.", "LS CABLE AND SYSTEM LIMITED", 1),
    ("The Apple Pan", "apple pan, the", 1), ("Siemens Aktiengesellschaft", "SIEMENS AG", 1),
    ("Machines Business International Corp", "International Business Machines Corporation", 1),
    ("IBM", "International Business Machines", 2), ("Intl. Business Machines", "International Business Machines", 1),
    ("Sony Corporation", "Toyota Jidosha Kabushiki Kaisha", 4),
])
def test_organisation_kind(a, b, level):
    assert compare_column("organisation", [normalize.organisation(a)], [normalize.organisation(b)])[0] == level


def test_list_kind_compares_sets():
    a = normalize.item_list("Seok Ju Lee; Jin Bae Na, Heo Sung")
    b = normalize.item_list(["jin bae na", "Seok Ju Lee"])
    c = normalize.item_list("H04N")
    levels = compare_column("list", [a, a, a, None], [a, b, c, a])
    assert levels.tolist() == [1, 2, 4, 0]
