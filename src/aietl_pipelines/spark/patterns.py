"""Fellegi-Sunter EM on comparison PATTERNS: the distinct level vectors of the candidate pairs and how many pairs
have each, as `dedupe.engine: spark` fits the model.

A pair's posterior in EM depends only on its level vector, so EM over N pairs equals EM over the P distinct
patterns with each weighted by its count (P is thousands for 10 comparisons of 3-5 levels, N can be billions).
The patterns are counted on Spark (`pattern_counts`: a groupBy over the level columns) and only the counts come
to the driver. `fit_patterns` is `score.fit_model` with every sum over pairs made a count-weighted sum over
patterns; it reuses score.py's pieces (u from random pairs, the starting m, bounding and ordering, the prior
from the sessions) and equals `fit_model` on the expanded pairs up to float summation order
(tests/spark/test_dedupe_patterns.py checks m, u, prior and threshold to 1e-9).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aietl_pipelines.dedupe import score as fs


def pattern_counts(spark: Any, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of `levels` (pairs x comparisons) and the number of pairs with each, grouped on Spark.

    Patterns come back sorted (lexicographically), as int levels of `levels`' dtype; counts as float64."""
    import pandas as pd
    from pyspark.sql import functions as F

    names = [f"l{k}" for k in range(levels.shape[1])]
    frame = spark.createDataFrame(pd.DataFrame(levels.astype(np.int32), columns=names))
    found = frame.groupBy(*names).agg(F.count(F.lit(1)).alias("n")).orderBy(*names).toPandas()
    return found[names].to_numpy().astype(levels.dtype), found["n"].to_numpy(np.float64)


def _level_counts(patterns: np.ndarray, counts: np.ndarray, size: int, k: int) -> np.ndarray:
    return np.bincount(patterns[:, k], weights=counts, minlength=size).astype(float)[:size]


def _agree(patterns: np.ndarray, exact: list[list[int]], rule: list[int]) -> np.ndarray:
    return np.all([np.isin(patterns[:, k], exact[k]) for k in rule], axis=0)


def _em(patterns: np.ndarray, counts: np.ndarray, u: list[np.ndarray], m: list[np.ndarray], active: list[int],
        prior: float, iterations: int, tol: float = 1e-6) -> tuple[list[np.ndarray], float]:
    """`score._em` over weighted patterns."""
    sizes = [len(x) for x in m]
    n = counts.sum()
    per_level = [_level_counts(patterns, counts, sizes[k], k) for k in range(len(sizes))]
    lam = prior
    for _ in range(iterations):
        total = np.full(len(patterns), np.log2(lam / (1 - lam)))
        for k in active:
            w = np.log2(m[k] / u[k])
            w[0] = 0.0
            total += w[patterns[:, k]]
        post = 1.0 / (1.0 + np.power(2.0, -total))
        new_lam = float(np.clip((post * counts).sum() / n, 1e-6, 1 - 1e-6))
        fitted = fs.level_frequencies(patterns, sizes, weights=post * counts, smoothing=1e-3)
        for k in active:
            m[k] = fs.bound_and_order(fitted[k], u[k], per_level[k])
        done = abs(new_lam - lam) < tol
        lam = new_lam
        if done:
            break
    return m, lam


