"""Drift of free-text columns: MMD between the embeddings of reference and current texts.

Texts are embedded with the project's model (all-MiniLM-L6-v2, normalised vectors); the statistic is the squared
maximum mean discrepancy with a linear kernel (the squared distance between the two mean embeddings), and its
p-value comes from a permutation test. At most `max_samples` texts per side are used (sampled with the seed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aietl_pipelines.errors import AietlInputError


def mmd_permutation_test(ref: np.ndarray, cur: np.ndarray, n_permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """(MMD², permutation p-value) for two samples of vectors."""
    rng = np.random.default_rng(seed)
    pooled = np.vstack([ref, cur])
    n = len(ref)

    def stat(a: np.ndarray, b: np.ndarray) -> float:
        diff = a.mean(axis=0) - b.mean(axis=0)
        return float(diff @ diff)

    observed = stat(ref, cur)
    count = 0
    for _ in range(n_permutations):
        idx = rng.permutation(len(pooled))
        count += stat(pooled[idx[:n]], pooled[idx[n:]]) >= observed
    return observed, (count + 1) / (n_permutations + 1)


def text_drift(reference: pd.Series, current: pd.Series, threshold: float = 0.05, max_samples: int = 1000,
               n_permutations: int = 200, seed: int = 0, cache_dir: str | None = None) -> dict[str, object]:
    """Embedding drift of one text column: test "embedding_mmd", score = permutation p-value."""
    from aietl_pipelines.embeddings import embed_texts

    ref = reference.dropna().astype(str)
    cur = current.dropna().astype(str)
    if ref.empty or cur.empty:
        raise AietlInputError(f"Text column '{reference.name}' has no text on one side: nothing to compare.")
    ref = ref.sample(min(max_samples, len(ref)), random_state=seed)
    cur = cur.sample(min(max_samples, len(cur)), random_state=seed)
    mmd, p_value = mmd_permutation_test(embed_texts(ref.tolist(), cache_dir=cache_dir),
                                        embed_texts(cur.tolist(), cache_dir=cache_dir), n_permutations, seed)
    return {"column": str(reference.name), "column_type": "text", "test": "embedding_mmd", "score": p_value,
            "threshold": threshold, "drifted": bool(p_value < threshold), "psi": float("nan"), "psi_band": "n/a",
            "n_reference": len(ref), "n_current": len(cur), "mmd": mmd}
