"""Per-field comparison levels, declared like Splink's comparison library.

Each comparison turns a pair of values into a level: 0 = a value is missing (no evidence), 1 = the best
agreement, then weaker levels, and the last level = disagreement. Levels per kind:

| kind | levels (after 0 = null) |
| --- | --- |
| name, text, street, state | exact, Jaro-Winkler >= 0.92, Jaro-Winkler >= 0.80 (token-set >= 0.85 for street/text), else |
| id, phone, postcode, number | exact, Levenshtein <= 1, Levenshtein <= 2, else |
| date | exact, Levenshtein <= 1 (one typo), day and month swapped, else |
| email | exact, same local part or Jaro-Winkler >= 0.9, else |
| tokens (free text) | token-set ratio >= 0.95, >= 0.85, >= 0.70, else |
| numbers (free text, sets) | Jaccard = 1, >= 0.5, > 0, else |
| cosine (embeddings) | >= 0.95, >= 0.90, >= 0.80, >= 0.70, else |
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import token_set_ratio

N_LEVELS = {"name": 5, "text": 5, "street": 5, "state": 5, "id": 5, "phone": 5, "postcode": 5, "number": 5,
            "date": 5, "email": 4, "tokens": 5, "numbers": 5, "cosine": 6}


def _string_level(a: str, b: str, tokens: bool) -> int:
    if a == b:
        return 1
    jw = JaroWinkler.similarity(a, b)
    if jw >= 0.92:
        return 2
    if jw >= 0.80 or (tokens and token_set_ratio(a, b) >= 85):
        return 3
    return 4


def _digits_level(a: str, b: str) -> int:
    if a == b:
        return 1
    d = Levenshtein.distance(a, b, score_cutoff=3)
    return 2 if d <= 1 else 3 if d <= 2 else 4


def _date_level(a: str, b: str) -> int:
    if a == b:
        return 1
    if Levenshtein.distance(a, b, score_cutoff=2) <= 1:
        return 2
    pa, pb = a.split("-"), b.split("-")
    if len(pa) == 3 and len(pb) == 3 and pa[0] == pb[0] and pa[1] == pb[2] and pa[2] == pb[1]:
        return 3
    return 4


def _email_level(a: str, b: str) -> int:
    if a == b:
        return 1
    if a.split("@")[0] == b.split("@")[0] or JaroWinkler.similarity(a, b) >= 0.9:
        return 2
    return 3


def _tokens_level(a: str, b: str) -> int:
    r = token_set_ratio(a, b)
    return 1 if r >= 95 else 2 if r >= 85 else 3 if r >= 70 else 4


def _numbers_level(a: frozenset, b: frozenset) -> int:
    if not a or not b:
        return 0
    j = len(a & b) / len(a | b)
    return 1 if j == 1 else 2 if j >= 0.5 else 3 if j > 0 else 4


def compare_column(kind: str, left: Sequence, right: Sequence) -> np.ndarray:
    """Levels (int8) for aligned value pairs of one field."""
    out = np.zeros(len(left), dtype=np.int8)
    if kind == "numbers":
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            out[i] = _numbers_level(a, b)
        return out
    func = {
        "name": lambda a, b: _string_level(a, b, False), "state": lambda a, b: _string_level(a, b, False),
        "text": lambda a, b: _string_level(a, b, True), "street": lambda a, b: _string_level(a, b, True),
        "id": _digits_level, "phone": _digits_level, "postcode": _digits_level, "number": _digits_level,
        "date": _date_level, "email": _email_level, "tokens": _tokens_level,
    }[kind]
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        if a is None or b is None:
            continue
        out[i] = func(a, b)
    return out


def cosine_levels(cosines: np.ndarray) -> np.ndarray:
    """Embedding cosine similarity → levels 1..5."""
    c = np.asarray(cosines)
    return np.select([c >= 0.95, c >= 0.90, c >= 0.80, c >= 0.70], [1, 2, 3, 4], default=5).astype(np.int8)


def compare_pairs(values: dict[str, list], kinds: dict[str, str], left: np.ndarray, right: np.ndarray,
                  cosines: np.ndarray | None = None) -> tuple[np.ndarray, list[str], list[int]]:
    """Level matrix (pairs x comparisons), comparison names and their level counts (incl. level 0)."""
    columns, names, sizes = [], [], []
    for field, kind in kinds.items():
        vals = values[field]
        columns.append(compare_column(kind, [vals[i] for i in left], [vals[j] for j in right]))
        names.append(field)
        sizes.append(N_LEVELS[kind])
    if cosines is not None:
        columns.append(cosine_levels(cosines))
        names.append("embedding_cosine")
        sizes.append(N_LEVELS["cosine"])
    return np.stack(columns, axis=1) if columns else np.zeros((len(left), 0), np.int8), names, sizes
