"""Free-text words weighed by the information they share (issue 13: persons free text, names without a date of
birth): a misspelt word is still shared, and an agreement weighs the bits of the shared words (`words~bits`)."""

import numpy as np

from aietl_pipelines.dedupe.compare import (
    BITS_SUFFIX,
    band_bits,
    compare_pairs,
    idf_token_levels,
    token_levels_and_bits,
    word_information_levels,
)
from aietl_pipelines.dedupe.matcher import TextMatcher
from aietl_pipelines.dedupe.score import FellegiSunterModel, fit_model, information_weights

# a population of names: "hans" and "schmidt" common, "sven", "klaus", "meyer", "olaf" rare
NAMES = (["hans schmidt"] * 40 + ["hans weber"] * 20 + ["karl schmidt"] * 20 + ["sven klaus meyer", "meyer sveqn klaus",
         "olaf koch", "olaf koch"] + [f"name{i} other{i}" for i in range(100)])


def test_a_misspelt_word_is_shared():
    left, right = np.array([80]), np.array([81])  # "sven klaus meyer" / "meyer sveqn klaus"
    levels, bits = token_levels_and_bits(NAMES, left, right)
    assert levels.tolist() == [1]
    assert bits[0] > 2 * np.log2(len(NAMES) / 2)  # klaus and meyer, plus sven once
    assert idf_token_levels(NAMES, left, right).tolist() == [1]
    # short words and texts differing in more than two words are not read as typos
    assert token_levels_and_bits(["abc x", "abd x"], np.array([0]), np.array([1]))[0][0] != 1


def test_information_levels_grade_agreements_by_the_bits_shared():
    left, right = np.array([0, 82, 0]), np.array([1, 83, 60])  # hans schmidt x2, olaf koch x2, hans schmidt/weber
    levels, bits = token_levels_and_bits(NAMES, left, right)
    assert levels[:2].tolist() == [1, 1] and levels[2] != 1
    assert bits[1] > bits[0] + 4  # a rare name shares more information than a common one
    info = word_information_levels(levels, bits)
    assert info[2] == 0  # null unless the words agree
    assert 1 <= info[1] < info[0]  # more bits: a lower (stronger) level
    edges = band_bits()
    assert edges[info[0]] <= bits[0] and edges[info[1]] <= bits[1]


def test_compare_pairs_adds_the_companion_to_free_text_words_only():
    _, names, sizes = compare_pairs({"words": NAMES}, {"words": "tokens"}, np.array([0]), np.array([1]))
    assert names == ["words", "words" + BITS_SUFFIX] and sizes[1] == len(band_bits())
    _, names, _ = compare_pairs({"name": NAMES}, {"name": "name"}, np.array([0]), np.array([1]))
    assert BITS_SUFFIX not in "".join(names)


def test_information_weights_are_the_term_frequency_adjustment_capped_by_the_random_pairs():
    size = len(band_bits())
    m, u = information_weights(1e-3, np.zeros(1000, dtype=np.int8), size)
    w = np.log2(m[1:] / u[1:])
    assert np.allclose(w, np.log2(1e-3) + band_bits()[1:])  # log2(u_agree) + bits
    # 10 of 1,000 random pairs agree sharing 38+ bits (words that occur together): no agreement of that many bits
    # or fewer is taken as rarer than 1 in 100; below the bits where the random pairs show nothing, no cap
    bands = np.zeros(1000, dtype=np.int8)
    bands[:10] = 1
    bands[10:15] = 3  # 5 more pairs share 34-36 bits
    m, u = information_weights(1e-3, bands, size)
    w = np.log2(m[1:] / u[1:])
    assert np.isclose(w[0], np.log2(1e-3) + np.log2(100)) and np.isclose(w[1], w[0])
    assert np.isclose(w[2], np.log2(1e-3) + np.log2(1000 / 15))
    assert np.isclose(w[-1], np.log2(1e-3))  # at most 2 bits shared: -log2(u_agree) bits fewer than the level says
    # ... unless the model takes them for matches
    m, u = information_weights(1e-3, bands, size, random_weights=np.r_[np.zeros(15), np.ones(985)])
    assert np.allclose(np.log2(m[1:] / u[1:]), np.log2(1e-3) + band_bits()[1:])


def test_the_fitted_model_weighs_a_rare_name_above_a_common_one():
    rng = np.random.default_rng(0)
    n = 4000
    words = rng.choice([1, 2, 6], n, p=[0.3, 0.3, 0.4]).astype(np.int8)  # words level, 1 = agree
    info = np.where(words == 1, rng.integers(1, len(band_bits()), n), 0).astype(np.int8)
    date = rng.choice([1, 4], n, p=[0.3, 0.7]).astype(np.int8)
    levels = np.stack([words, info, date], axis=1)
    random_levels = np.stack([rng.choice([1, 6], 2000, p=[0.01, 0.99]), np.zeros(2000),
                              rng.choice([1, 4], 2000, p=[0.01, 0.99])], axis=1).astype(np.int8)
    names, sizes = ["words", "words" + BITS_SUFFIX, "date"], [7, len(band_bits()), 5]
    model = fit_model(levels, random_levels, names, sizes)
    w = model.weights()[1]
    assert np.allclose(w[1:], w[1] - (band_bits()[1] - band_bits()[1:]))  # set by the bits, not fitted
    rare, common = np.array([[1, 3, 0]]), np.array([[1, 15, 0]])
    assert model.match_weight(rare)[0] > model.match_weight(common)[0] + 20


def test_the_matcher_scores_the_companion_of_its_model():
    sizes = [7, len(band_bits())]
    names = ["words", "words" + BITS_SUFFIX]
    m = [np.r_[1.0, np.full(6, 1 / 6)], *information_weights(1e-3, np.zeros(10, np.int8), sizes[1])[:1]]
    u = [np.r_[1.0, np.full(6, 1 / 6)], information_weights(1e-3, np.zeros(10, np.int8), sizes[1])[1]]
    model = FellegiSunterModel(names, sizes, m, u, prior=0.01)
    from collections import Counter

    counts = Counter(w for t in NAMES for w in set(t.split()))
    matcher = TextMatcher(model, counts, Counter(), Counter(), len(NAMES), frozenset(), frozenset(), "test")
    rare, common = matcher.score("olaf koch", ["olaf koch", "hans schmidt"]), matcher.score("hans schmidt",
                                                                                           ["hans schmidt"])
    assert rare[0] > 100 * common[0] and np.isclose(rare[1], 0.01)  # no agreement: the companion is null
