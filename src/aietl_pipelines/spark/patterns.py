"""Comparison PATTERNS counted on Spark, for `dedupe.engine: spark`'s model fit.

A pair's posterior in EM depends only on its level vector, so EM over N pairs equals EM over the P distinct
patterns with each weighted by its count (P is thousands for 10 comparisons of 3-5 levels, N can be billions).
The patterns are counted on Spark (`pattern_counts`: a groupBy over the level columns) and
`score.fit_model(patterns, ..., counts=counts)` fits the model from them (equal to the fit on the expanded pairs
up to float summation order: tests/dedupe/test_score_counts.py). Today the dedupe Steps hand the levels over as
a driver-side array (docs/spark.md, "what is open"), so this grouping saves no driver memory yet: it is the part
that stays as it is once the levels remain a Spark table.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def pattern_counts(spark: Any, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of `levels` (pairs x comparisons) and the number of pairs with each, grouped on Spark.

    Patterns come back sorted (lexicographically), as int levels of `levels`' dtype; counts as float64."""
    import pandas as pd
    from pyspark.sql import functions as F

    names = [f"l{k}" for k in range(levels.shape[1])]
    frame = spark.createDataFrame(pd.DataFrame(levels.astype(np.int32), columns=names))
    found = frame.groupBy(*names).agg(F.count(F.lit(1)).alias("n")).orderBy(*names).toPandas()
    return found[names].to_numpy().astype(levels.dtype), found["n"].to_numpy(np.float64)
