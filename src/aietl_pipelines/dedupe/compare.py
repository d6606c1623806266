"""Per-field comparison levels, declared like Splink's comparison library.

Each comparison turns a pair of values into a level: 0 = a value is missing (no evidence), 1 = the best
agreement, then weaker levels, and the last level = disagreement. Levels per kind:

| kind | levels (after 0 = null) |
| --- | --- |
| name, text, street, state | exact, Jaro-Winkler >= 0.92, Jaro-Winkler >= 0.80 (token-set >= 0.85 for street/text), else |
| organisation | exact or same words in any order, token-set >= 90 or Jaro-Winkler >= 0.92 or one the other's acronym, token-set >= 75 or Jaro-Winkler >= 0.80, else |
| phone | exact or one the other's suffix (>= 7 digits: country code / trunk 0 written or not), Levenshtein <= 1, <= 2, else |
| id, postcode, number | exact, Levenshtein <= 1, Levenshtein <= 2, else |
| list (co-authors, classes, tags) | same set, >= 2 items in common, 1 in common, none |
| date | exact, Levenshtein <= 1 (one typo), day and month swapped, else |
| email | exact, same local part or Jaro-Winkler >= 0.9, else |
| tokens (free text words) | information-weighted overlap (`idf_token_levels`; a word one edit from an unshared word of the other text counts as shared): Jaccard >= 0.85, >= 0.7, >= 0.55, >= 0.4, contained >= 0.7, else |
| `<words>~bits` (information companion of free-text words) | the bits the two texts share (sum of log2(N / records holding each shared word)) in bands of 2 bits, when the words agree at level 1; 0 otherwise |
| segments (free text: the values between separators, `textparse.text_segments`) | information of the values both records hold (`information_levels`): >= 3, 2, 1.5, 1, 0.5 times log2(N) bits, some, none |
| rare_numbers (free text's numbers when its segments are not scored) | as segments, over the digit groups |
| numbers (free text, sets) | Jaccard = 1, >= 0.5, > 0, else |
| repeated (free text: the values a text states twice, its subject, `textparse.repeated_values`) | a value both repeat, the same name with or without a middle name or initial (token-set >= 90), token-set >= 70, else; 0 when a text repeats nothing |
| cosine (embeddings) | >= 0.95, >= 0.90, >= 0.80, >= 0.70, else |
| `<field>~tf` (term frequency of an exact agreement on a name, organisation, text or street field) | the agreed value is rare, middling, common (terciles of the value counts in this data); 0 when the pair does not agree exactly |

The term-frequency companion is Splink's term-frequency adjustment in Fellegi-Sunter form: its level is null
(weight 0) unless the field agrees exactly, so its weight is log2 P(band | match, exact) / P(band | non-match,
exact) and the two together weigh the joint event "exact on a value of this rarity": a match on a rare name is
worth more than on "Smith", estimated from the data like every other weight.

Free-text words have no field to count values in: their companion `words~bits` carries the INFORMATION of the words
two texts share when they agree (level 1), B = sum of log2(N / records holding each shared word), in bands of
BITS_STEP bits. Its weights are not fitted by EM but set as Splink's term-frequency adjustment (`score.py`,
`information_weights`): u of the agreed words is 2^-B (words occur independently of one another), so the pair's
words weigh log2(m) + B instead of the level's average log2(m / u): a shared "karl heinz schmidt" of 20 bits counts
for more than a shared "hans muller" of 10, as the structured model sums the rarity of first, middle and last name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import token_set_ratio

#: Information companion of free-text words (`word_information_levels`): BITS_BANDS bands of BITS_STEP bits, the
#: first holding every agreement above BITS_TOP - BITS_STEP bits.
BITS_SUFFIX = "~bits"
BITS_TOP, BITS_STEP, BITS_BANDS = 40.0, 2.0, 20
N_LEVELS = {"name": 5, "text": 5, "street": 5, "state": 5, "id": 5, "phone": 5, "postcode": 5, "number": 5,
            "date": 5, "email": 4, "tokens": 7, "segments": 8, "rare_numbers": 8, "numbers": 5, "cosine": 6, "organisation": 5, "list": 5, "tf": 4,
            "repeated": 5, "bits": BITS_BANDS + 1}
#: A word of one text that is not in the other counts as shared when it is one edit (Levenshtein) from a word of the
#: other text, both of at least TYPO_MIN_LENGTH letters, and each text has at most TYPO_WORDS words the other lacks.
TYPO_MIN_LENGTH = 4
TYPO_WORDS = 2
#: Kinds whose exact agreements get a term-frequency companion comparison `<field>~tf`.
TF_KINDS = ("name", "organisation", "text", "street")
TF_SUFFIX = "~tf"
#: Set-valued kinds compared by the information of the values both records hold (`information_levels`).
INFORMATION_KINDS = ("segments", "rare_numbers")
#: Kinds whose prepared values are sets (free text's segments and numbers): no exact-equality blocks.
SET_KINDS = ("segments", "numbers", "rare_numbers", "repeated")
#: Kinds whose best level is wider than exact equality of the prepared value (free-text words: information-weighted
#: Jaccard >= 0.85, typos shared): the pairs with equal values are not the pairs agreeing at level 1.
FUZZY_TOP_KINDS = ("tokens",)


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


def _phone_level(a: str, b: str) -> int:
    if a == b:
        return 1
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    short = short.lstrip("0")
    if len(short) >= 7 and long_.endswith(short):
        return 1
    d = Levenshtein.distance(a, b, score_cutoff=3)
    return 2 if d <= 1 else 3 if d <= 2 else 4


def _acronym(a: str, b: str) -> bool:
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    words = [w for w in long_.split() if w not in ("of", "and", "for", "the")]
    return " " not in short and len(short) >= 2 and len(words) == len(short) and "".join(w[0] for w in words) == short


def _organisation_level(a: str, b: str) -> int:
    if a == b or sorted(a.split()) == sorted(b.split()):
        return 1
    ts = token_set_ratio(a, b)
    jw = JaroWinkler.similarity(a, b)
    if ts >= 90 or jw >= 0.92 or _acronym(a, b):
        return 2
    return 3 if ts >= 75 or jw >= 0.80 else 4


def _set(value: object) -> frozenset:
    if isinstance(value, frozenset):
        return value
    return frozenset(x for x in str(value).split("; ") if x) if value else frozenset()


def _list_level(a: object, b: object) -> int:
    sa, sb = _set(a), _set(b)
    if not sa or not sb:
        return 0
    common = len(sa & sb)
    return 1 if sa == sb else 2 if common >= 2 else 3 if common == 1 else 4


def _tokens_level(a: str, b: str) -> int:
    r = token_set_ratio(a, b)
    return 1 if r >= 95 else 2 if r >= 85 else 3 if r >= 70 else 4


def _numbers_level(a: frozenset, b: frozenset) -> int:
    if not a or not b:
        return 0
    j = len(a & b) / len(a | b)
    return 1 if j == 1 else 2 if j >= 0.5 else 3 if j > 0 else 4


def _repeated_level(a: frozenset, b: frozenset) -> int:
    """1 a value both texts repeat; else the best token-set ratio of a value of each: 2 >= 90 (one name with or
    without its middle name or initial, "greenberg j robert" / "greenberg robert"), 3 >= 70, 4 else (two subjects).
    With one disagreement level, a variant of the subject's name cost as much as another person (-4.7 bits on the
    PatentsView inventors), which therefore cost too little."""
    if not a or not b:
        return 0
    if a & b:
        return 1
    best = max(token_set_ratio(x, y) for x in a for y in b)
    return 2 if best >= 90 else 3 if best >= 70 else 4


def compare_column(kind: str, left: Sequence, right: Sequence) -> np.ndarray:
    """Levels (int8) for aligned value pairs of one field."""
    out = np.zeros(len(left), dtype=np.int8)
    if kind in ("numbers", "list", "repeated"):
        func_set = {"numbers": _numbers_level, "list": _list_level, "repeated": _repeated_level}[kind]
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            out[i] = func_set(a, b)
        return out
    func = {
        "name": lambda a, b: _string_level(a, b, False), "state": lambda a, b: _string_level(a, b, False),
        "text": lambda a, b: _string_level(a, b, True), "street": lambda a, b: _string_level(a, b, True),
        "id": _digits_level, "phone": _phone_level, "postcode": _digits_level, "number": _digits_level,
        "organisation": _organisation_level,
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


def tf_bands(values: Sequence) -> dict[object, int]:
    """Band (1 rare, 2 middling, 3 common) of each value that occurs at least twice, by the terciles of the
    value counts over the records holding such values (adapts to each column of each data set)."""
    from collections import Counter

    return tf_bands_from_counts(Counter(v for v in values if v is not None))


def tf_count_bands(values_per_count: Mapping[int, int]) -> dict[int, int]:
    """`tf_bands`' band of each value count of at least 2, given how many distinct values occur that often in the
    column (`values_per_count`: count -> values; counts below 2 are ignored). The band depends on a value's count
    only, so a table of counts (small: a few thousand distinct counts at 100M records) decides it for every value."""
    order = sorted(int(c) for c in values_per_count if c >= 2)
    if not order:
        return {}
    sizes = np.array(order, dtype=float)
    n_values = np.array([values_per_count[c] for c in order], dtype=np.int64)
    records = sizes * n_values  # records holding values of each count
    below = np.r_[0.0, np.cumsum(records)[:-1]]
    mid_rank = ((below + records / 2) / records.sum()).tolist()
    return {c: 1 + min(int(3 * r), 2) for c, r in zip(order, mid_rank, strict=True)}


def tf_bands_from_counts(counts: Mapping[object, int], count_bands: Mapping[int, int] | None = None
                         ) -> dict[object, int]:
    """`tf_bands` from the values' counts (value -> records holding it) instead of the values. `count_bands`:
    `tf_count_bands` of the whole column, when `counts` holds the (whole-column) counts of only some of its values
    (those of one partition of records); else the bands are read from `counts` itself."""
    from collections import Counter

    repeated = {v: int(c) for v, c in counts.items() if c >= 2}
    if count_bands is None:
        count_bands = tf_count_bands(Counter(repeated.values()))
    return {v: count_bands[c] for v, c in repeated.items()}


def tf_levels(bands: dict[object, int], exact: np.ndarray, left_values: Sequence) -> np.ndarray:
    """Level of the term-frequency companion: the band of the agreed value where the field agrees exactly."""
    out = np.zeros(len(exact), dtype=np.int8)
    for i in np.flatnonzero(exact == 1).tolist():
        out[i] = bands.get(left_values[i], 0)
    return out


def token_index(values: Sequence, counts: Mapping[str, int] | None = None, n_records: int | None = None
                ) -> tuple[list, dict[str, float], list[float]]:
    """What `idf_token_levels` reads from the whole column: word sets, word weights and each record's total
    (computed once per column and run, not once per chunk of pairs: `column_context`)."""
    from collections import Counter

    sets = [frozenset(str(v).split()) if v else None for v in values]
    df = Counter(w for s in sets if s for w in s) if counts is None else counts
    n = max(sum(1 for s in sets if s), 2) if n_records is None else max(n_records, 2)
    words = {w for s in sets if s for w in s}
    idf = {w: float(np.log2(n / max(df.get(w, 1), 1))) + 1.0 for w in words}
    return sets, idf, [sum(idf[w] for w in s) if s else 0.0 for s in sets]


def idf_token_levels(values: Sequence, left: np.ndarray, right: np.ndarray, counts: Mapping[str, int] | None = None,
                     n_records: int | None = None, index: tuple | None = None) -> np.ndarray:
    """Levels of free-text word sets by their information-weighted overlap: each word weighs log2(N / records
    holding it) over this data, so a shared rare name counts for much, a shared "street" or "smith" for little.
    J = shared / union weight, C = shared / smaller record's weight:
    1 J >= 0.85; 2 J >= 0.7; 3 J >= 0.55; 4 J >= 0.4; 5 C >= 0.7 (one record's words mostly in the other); 6 else;
    a character-level token-set ratio >= 95 lifts a pair to level 2 at least, >= 85 to 4, >= 70 to 5 (typos).
    A misspelt word ("sveqn" for "sven") is shared with the weight of the rarer reading when it is one edit from a
    word of the other text (`TYPO_WORDS`, `TYPO_MIN_LENGTH`), as a structured name field agrees at Jaro-Winkler
    0.92: "sven klaus meyer" / "meyer sveqn klaus" agree at level 1.
    `counts`/`n_records`: word counts of a reference corpus (a fitted matcher) instead of those of `values`; a word
    the corpus lacks counts once."""
    return token_levels_and_bits(values, left, right, counts, n_records, index)[0]


def token_levels_and_bits(values: Sequence, left: np.ndarray, right: np.ndarray,
                          counts: Mapping[str, int] | None = None, n_records: int | None = None,
                          index: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`idf_token_levels` and the information the two texts share in bits (sum of log2(N / records holding each
    shared word); 0 where a text has no words), read in the same pass."""
    sets, idf, total = token_index(values, counts, n_records) if index is None else index
    out = np.zeros(len(left), dtype=np.int8)
    bits = np.zeros(len(left))
    for e, (i, j) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        a, b = sets[i], sets[j]
        if not a or not b:
            continue
        both = a & b
        shared, n_shared, total_a, total_b = sum(idf[w] for w in both), len(both), total[i], total[j]
        if len(both) < min(len(a), len(b)) and len(a) - len(both) <= TYPO_WORDS and len(b) - len(both) <= TYPO_WORDS:
            unmatched = list(b - both)
            for x in a - both:
                y = _one_edit(x, unmatched)
                if y is not None:  # one word read two ways: weighed once, as the rarer reading (`idf` - 1 bit)
                    weight = min(idf[x], idf[y])
                    shared, n_shared = shared + weight, n_shared + 1
                    total_a, total_b = total_a - idf[x] + weight, total_b - idf[y] + weight
                    unmatched.remove(y)
        bits[e] = shared - n_shared  # idf is log2(N / df) + 1
        union = total_a + total_b - shared
        jac, cont = shared / union, shared / min(total_a, total_b)
        level = 1 if jac >= 0.85 else 2 if jac >= 0.7 else 3 if jac >= 0.55 else 4 if jac >= 0.4 else \
            5 if cont >= 0.7 else 6
        if level > 2:  # typos: a misspelt rare word is not shared, but the characters still are
            ratio = token_set_ratio(values[i], values[j])
            level = min(level, 2 if ratio >= 95 else 4 if ratio >= 85 else 5 if ratio >= 70 else 6)
        out[e] = level
    return out, bits


def _one_edit(word: str, others: list[str]) -> str | None:
    """The first of `others` one edit from `word` (both at least TYPO_MIN_LENGTH letters), else None."""
    if len(word) < TYPO_MIN_LENGTH:
        return None
    for other in others:
        if len(other) >= TYPO_MIN_LENGTH and Levenshtein.distance(word, other, score_cutoff=1) <= 1:
            return other
    return None


def word_information_levels(levels: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Level of the words' information companion `<words>~bits`: null (0) unless the words agree at level 1, else
    the band of the bits they share: 1 above BITS_TOP - BITS_STEP bits, then one band per BITS_STEP bits down to
    BITS_BANDS (at most BITS_STEP bits). Its weights are set, not fitted: `score.information_weights`."""
    out = np.zeros(len(levels), dtype=np.int8)
    agree = levels == 1
    out[agree] = 1 + np.clip(np.floor((BITS_TOP - bits[agree]) / BITS_STEP), 0, BITS_BANDS - 1).astype(np.int8)
    return out


def band_bits() -> np.ndarray:
    """The least information (bits) of each level of a `~bits` companion (index 0, null: 0)."""
    return np.r_[0.0, np.clip(BITS_TOP - BITS_STEP * np.arange(1, BITS_BANDS + 1), 0.0, None)]


def information_index(values: Sequence, counts: Mapping[str, int] | None = None, n_records: int | None = None
                      ) -> tuple[list, dict, float]:
    """What `information_levels` reads from the whole column: value sets, bits per value and log2 N."""
    from collections import Counter

    sets = [v if isinstance(v, frozenset) else frozenset(v or ()) for v in values]
    df = Counter(w for s in sets for w in s) if counts is None else counts
    n = max(sum(1 for s in sets if s), 2) if n_records is None else max(n_records, 2)
    bits = {w: float(np.log2(n / max(df.get(w, 1), 1))) for s in sets for w in s}
    return sets, bits, float(np.log2(n))


def information_levels(values: Sequence, left: np.ndarray, right: np.ndarray, counts: Mapping[str, int] | None = None,
                       n_records: int | None = None, index: tuple | None = None) -> np.ndarray:
    """Levels of set-valued fields (free text's segments) by the information the two records share: each value
    weighs log2(N / records holding it) bits over this data (a value unique to two records: about log2 N bits, one
    in every record: 0), and the shared bits B give, with L = log2 N: 1 B >= 3L; 2 B >= 2L; 3 B >= 1.5L; 4 B >= L;
    5 B >= L/2; 6 B > 0; 7 nothing shared; 0 when a record has no value. So a shared rare name and street weigh
    more than a shared city, in every data set by its own counts. `counts`/`n_records`: those of a reference
    corpus instead (a fitted matcher); a value the corpus lacks counts once."""
    sets, bits, unit = information_index(values, counts, n_records) if index is None else index
    cuts = np.array([3.0, 2.0, 1.5, 1.0, 0.5]) * unit
    out = np.zeros(len(left), dtype=np.int8)
    for e, (i, j) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        a, b = sets[i], sets[j]
        if not a or not b:
            continue
        shared = a & b
        if not shared:
            out[e] = 7
            continue
        total = sum(bits[w] for w in shared)
        out[e] = 1 + int(np.searchsorted(-cuts, -total, side="right")) if total > 0 else 6
    return out


def column_context(values: dict[str, list], kinds: dict[str, str],
                   stats: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Per field, what its comparison reads from the whole column (term-frequency bands, word and value weights,
    list fields as sets): computed once per run and shared by every chunk of candidate pairs and the random
    pairs. Recomputed per chunk, it made comparing grow as N^1.28 (11 chunks x 1M values at 1M records).

    `stats`: per field, counts over ALL the records when `values` holds only some of them (the records one
    partition of pairs references, `spark/dedupe_levels.py`), giving the context of the whole column: for free-text
    words and the information kinds, "counts" (word / value -> records holding it, at least every one `values`
    holds) and "n_records" (records holding any); for the term-frequency kinds, "counts" (value -> records holding
    it) and "count_bands" (`tf_count_bands` of the whole column). A field without stats is read from `values`."""
    context: dict[str, Any] = {}
    for field, kind in kinds.items():
        vals = values[field]
        given = (stats or {}).get(field) or {}
        if kind == "list":
            vals = [_set(v) if v is not None else None for v in vals]
        counts, n_records = given.get("counts"), given.get("n_records")
        context[field] = {"values": vals,
                          "index": token_index(vals, counts, n_records) if kind == "tokens" else
                          information_index(vals, counts, n_records) if kind in INFORMATION_KINDS else None,
                          "bands": (tf_bands(vals) if counts is None else
                                    tf_bands_from_counts(counts, given.get("count_bands")))
                          if kind in TF_KINDS else None}
    return context


def compare_pairs(values: dict[str, list], kinds: dict[str, str], left: np.ndarray, right: np.ndarray,
                  cosines: np.ndarray | None = None, context: dict[str, Any] | None = None
                  ) -> tuple[np.ndarray, list[str], list[int]]:
    """Level matrix (pairs x comparisons), comparison names and their level counts (incl. level 0).

    Fields of the kinds in TF_KINDS also get their term-frequency companion `<field>~tf` (bands from `values`,
    all the records, so candidate and random pairs share them), free-text words their information companion
    `<field>~bits` (`word_information_levels`). `context`: `column_context(values, kinds)`, when
    the caller compares several chunks of pairs."""
    context = column_context(values, kinds) if context is None else context
    columns, names, sizes = [], [], []
    for field, kind in kinds.items():
        vals, index = context[field]["values"], context[field]["index"]
        lv, rv = [vals[i] for i in left], [vals[j] for j in right]
        bits = None
        if kind == "tokens":
            level, bits = token_levels_and_bits(vals, left, right, index=index)
        else:
            level = (information_levels(vals, left, right, index=index) if kind in INFORMATION_KINDS else
                     compare_column(kind, lv, rv))
        columns.append(level)
        names.append(field)
        sizes.append(N_LEVELS[kind])
        if bits is not None:
            columns.append(word_information_levels(level, bits))
            names.append(field + BITS_SUFFIX)
            sizes.append(N_LEVELS["bits"])
        if kind in TF_KINDS:
            columns.append(tf_levels(context[field]["bands"], level, lv))
            names.append(field + TF_SUFFIX)
            sizes.append(N_LEVELS["tf"])
    if cosines is not None:
        columns.append(cosine_levels(cosines))
        names.append("embedding_cosine")
        sizes.append(N_LEVELS["cosine"])
    return np.stack(columns, axis=1) if columns else np.zeros((len(left), 0), np.int8), names, sizes
