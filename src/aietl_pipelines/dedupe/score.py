"""Unsupervised Fellegi-Sunter scoring: u from random pairs, m and the prior by EM (as Splink does).

Each comparison level has m = P(level | match) and u = P(level | non-match); a pair's match weight is
log2(lambda/(1-lambda)) + sum(log2(m/u)) over its non-null levels, and its match probability the logistic of
that. No labels are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FellegiSunterModel:
    """Fitted m and u per comparison level (index 0 = null, unused) and the prior match rate."""

    names: list[str]
    sizes: list[int]
    m: list[np.ndarray] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    prior: float = 0.01

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per level (0 for the null level)."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            w = np.log2(m / u)
            w[0] = 0.0
            out.append(w)
        return out

    def match_weight(self, levels: np.ndarray, prior: float | None = None) -> np.ndarray:
        p = self.prior if prior is None else prior
        total = np.full(len(levels), np.log2(p / (1 - p)))
        for k, w in enumerate(self.weights()):
            total += w[levels[:, k]]
        return total

    def probability(self, levels: np.ndarray, prior: float | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.power(2.0, -self.match_weight(levels, prior)))

    def to_dict(self) -> dict:
        return {"names": self.names, "sizes": self.sizes, "m": [x.tolist() for x in self.m],
                "u": [x.tolist() for x in self.u], "prior": self.prior}


def level_frequencies(levels: np.ndarray, sizes: list[int], weights: np.ndarray | None = None,
                      smoothing: float = 1.0) -> list[np.ndarray]:
    """Smoothed frequency of each non-null level per comparison (index 0 left at 1, unused)."""
    out = []
    for k, size in enumerate(sizes):
        counts = np.bincount(levels[:, k], weights=weights, minlength=size).astype(float)[:size]
        counts[0] = 0
        counts[1:] += smoothing
        freq = counts / counts[1:].sum()
        freq[0] = 1.0
        out.append(freq)
    return out


def fit_em(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int],
           prior: float = 0.05, iterations: int = 25, tol: float = 1e-6) -> FellegiSunterModel:
    """Fit m and the prior on candidate pairs by EM with u fixed from random pairs."""
    u = level_frequencies(random_levels, sizes, smoothing=0.5)
    m = []
    for size in sizes:  # start: matches mostly agree at the best level
        start = np.linspace(1.0, 0.05, size - 1) ** 2
        m.append(np.r_[1.0, start / start.sum()])
    model = FellegiSunterModel(names, sizes, m, u, prior)
    for _ in range(iterations):
        post = model.probability(levels)
        new_prior = float(np.clip(post.mean(), 1e-6, 1 - 1e-6))
        model.m = level_frequencies(levels, sizes, weights=post, smoothing=1e-3)
        done = abs(new_prior - model.prior) < tol
        model.prior = new_prior
        if done:
            break
    return model
