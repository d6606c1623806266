"""Free text read as fields: segments (the values between separators), their rarity-weighted comparison, the
candidates they give, the deeper kNN search in crowds, and the match model `find_duplicates` scores with."""

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import engine, matcher
from aietl_pipelines.dedupe.compare import information_levels
from aietl_pipelines.dedupe.pairs import deeper_neighbours, segment_pairs, similarity_floor
from aietl_pipelines.dedupe.prepare import prepare_records
from aietl_pipelines.dedupe.score import fit_model
from aietl_pipelines.dedupe.scoring import comparison_kinds
from aietl_pipelines.dedupe.textparse import parse_text, text_segments


def test_segments_are_field_values_whatever_the_separator_and_name_order():
    a = text_segments("Smith, John | San Jose | Acme Corp")
    b = text_segments("Acme Corp - John Smith - San Jose")
    assert {"john smith", "jose san", "acme corp"} <= a & b  # "Smith, John" joined back with its neighbour
    assert parse_text("born 1956-04-09; ssn 1234567")["date"] == "1956-04-09"


def test_information_levels_weigh_rare_shared_values_above_common_ones():
    common = frozenset({"usa"})
    sets = [common | {"rare name"}, common | {"rare name"}, common | {"other"}, common | {"another"}]
    sets += [common | {f"filler {i}"} for i in range(60)]
    levels = information_levels(sets, np.array([0, 2, 0]), np.array([1, 3, 2]))
    assert levels[0] < levels[1]  # a shared rare value (better level = lower number) beats a shared "usa"
    assert levels[2] == levels[1]
    assert information_levels([frozenset(), sets[0]], np.array([0]), np.array([1]))[0] == 0  # missing: null
    none_shared = information_levels([frozenset({"a"}), frozenset({"b"})], np.array([0]), np.array([1]))
    assert none_shared[0] == 7


def test_segment_blocking_finds_pairs_that_share_a_value_in_any_position():
    texts = ["Hiroki Yamashita | Hitachi | JP", "Toshiba; JP; Yamashita, Hiroki", "Jane Roe, Oslo, NO"]
    config = engine.DedupeConfig(id_column="id", text_column="text", use_embeddings=False)
    prepared = prepare_records(pd.DataFrame({"id": ["a", "b", "c"], "text": texts}), config)
    pairs = {tuple(p) for p in segment_pairs(prepared, config).tolist()}
    assert (0, 1) in pairs and not any(2 in p for p in pairs)


def test_text_segments_are_scored_only_without_an_independent_part():
    config = engine.DedupeConfig(id_column="id", text_column="text", use_embeddings=False)
    with_phone = prepare_records(pd.DataFrame({"id": ["a", "b"], "text": ["Ann Lee, 310/246-1501", "Bo Li, 0301 1234567"]}),
                                 config)
    without = prepare_records(pd.DataFrame({"id": ["a", "b"], "text": ["Ann Lee, Oslo", "Bo Li, Bergen"]}), config)
    assert "segments" not in comparison_kinds(config, with_phone)
    assert "segments" in comparison_kinds(config, without)


def test_deeper_neighbours_search_crowds_beyond_k():
    rng = np.random.default_rng(0)
    crowd = rng.normal(size=(1, 16)) + 0.05 * rng.normal(size=(60, 16))  # one entity with 60 records
    rest = rng.normal(size=(3000, 16))
    vectors = np.concatenate([crowd, rest]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    config = engine.DedupeConfig(id_column="id", fields={"x": "text"}, knn_k=5, knn_max_k=80, device="cpu")
    floor = similarity_floor(vectors, 5, config.knn_min_cosine)
    kth = np.full(len(vectors), 0.0)
    kth[:60] = 0.99  # the crowd's 5th neighbours are all alike
    pairs, deeper_kth = deeper_neighbours(vectors, kth, config)
    inside = pairs[(pairs[:, 0] < 60) & (pairs[:, 1] < 60)]
    assert len({tuple(sorted(p)) for p in inside.tolist()}) == 60 * 59 // 2  # every pair of the crowd
    assert (deeper_kth[:60] < 0.99).all() and floor > config.knn_min_cosine - 1e-9


def test_a_comparison_blocked_by_the_only_rule_is_still_estimated():
    rng = np.random.default_rng(1)
    match = np.stack([np.ones(300), rng.choice([1, 4], 300, p=[0.9, 0.1]), rng.choice([1, 4], 300, p=[0.85, 0.15])], 1)
    non = np.stack([rng.choice([1, 4], 900, p=[0.1, 0.9]), rng.choice([1, 4], 900, p=[0.1, 0.9]),
                    rng.choice([1, 4], 900, p=[0.05, 0.95])], 1)
    levels = np.concatenate([match, non]).astype(np.int8)
    random_levels = np.stack([rng.choice([1, 4], 20000, p=[0.001, 0.999]) for _ in range(3)], 1).astype(np.int8)
    model = fit_model(levels, random_levels, ["a", "b", "c"], [5, 5, 5], sessions=[[0]])
    weights = model.weights()[0]
    assert weights[1] > 5 and weights[4] < 0  # "a" was estimated outside its own session, not left at a guess


def test_find_duplicates_scores_with_a_model_fitted_on_the_collection():
    texts = [f"{f} {last}, {n} {street} St, {f.lower()}.{last.lower()}@example.com"
             for f, last, n, street in zip(["Ann", "Bo", "Cy", "Di", "Ed", "Flo"] * 20,
                                            ["Lee", "Li", "Ng", "Ode", "Poe", "Roe"] * 20,
                                            range(100, 220), ["Oak", "Elm", "Pine", "Ash"] * 30, strict=False)]
    texts += [t.replace(" St,", " Street,") for t in texts[:30]]  # duplicates written another way
    fitted = matcher.fit_text_matcher(texts)
    assert fitted.model.names and fitted.n_records == len(texts)
    same, other = fitted.score(texts[0], [texts[120], texts[1]])
    assert same >= matcher.DEFAULT_MATCH_THRESHOLD > other
    try:
        matcher.use_text_matcher(fitted)
        assert matcher.default_matcher() is fitted
        assert np.allclose(matcher.score_text_matches(texts[0], [texts[120]]), fitted.score(texts[0], [texts[120]]))
    finally:
        matcher.use_text_matcher(None)


def test_the_shipped_sample_matcher_is_a_fitted_model_and_round_trips():
    shipped = matcher.TextMatcher.from_dict(__import__("json").loads(matcher.SHIPPED.read_text(encoding="utf-8")))
    assert "sample customers" in shipped.source and shipped.n_records > 1000
    assert shipped.model.prior < 0.01 and "words" in shipped.model.names
    again = matcher.TextMatcher.from_dict(shipped.to_dict())
    texts = ["John Doe, 123 Main St, john@example.com", "Jon Doe, 123 Main Street, john@example.com",
             "Jane Dow, 9 Oak Avenue"]
    assert np.allclose(again.score(texts[0], texts[1:]), shipped.score(texts[0], texts[1:]))
    assert shipped.score(texts[0], texts[1:2])[0] >= matcher.DEFAULT_MATCH_THRESHOLD
