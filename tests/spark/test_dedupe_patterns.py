"""Comparison patterns counted on Spark (`spark/patterns.py`): the distinct level rows and their pair counts.

That `score.fit_model(patterns, ..., counts=counts)` equals the fit on one row per pair is tested without Spark
in tests/dedupe/test_score_counts.py."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.spark
def test_patterns_are_counted_on_spark(spark):
    from aietl_pipelines.spark.patterns import pattern_counts

    rng = np.random.default_rng(5)
    levels = np.stack([rng.integers(0, size, 4_000) for size in (4, 3, 4, 3, 4)], axis=1).astype(np.int8)
    patterns, counts = pattern_counts(spark, levels)
    expected, n = np.unique(levels, axis=0, return_counts=True)
    np.testing.assert_array_equal(patterns, expected)
    np.testing.assert_array_equal(counts, n)
    assert patterns.dtype == levels.dtype
