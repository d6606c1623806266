"""Match score of one free-text query against candidate records (used by `find_duplicates`).

A Fellegi-Sunter model over the free-text comparisons (words, e-mail, phone, date, numbers) with fixed
weights: the m/u probabilities EM estimated, unsupervised, on the FEBRL free-text renderings (rounded; see
docs/dedupe.md). The embedding cosine finds the candidates; it is not added to the score, because it
duplicates the evidence of the word comparison (measured: adding it made EM collapse).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aietl_pipelines.dedupe.compare import compare_column
from aietl_pipelines.dedupe.textparse import TEXT_KINDS, parse_text

#: A query and a record are duplicates when the model's match probability is at least this.
DEFAULT_MATCH_THRESHOLD = 0.9
PRIOR = 0.001
#: log2(m/u) per level (index 0 = missing → 0).
WEIGHTS = {
    "words": (0.0, 11.5, 11.0, 7.0, -4.0),
    "email": (0.0, 10.0, 4.0, -4.0),
    "phone": (0.0, 10.0, 6.0, 2.0, -4.0),
    "date": (0.0, 10.5, 4.0, 3.0, -3.0),
    "numbers": (0.0, 10.5, 8.0, 3.0, -5.0),
}


def score_text_matches(query_text: str, candidate_texts: Sequence[str]) -> np.ndarray:
    """Match probability in [0, 1] of the query against each candidate text."""
    if not candidate_texts:
        return np.zeros(0)
    query = parse_text(query_text)
    cands = [parse_text(t) for t in candidate_texts]
    total = np.full(len(cands), np.log2(PRIOR / (1 - PRIOR)))
    for name, kind in TEXT_KINDS.items():
        levels = compare_column(kind, [query[name]] * len(cands), [c[name] for c in cands])
        total += np.asarray(WEIGHTS[name])[levels]
    return 1.0 / (1.0 + np.power(2.0, -total))