def model_threshold(probability: np.ndarray, counts: np.ndarray) -> float:
    """`score.model_threshold` of the expanded pairs, from each pattern's probability and count.

    Within a run of equal probabilities the expected F1 is monotone in how many of them are taken, so its best
    is at the first or the last pair of a run: both are evaluated, in the expanded order."""
    if not len(probability) or (probability * counts).sum() <= 0:
        return 0.5
    order = np.argsort(-probability, kind="stable")
    p, w = probability[order], counts[order]
    taken, tp = np.cumsum(w), np.cumsum(p * w)
    total = tp[-1]
    first = 2 * (np.r_[0.0, tp[:-1]] + p) / (np.r_[0.0, taken[:-1]] + 1 + total)
    last = 2 * tp / (taken + total)
    f1 = np.stack([first, last], axis=1).reshape(-1)
    return float(p[int(np.argmax(f1)) // 2])


def _single_comparison_sessions(patterns: np.ndarray, counts: np.ndarray, random_levels: np.ndarray,
                                u: list[np.ndarray], exact: list[list[int]], per_field: list[list[int]],
                                companions: dict[int, list[int]], estimates: list[list[np.ndarray]],
                                found: list[tuple[list[int], float]], sizes: list[int], min_pairs: int,
                                is_tf: list[bool]) -> None:
    """`score._single_comparison_sessions` over weighted patterns."""
    todo = [k for k in range(len(sizes)) if not estimates[k] and not is_tf[k]]
    if not todo or not len(patterns):
        return
    m_now = [np.mean(e, axis=0) if e else start for e, start in zip(estimates, fs._start_m(sizes), strict=True)]
    prior = fs.estimate_prior(found, m_now, random_levels, exact)
    for k in todo:
        for fixed in per_field:
            if k in fixed or any(not estimates[j] for j in fixed) or any(k in companions[j] for j in fixed):
                continue
            session = _agree(patterns, exact, fixed)
            values, weights = patterns[session, k], counts[session]
            weights = weights[values != 0]
            values = values[values != 0]
            if weights.sum() < min_pairs:
                continue
            pm = float(np.prod([m_now[j][exact[j]].sum() for j in fixed]))
            pu = float(np.prod([u[j][exact[j]].sum() for j in fixed]))
            lam = float(np.clip(prior * pm / (prior * pm + (1 - prior) * pu), 0.01, 1.0))
            freq = np.bincount(values, weights=weights, minlength=sizes[k]).astype(float)[: sizes[k]] / weights.sum()
            m = np.clip((freq - (1 - lam) * u[k]) / lam, 0.0, None)
            m[0] = 0.0
            if m[1:].sum() <= 0:
                continue
            estimates[k].append(np.r_[1.0, m[1:] / m[1:].sum()])
            break


def fit_patterns(patterns: np.ndarray, counts: np.ndarray, random_levels: np.ndarray, names: list[str],
                 sizes: list[int], iterations: int = 25, min_session_pairs: int = 10,
                 exact: list[list[int]] | None = None, sessions: list[list[int]] | None = None,
                 related: dict[str, list[str]] | None = None) -> fs.FellegiSunterModel:
    """`score.fit_model` on (pattern, count) rows instead of one row per pair (same arguments)."""
    counts = np.asarray(counts, dtype=np.float64)
    u = fs.random_pair_u(random_levels, sizes)
    exact = exact or [[1] for _ in sizes]
    n_comp = len(sizes)
    related = related or {}
    companions = {k: [j for j in range(n_comp) if names[j] == names[k] + "~tf" or names[j] in related.get(names[k], ())]
                  for k in range(n_comp)}
    per_field = [[k] for k in range(n_comp) if not names[k].endswith("~tf")]
    estimates: list[list[np.ndarray]] = [[] for _ in sizes]
    found: list[tuple[list[int], float]] = []

    def run_session(fixed: list[int]) -> None:
        session = _agree(patterns, exact, fixed) if len(patterns) else np.zeros(0, bool)
        left_out = set(fixed) | {j for k in fixed for j in companions[k]}
        active = [j for j in range(n_comp) if j not in left_out and (patterns[session, j] != 0).any()]
        if counts[session].sum() < min_session_pairs or not active:
            return
        m, lam = _em(patterns[session], counts[session], u, fs._start_m(sizes), active, 0.5, iterations)
        for j in active:
            estimates[j].append(m[j])
        found.append((fixed, lam))

    declared = [list(r) for r in sessions or [] if r]
    usable = [r for r in declared if len(patterns) and counts[_agree(patterns, exact, r)].sum() >= min_session_pairs]
    rules = usable or per_field
    for fixed in rules:
        run_session(fixed)
    for fixed in per_field:  # as fit_model: comparisons every session blocked on, from another single comparison
        unestimated = {k for k in range(n_comp) if not estimates[k] and not names[k].endswith("~tf")}
        if not unestimated:
            break
        if fixed not in rules and not set(fixed) & unestimated:
            run_session(fixed)
    _single_comparison_sessions(patterns, counts, random_levels, u, exact, per_field, companions, estimates, found,
                                sizes, min_session_pairs, [n.endswith("~tf") for n in names])
    m_final = fs._start_m(sizes)
    missing = [k for k in range(n_comp) if not estimates[k]]
    if missing and len(patterns):
        m_all, _ = _em(patterns, counts, u, fs._start_m(sizes), list(range(n_comp)), 0.05, iterations)
        for k in missing:
            estimates[k].append(m_all[k])
    for k in range(n_comp):
        if estimates[k]:
            m_final[k] = fs.bound_and_order(np.mean(estimates[k], axis=0), u[k],
                                            _level_counts(patterns, counts, sizes[k], k))
    prior = fs.estimate_prior(found, m_final, random_levels, exact)
    model = fs.FellegiSunterModel(names, sizes, m_final, u, prior)
    model.threshold = model_threshold(model.probability(patterns) if len(patterns) else np.zeros(0), counts)
    return model
