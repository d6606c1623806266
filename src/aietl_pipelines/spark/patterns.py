"""Comparison PATTERNS counted on Spark, for `dedupe.engine: spark`'s model fit.

A pair's posterior in EM depends only on its level vector, so EM over N pairs equals EM over the P distinct
patterns with each weighted by its count (P is thousands for 10 comparisons of 3-5 levels, N can be billions).
The patterns are counted on Spark (`pattern_counts_table`: a groupBy over the level columns of a levels table)
and `score.fit_model(patterns, ..., counts=counts)` fits the model from them (equal to the fit on the expanded
pairs up to float summation order: tests/dedupe/test_score_counts.py). Only the (pattern, count) rows reach the
driver. The table run (`spark/dedupe_tables.py`) counts its levels table in place; `pattern_counts` serves the
`Steps` interface, whose levels arrive as a driver-side array and are shipped to Spark first.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def pattern_counts_table(levels: Any, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the `columns` of a Spark DataFrame and the number of rows with each, grouped on Spark.

    Patterns come back sorted (lexicographically) as int32; counts as float64. Only the pattern table is
    collected (one row per distinct pattern)."""
    from pyspark.sql import functions as F

    found = levels.groupBy(*columns).agg(F.count(F.lit(1)).alias("n")).orderBy(*columns).toPandas()
    return found[columns].to_numpy().astype(np.int32), found["n"].to_numpy(np.float64)


def pattern_counts(spark: Any, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of `levels` (pairs x comparisons) and the number of pairs with each, grouped on Spark.

    Patterns come back sorted (lexicographically), as int levels of `levels`' dtype; counts as float64."""
    import pandas as pd

    names = [f"l{k}" for k in range(levels.shape[1])]
    frame = spark.createDataFrame(pd.DataFrame(levels.astype(np.int32), columns=names))
    patterns, counts = pattern_counts_table(frame, names)
    return patterns.astype(levels.dtype), counts
