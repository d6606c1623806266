"""`compare.column_context(..., stats=...)`: the context of the whole column from its counts, for a part of its records
(the Spark engine compares each partition of pairs over only the records it references, `spark/dedupe_levels.py`)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from aietl_pipelines.dedupe import compare


def _tf_bands_before(values):
    """`tf_bands` as it was before it read counts (the reference: the refactor must not change a band)."""
    counts = Counter(v for v in values if v is not None)
    repeated = {v: c for v, c in counts.items() if c >= 2}
    if not repeated:
        return {}
    sizes = np.fromiter(repeated.values(), dtype=float)
    order, n_values = np.unique(sizes, return_counts=True)
    records = order * n_values
    below = np.r_[0.0, np.cumsum(records)[:-1]]
    mid_rank = dict(zip(order.tolist(), ((below + records / 2) / records.sum()).tolist(), strict=True))
    return {v: 1 + min(int(3 * mid_rank[float(c)]), 2) for v, c in repeated.items()}


def _column(rng, n, vocabulary, missing=0.1):
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)  # Zipf-like: some values common, most rare
    picks = rng.choice(len(vocabulary), n, p=weights / weights.sum())
    return [None if rng.random() < missing else vocabulary[i] for i in picks]


def test_tf_bands_unchanged_and_from_counts():
    rng = np.random.default_rng(5)
    for n, size in ((0, 3), (5, 3), (300, 40), (3000, 700)):
        values = _column(rng, n, [f"v{i}" for i in range(size)])
        expected = _tf_bands_before(values)
        assert compare.tf_bands(values) == expected
        assert list(compare.tf_bands(values)) == list(expected)  # same keys, same order
        counts = Counter(v for v in values if v is not None)
        assert compare.tf_bands_from_counts(counts) == expected
        # the whole column's count bands with the counts of some of its values: those values' bands
        some = {v: c for k, (v, c) in enumerate(counts.items()) if k % 3 == 0}
        bands = compare.tf_count_bands(Counter(counts.values()))
        assert compare.tf_bands_from_counts(some, bands) == {v: b for v, b in expected.items() if v in some}
    assert compare.tf_count_bands({1: 10}) == {}


def test_context_of_some_records_from_counts_equals_the_whole_column():
    rng = np.random.default_rng(9)
    n = 400
    words = [f"w{i}" for i in range(60)]
    texts = [None if rng.random() < 0.1 else " ".join(rng.choice(words, rng.integers(1, 5))) for _ in range(n)]
    texts[3] = "   "  # no words: not a record holding any
    segments = [frozenset(rng.choice(words, rng.integers(0, 4)).tolist()) for _ in range(n)]
    segments[5] = None
    values = {"name": _column(rng, n, [f"n{i}" for i in range(50)]), "words": texts, "segments": segments,
              "numbers": [frozenset(rng.choice(["1", "2", "33", "404"], rng.integers(0, 3)).tolist()) for _ in range(n)],
              "tags": [None if rng.random() < 0.2 else "; ".join(rng.choice(["a", "b", "c"], 2)) for _ in range(n)]}
    kinds = {"name": "name", "words": "tokens", "segments": "segments", "numbers": "rare_numbers", "tags": "list"}
    left, right = rng.integers(0, n, 3000), rng.integers(0, n, 3000)
    expected, names, sizes = compare.compare_pairs(values, kinds, left, right)
    assert (expected[:, names.index("name~tf")] > 0).any() and (expected[:, names.index("words~bits")] > 0).any()

    # the whole column's stats, counted as a Spark job counts them
    def unit_counts(field, units):
        per_record = [units(v) for v in values[field]]
        return Counter(w for s in per_record for w in s), sum(1 for s in per_record if s)

    stats = {}
    for field, units in (("words", lambda v: frozenset(str(v).split()) if v else frozenset()),
                         ("segments", lambda v: frozenset(v or ())), ("numbers", lambda v: frozenset(v or ()))):
        counts, holding = unit_counts(field, units)
        stats[field] = {"counts": counts, "n_records": holding}
    name_counts = Counter(v for v in values["name"] if v is not None)
    count_bands = compare.tf_count_bands(Counter(name_counts.values()))

    # a part of the pairs over only the records they reference, the stats cut to those records' words and values
    part = np.arange(0, 3000, 7)
    rows = np.unique(np.r_[left[part], right[part]])
    local = {f: [values[f][i] for i in rows] for f in values}
    cut = {f: {"counts": {w: s["counts"][w] for v in local[f] for w in
                          (frozenset(str(v).split()) if f == "words" and v else frozenset(v or ()) if f != "words"
                           else ())},
               "n_records": s["n_records"]} for f, s in stats.items()}
    cut["name"] = {"counts": {v: name_counts[v] for v in local["name"] if v is not None}, "count_bands": count_bands}
    context = compare.column_context(local, kinds, stats=cut)
    found, found_names, found_sizes = compare.compare_pairs(local, kinds, np.searchsorted(rows, left[part]),
                                                            np.searchsorted(rows, right[part]), context=context)
    assert (found_names, found_sizes) == (names, sizes)
    np.testing.assert_array_equal(found, expected[part])
    # without the stats the part's own counts differ: the check is not vacuous
    alone, _, _ = compare.compare_pairs(local, kinds, np.searchsorted(rows, left[part]),
                                        np.searchsorted(rows, right[part]))
    assert (alone != expected[part]).any()
