"""Stage 3 of dedupe: comparison levels of the candidate pairs and their match probability.

The comparisons live in `compare.py` and the Fellegi-Sunter model in `score.py`; this module feeds them the
prepared records and pairs of one run.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.candidates import agreement_rate
from aietl_pipelines.dedupe.compare import (
    FUZZY_TOP_KINDS,
    SET_KINDS,
    column_context,
    compare_column,
    compare_pairs,
)
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.pairs import TEXT_BLOCKING, key_column, pairs_frame
from aietl_pipelines.dedupe.prepare import prepare_records_with_codes
from aietl_pipelines.dedupe.score import FellegiSunterModel, fit_model
from aietl_pipelines.dedupe.textparse import TEXT_KINDS, TEXT_RELATED

#: Candidate pairs compared at a time.
PAIR_CHUNK = 1_000_000


#: Parts of free text compared independently of its words; the share of records that must hold one of them for
#: the text segments to be left out of the score (`comparison_kinds`).
INDEPENDENT_PARTS = ("email", "phone", "date")
MIN_INDEPENDENT_SHARE = 0.3


def comparison_kinds(config: DedupeConfig, prepared: pd.DataFrame | None = None) -> dict[str, str]:
    """Column -> comparison kind: the declared fields, or the parts parsed out of free text.

    Free text's segments are read from the same words as its word overlap: scoring both counts that evidence
    twice. They are scored only when the text has no independent part (e-mail, phone or date in at least
    MIN_INDEPENDENT_SHARE of the records, `prepared`) to train the words against; with one, they only find
    candidates (pairs.segment_pairs), and the numbers are compared by their rarity (`rare_numbers`: a shared
    "3" of "3rd street" weighs less than a shared house number or id), which the segments weighed before. Measured: restaurants 0.86 -> 0.90 and persons 0.17 -> 0.57 without them,
    organisations 0.96 -> 0.00 and inventors 0.46 -> 0.00 (no e-mail, phone or date there) without them."""
    if config.mode == "structured":
        return dict(config.fields)
    shares = ({c: float(prepared[c].notna().mean()) for c in INDEPENDENT_PARTS if c in prepared.columns}
              if prepared is not None and len(prepared) else {})
    return kinds_for_shares(config, shares)


def kinds_for_shares(config: DedupeConfig, shares: dict[str, float]) -> dict[str, str]:
    """`comparison_kinds` from the share of records holding each of the `INDEPENDENT_PARTS` (`shares`; the Spark
    table run counts them on Spark)."""
    if config.mode == "structured":
        return dict(config.fields)
    kinds = dict(TEXT_KINDS)
    if any(shares.get(c, 0.0) >= MIN_INDEPENDENT_SHARE for c in INDEPENDENT_PARTS):
        kinds.pop("segments")
        kinds["numbers"] = "rare_numbers"  # the segments weighed the rarity of the digits; now the numbers do
    return kinds


def align_levels(levels: np.ndarray, names: list[str], wanted: list[str]) -> np.ndarray:
    """The level columns of `wanted` (a saved model's comparisons) from `levels` named `names`; a comparison
    this run does not have is null (level 0, weight 0)."""
    out = np.zeros((len(levels), len(wanted)), dtype=levels.dtype)
    for k, name in enumerate(wanted):
        if name in names:
            out[:, k] = levels[:, names.index(name)]
    return out


def pair_levels(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig,
                context: dict | None = None) -> tuple[np.ndarray, list[str], list[int]]:
    """Comparison levels of the given pairs, their names and level counts (`context`: `compare.column_context`
    of the records, when the caller already has it)."""
    use_cos = bool(vectors.shape[1]) and config.cosine_in_score
    kinds = comparison_kinds(config, prepared)
    columns = {c: prepared[c].tolist() for c in kinds}
    context = column_context(columns, kinds) if context is None else context
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    cosine = pairs["cosine"].to_numpy() if use_cos else None
    parts = []  # in chunks: the per-pair strings and similarities of 10M pairs at once would take GBs (docs/scale.md)
    for start in range(0, max(len(left), 1), PAIR_CHUNK):
        # compared in the order of the right record: the candidate pairs come sorted by the left one, so a chunk's
        # left records are a narrow range and, so ordered, its right ones are read in row order too, which is
        # near the order their values sit in memory (1M pairs of 1M records: 8.3 s as they come, 5.0 s so)
        order = np.argsort(right[start:start + PAIR_CHUNK], kind="stable") + start
        part, names, sizes = compare_pairs(columns, kinds, left[order], right[order],
                                           cosine[order] if cosine is not None else None, context)
        back = np.empty_like(part)
        back[order - start] = part
        parts.append(back)
    levels = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if "__original" in prepared.columns:
        _keep_scripts_apart(levels, names, kinds, prepared["__original"].tolist(), pairs["left"].to_numpy(),
                            pairs["right"].to_numpy())
    return levels, names, sizes


def _keep_scripts_apart(levels: np.ndarray, names: list[str], kinds: dict[str, str], originals: list,
                        left: np.ndarray, right: np.ndarray) -> None:
    """Two values both written in a non-Latin script are compared in that script, not by their transliterations
    (王伟 and 汪伟 are both "wang wei"; Arabic loses its short vowels): their level is the original-script one."""
    has = np.array([isinstance(o, str) for o in originals], dtype=bool)  # None, or NaN after a pandas concat
    if not has.any() or not len(left):
        return
    rows = np.flatnonzero(has[left] & has[right])
    parsed = {i: json.loads(originals[i]) for i in np.unique(np.r_[left[rows], right[rows]]).tolist()}
    for k, name in enumerate(names):
        if name not in kinds:
            continue
        both = [e for e in rows.tolist() if name in parsed[int(left[e])] and name in parsed[int(right[e])]]
        if both:
            levels[both, k] = compare_column(kinds[name], [parsed[int(left[e])][name] for e in both],
                                             [parsed[int(right[e])][name] for e in both])


def random_pairs(n: int, config: DedupeConfig) -> np.ndarray:
    """Up to `u_sample_pairs` random pairs of distinct records (u, the non-match level frequencies)."""
    rng = np.random.default_rng(config.seed)
    m = min(config.u_sample_pairs, n * (n - 1) // 2)
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    return np.stack([a[keep], b[keep]], axis=1)


def compare(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, config: DedupeConfig
            ) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    """Level matrices of the candidate pairs and of random pairs (for u), names and level counts."""
    kinds = comparison_kinds(config, prepared)
    context = column_context({c: prepared[c].tolist() for c in kinds}, kinds)  # once for both sets of pairs
    levels, names, sizes = pair_levels(prepared, pairs, vectors, config, context)
    sample = pairs_frame(random_pairs(len(prepared), config), vectors)
    random_levels, _, _ = pair_levels(prepared, sample, vectors, config, context)
    return levels, random_levels, names, sizes


def _session_columns(config: DedupeConfig) -> list[list[str]]:
    """The columns of each EM session's rule (score.py): the blocking rules."""
    return [list(r) for r in (config.blocking if config.mode == "structured" else TEXT_BLOCKING) if r]


def rule_agreement_rates(prepared: pd.DataFrame, config: DedupeConfig,
                         column_codes: dict[str, np.ndarray] | None = None) -> dict[tuple[str, ...], float]:
    """For each EM session rule and each single compared column: the share of all record pairs (among those with
    every column of the rule present) that agree exactly on it, COUNTED: sum of C(size, 2) over the groups of equal
    values, over C(present, 2). Keys are the sorted column names. The prior is read from these
    (`score.estimate_prior`); a random sample of pairs cannot see agreements whose share shrinks like 1/N.

    Rates `prepare_with_rule_rates` counted for this very frame (its attrs, checked against the rows, columns and
    rules) are returned as they are. `column_codes`: integer codes of some columns (`prepare_records_with_codes`),
    used instead of hashing their strings."""
    kept = prepared.attrs.get(RULE_RATES_ATTR)
    if isinstance(kept, dict) and kept.get("signature") == _rates_signature(prepared, config):
        return {tuple(rule): float(rate) for rule, rate in kept["rates"]}
    column_codes = dict(column_codes or {})  # each column's strings hashed once for all the rules (candidates.py)
    rates: dict[tuple[str, ...], float] = {}
    for key, columns in rate_rules(config, comparison_kinds(config, prepared), prepared):
        rate = agreement_rate(prepared, columns, column_codes)
        if rate is not None:
            rates[key] = rate
    return rates


def rate_rules(config: DedupeConfig, kinds: dict[str, str], prepared: Any) -> list[tuple[tuple[str, ...], list[str]]]:
    """The rules `rule_agreement_rates` counts: (sorted column names, the prepared columns whose equal values make
    its blocks). `prepared`: anything with the prepared frame's `columns` (a Spark `RecordsTable` too)."""
    found: list[tuple[tuple[str, ...], list[str]]] = []
    for rule in _session_columns(config) + [[c] for c in kinds]:
        key = tuple(sorted(rule))
        if key in {k for k, _ in found} or not all(c in prepared.columns and c in kinds for c in rule):
            continue
        if any(kinds[c] in SET_KINDS for c in rule):  # value sets have no exact-equality blocks
            continue
        # nor do free-text words: their session holds the pairs agreeing at level 1 (weighted Jaccard >= 0.85, typos
        # shared), and a rate of equal word strings divided by the share of matches at level 1 (`estimate_prior`)
        # set the prior below the truth as level 1 widened: FEBRL 2 free text 5.8e-6 where 1.5e-4 is true once
        # misspelt words are shared (F1 0.989 -> 0.984); without it the prior is read from the other sessions and,
        # with 3 or more hits, from the random pairs
        if any(kinds[c] in FUZZY_TOP_KINDS for c in rule):
            continue
        # the blocks the rule's join builds (a phone's key column), counted as `candidates.blocking_pairs` sees them
        found.append((key, [key_column(prepared, c) for c in rule]))
    return found


#: Key of `prepared.attrs` under which `prepare_with_rule_rates` keeps the rates it counted.
RULE_RATES_ATTR = "aietl_rule_rates"


def _rates_signature(prepared: pd.DataFrame, config: DedupeConfig) -> str:
    """What the rates of a frame depend on besides its values: its rows and columns, the rules and the kinds. The
    rates do not depend on the order of the rows; a frame sliced, extended or given other columns differs here."""
    return json.dumps([len(prepared), list(map(str, prepared.columns)), config.mode, _session_columns(config),
                       comparison_kinds(config, prepared)], default=str)


def prepare_with_rule_rates(records: pd.DataFrame, config: DedupeConfig) -> pd.DataFrame:
    """`prepare.prepare_records`, with the records' `rule_agreement_rates` counted from the integer codes its
    normalisation reads off (no prepared string is hashed again) and kept in the frame's attrs, which copies,
    parquet files and reorderings keep. At 1M structured records the rates took 1.5-2.6 s from the strings (their
    time grew as N^1.36: the string objects outgrow the caches) and 0.46 s from the codes. Free text has no
    codes: its rates are counted when asked for."""
    prepared, codes = prepare_records_with_codes(records, config)
    if codes:
        rates = rule_agreement_rates(prepared, config, codes)
        prepared.attrs[RULE_RATES_ATTR] = {"signature": _rates_signature(prepared, config),
                                           "rates": [[list(rule), rate] for rule, rate in rates.items()]}
    return prepared


def score(levels: np.ndarray, random_levels: np.ndarray, names: list[str], sizes: list[int], config: DedupeConfig,
          model: FellegiSunterModel | None = None, *, rule_rates: dict[tuple[str, ...], float] | None = None
          ) -> tuple[np.ndarray, FellegiSunterModel]:
    """Match probability of each candidate pair (EM-fitted model unless one is given). `rule_rates`:
    `rule_agreement_rates` of the records (the prior is counted from them; None: estimated on random pairs)."""
    patterns, inverse, counts = level_patterns(levels)
    if model is None:  # fitted on the distinct patterns with their pair counts: equal to the per-pair fit (score.py)
        sessions = [[names.index(c) for c in r] for r in _session_columns(config) if all(c in names for c in r)]
        model = fit_model(patterns, random_levels, names, sizes, iterations=config.em_iterations, sessions=sessions,
                          related=TEXT_RELATED if config.mode == "text" else None, counts=counts,
                          rule_rates=rule_rates)
    return model.probability(patterns)[inverse], model


def level_patterns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of `levels` (comparison patterns), the pattern of each row and the rows per pattern.

    10.8M candidate pairs of 13 comparisons (1M records) hold about 25,000 patterns: EM over them instead of the
    pairs took scoring at 1M from 23.8 s to 5.5 s (docs/benchmarks.md). Rows are packed into one int64 key (bits per
    comparison from its largest level) and grouped by hashing that key (no sort: linear in the pairs), the
    patterns unpacked from the distinct keys. The keys are packed `PACK_ROWS` rows at a time, in place: one pass
    over the levels in cache-sized blocks, where whole-column temporaries (three 88 MB arrays per comparison at 1M
    records) made the time per pair grow with the pairs."""
    levels = np.asarray(levels)
    top = levels.max(axis=0).astype(np.int64) if len(levels) else np.zeros(levels.shape[1], np.int64)
    bits = [int(t).bit_length() or 1 for t in top.tolist()]
    if sum(bits) > 62 or levels.min(initial=0) < 0:  # cannot pack: group the rows themselves
        patterns, inverse, counts = np.unique(levels, axis=0, return_inverse=True, return_counts=True)
        return patterns, inverse.reshape(-1), counts.astype(np.float64)
    key = np.empty(len(levels), dtype=np.int64)
    for start in range(0, len(levels), PACK_ROWS):
        block, out = levels[start:start + PACK_ROWS], key[start:start + PACK_ROWS]
        out[:] = block[:, 0] if bits else 0  # no comparison: every row one empty pattern
        for k in range(1, len(bits)):
            np.left_shift(out, bits[k], out=out)
            np.bitwise_or(out, block[:, k], out=out)
    inverse, keys = pd.factorize(key)
    del key
    patterns = np.zeros((len(keys), levels.shape[1]), dtype=levels.dtype)
    shift = 0
    for k in reversed(range(len(bits))):  # the last comparison sits in the lowest bits
        patterns[:, k] = (keys >> shift) & ((1 << bits[k]) - 1)
        shift += bits[k]
    return patterns, inverse.astype(np.int64, copy=False), np.bincount(inverse, minlength=len(keys)).astype(np.float64)


#: Rows packed per block in `level_patterns`: 64K int64 keys (512 KB) and their levels stay in a core's L2 cache.
PACK_ROWS = 1 << 16


def scored_pairs(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, threshold: float
                 ) -> pd.DataFrame:
    """Candidate pairs by record id and position, with cosine, match probability and `is_match`."""
    ids = prepared["record_id"].to_numpy()
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    return pd.DataFrame({"left_id": ids[left], "right_id": ids[right], "left": left, "right": right,
                         "cosine": pairs["cosine"].to_numpy(), "match_probability": probability,
                         "is_match": probability >= threshold})


def matched_pairs(prepared: pd.DataFrame, pairs: pd.DataFrame, probability: np.ndarray, threshold: float
                  ) -> pd.DataFrame:
    """The pairs at or above the threshold by record id: left_id, right_id, match_probability."""
    keep = probability >= threshold
    ids = prepared["record_id"].to_numpy()
    return pd.DataFrame({"left_id": ids[pairs["left"].to_numpy()[keep]],
                         "right_id": ids[pairs["right"].to_numpy()[keep]], "match_probability": probability[keep]})


def apply_labels(prepared: pd.DataFrame, pairs: pd.DataFrame, vectors: np.ndarray, levels: np.ndarray,
                 probability: np.ndarray, model: FellegiSunterModel, config: DedupeConfig
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """Labelled mode (`dedupe/labels.py`): the candidate pairs (plus labelled pairs the candidates missed) and
    their probability from the labelled model, rescaled so that the threshold read from the labels falls on
    `match_threshold`; labelled pairs are certain (1 or 0). Without labels, the pairs and EM probability as given."""
    from aietl_pipelines.dedupe import labels as labelled

    left, right, truth = labelled.label_positions(config.labels, prepared["record_id"].tolist())
    if not len(truth):
        return pairs, probability
    known = pairs_frame(np.stack([left, right], axis=1), vectors)
    known_levels, known_names, _ = pair_levels(prepared, known, vectors, config)
    return apply_known_labels(known, truth, known_levels, known_names, pairs, levels, probability, model, config)


def apply_known_labels(known: pd.DataFrame, truth: np.ndarray, known_levels: np.ndarray, known_names: list[str],
                       pairs: pd.DataFrame, levels: np.ndarray, probability: np.ndarray, model: FellegiSunterModel,
                       config: DedupeConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """`apply_labels` once the labelled pairs are compared: `known` (left, right, cosine) the labelled pairs in
    `label_positions`' order, `truth` their labels, `known_levels` / `known_names` their comparison levels (an
    engine that keeps the records as tables compares them there: Spark's `dedupe_tables.labelled_patterns`)."""
    from aietl_pipelines.dedupe import labels as labelled

    left, right = known["left"].to_numpy(), known["right"].to_numpy()
    known_levels = align_levels(known_levels, known_names, model.names)
    fitted = labelled.fit_labelled(known_levels, model.sizes, model.match_weight(known_levels), truth)
    if fitted is not None and len(levels):
        raw = np.clip(fitted.probability(levels, model.match_weight(levels)), 1e-12, 1 - 1e-12)
        shift = _logit(config.match_threshold) - _logit(fitted.threshold)
        probability = 1.0 / (1.0 + np.exp(-(np.log(raw / (1 - raw)) + shift)))
    key = {(min(a, b), max(a, b)): bool(t) for a, b, t in zip(left.tolist(), right.tolist(), truth.tolist(), strict=True)}
    found = {(min(a, b), max(a, b)): e for e, (a, b) in enumerate(zip(pairs["left"].tolist(), pairs["right"].tolist(),
                                                                      strict=True))}
    probability = np.array(probability, dtype=float)
    extra = []
    for pair, match in key.items():
        if pair in found:
            probability[found[pair]] = 1.0 if match else 0.0
        else:
            extra.append((*pair, 1.0 if match else 0.0))
    if extra:  # their cosines as computed for `known` (a product of the same two rows: either order, same bits)
        cosine = {(min(a, b), max(a, b)): c for a, b, c in zip(left.tolist(), right.tolist(),
                                                              known["cosine"].tolist(), strict=True)}
        more = pd.DataFrame({"left": np.array([e[0] for e in extra], dtype=np.int64),
                             "right": np.array([e[1] for e in extra], dtype=np.int64),
                             "cosine": np.array([cosine[e[:2]] for e in extra], dtype=np.float64)})
        pairs = pd.concat([pairs[["left", "right", "cosine"]], more], ignore_index=True)
        probability = np.r_[probability, [e[2] for e in extra]]
    return pairs, probability


def _logit(p: float) -> float:
    p = float(np.clip(p, 1e-12, 1 - 1e-12))
    return float(np.log(p / (1 - p)))
