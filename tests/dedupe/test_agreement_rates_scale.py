"""candidates.agreement_rate (the prior's exact agreement counts, one hashing of each column per call) gives the
rates of the blocks `block_codes` builds, and the string codes are those of the first implementation."""

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.dedupe.candidates import _string_codes, agreement_rate, block_codes


def _reference_string_codes(values: pd.Series) -> np.ndarray:
    """`_string_codes` of 9efefaa: every distinct value through str(), then "" made missing."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    as_text = [str(u) for u in np.asarray(uniques, dtype=object).tolist()]
    merged, texts = pd.factorize(np.array(as_text + [""], dtype=object))
    lookup = np.where(np.asarray(texts, dtype=object)[merged] == "", -1, merged)
    return np.where(codes < 0, -1, lookup[codes] if len(codes) else codes).astype(np.int64)


def _reference_rate(keys: pd.DataFrame, rule: list[str]) -> float | None:
    """The count of scoring.rule_agreement_rates before: C(size, 2) over the blocks of `block_codes`."""
    codes, _ = block_codes(keys, rule)
    n = len(codes)
    if n < 2:
        return None
    sizes = np.bincount(codes).astype(np.float64)
    return float((sizes * (sizes - 1) / 2).sum() / (n * (n - 1) / 2))


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    def column(distinct: int, missing: float) -> list:
        values = [f"v{k}" for k in rng.integers(0, distinct, n)]
        return [None if r < missing / 2 else "" if r < missing else v
                for v, r in zip(values, rng.random(n), strict=True)]

    mixed = [1, "1", 2.0, "2", None, float("nan"), "", "x", 3]
    return pd.DataFrame({"few": column(5, 0.1), "some": column(max(2, n // 20), 0.3), "many": column(n, 0.05),
                         "empty": [""] * n, "mixed": [mixed[k] for k in rng.integers(0, len(mixed), n)]})


@pytest.mark.parametrize("seed", range(8))
def test_agreement_rate_equals_the_block_count(seed):
    rng = np.random.default_rng(seed)
    keys = _frame(rng, int(rng.integers(2, 3000)))
    rules = [["few"], ["some"], ["many"], ["mixed"], ["empty"], ["few", "some"], ["some", "many"], ["few", "mixed"],
             ["many", "few", "some"], ["empty", "few"]]
    cache: dict[str, np.ndarray] = {}
    for rule in rules:
        want = _reference_rate(keys, rule)
        assert agreement_rate(keys, rule, cache) == want
        assert agreement_rate(keys, rule) == want  # without a shared dict
    assert set(cache) == {"few", "some", "many", "mixed", "empty"}


def test_string_codes_are_unchanged():
    rng = np.random.default_rng(0)
    keys = _frame(rng, 2000)
    for column in keys.columns:
        assert np.array_equal(_string_codes(keys[column]), _reference_string_codes(keys[column]))
    # 1 and "1" are one key, "" and None are missing
    codes = _string_codes(pd.Series([1, "1", "", None, "a", 1.5, "1.5"], dtype=object))
    assert codes[0] == codes[1] and codes[2] == codes[3] == -1 and codes[5] == codes[6] != codes[4]


def test_agreement_rate_of_too_few_rows_is_none():
    keys = pd.DataFrame({"a": ["x", "", None], "b": ["y", "y", "y"]})
    assert agreement_rate(keys, ["a"]) is None
    assert agreement_rate(keys, ["b"]) == 1.0


def test_partitioned_pair_count_equals_one_table(monkeypatch):
    from aietl_pipelines.dedupe import candidates

    rng = np.random.default_rng(1)
    keys = np.r_[rng.integers(-5000, 5000, 20000), rng.integers(0, 1 << 61, 3000), [(1 << 62) + 5] * 7]
    sizes = np.unique(keys, return_counts=True)[1]
    want = int((sizes * (sizes - 1) // 2).sum())
    for per_part in (1 << 16, 1000, 37):
        monkeypatch.setattr(candidates, "PARTITION_KEYS", per_part)
        assert candidates.count_equal_pairs(keys) == want
    assert candidates.count_equal_pairs(np.zeros(0, dtype=np.int64)) == 0


def test_agreement_rate_partitioned_on_many_rows(monkeypatch):
    from aietl_pipelines.dedupe import candidates

    monkeypatch.setattr(candidates, "PARTITION_KEYS", 128)
    rng = np.random.default_rng(2)
    keys = _frame(rng, 5000)
    for rule in (["few", "some"], ["some", "many"], ["many", "few", "some"], ["mixed", "few"]):
        assert agreement_rate(keys, rule, {}) == _reference_rate(keys, rule)
