"""Labelled mode: a person answers a few pairs the system chooses (active learning); the answers improve the model.

How it works (docs/dedupe.md, "Labelled mode"):

1. The unsupervised run (prepare → candidates → comparison levels → Fellegi-Sunter EM) scores every candidate pair.
2. Active learning, as the `dedupe` library does it (dedupeio/dedupe `labeler.py`: the pair the current
   classifier is least sure about is asked next): the next question is the unlabelled candidate pair whose match
   probability under the current model is closest to 1/2, skipping records already asked about (so that the few
   questions cover different parts of the data). Until both answers have been seen the current model is the EM
   model; afterwards it is the labelled model of step 3, refitted after every answer. Both models score a pair by
   its comparison pattern only, so the scores are computed once per pattern (`CandidatePatterns`); the pairs stay
   in memory (`PairsInMemory`) or in the engine's tables (Spark: `spark/dedupe_tables.SparkLabelPairs`), where
   the next pair is looked up (ties: the pair first in (left, right) order, as here).
3. The labelled model is a logistic regression (L2) on the EM match weight of a pair, either alone (the labels
   recalibrate the unsupervised model) or with the one-hot comparison levels (missing values neutral; the labels
   reweigh the comparisons too), whichever the labels support better by leave-one-out log-loss. Its match threshold is read from the labels: the cut between
   the labelled matches and non-matches that maximises F1 on them (the middle of the gap when they separate).
4. Labelled pairs are certain: a "yes" is probability 1, a "no" probability 0 (the non-match then also splits a
   chain in clustering, `cluster.py`).

Labels are saved as JSON (`save_labels`) with the ids and the field values of both records, and reused by later
runs (`deduplicate_customers(..., labels=...)`, `kedro run --pipeline dedupe --params dedupe.labels_path=...`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from aietl_pipelines.errors import AietlInputError

logger = logging.getLogger(__name__)

Labeler = Callable[[dict, dict], "bool | None"]


def save_labels(labels: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Write labels as a JSON list (left_id, right_id, match, left, right), replacing the file atomically."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.writing")
    tmp.write_text(json.dumps(list(labels), ensure_ascii=False, indent=1, default=str))
    tmp.replace(file)


def load_labels(path: str | Path | None) -> list[dict[str, Any]]:
    """Labels saved by `save_labels` (an empty list without a path)."""
    if not path:
        return []
    file = Path(path)
    if not file.exists():
        raise AietlInputError(f"The labels file {file} does not exist: write it with `python -m aietl_pipelines "
                              "dedupe-label` (or `train_dedupe_with_labels`), or drop `dedupe.labels_path`.")
    try:
        labels = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise AietlInputError(f"The labels file {file} is not JSON ({exc.msg} at line {exc.lineno}): write it "
                              "again with `python -m aietl_pipelines dedupe-label`.") from None
    return check_labels(labels, str(file))


def check_labels(labels: Iterable[Mapping[str, Any]], origin: str = "labels") -> list[dict[str, Any]]:
    """Labels as dicts with left_id, right_id (text) and match (bool or None); a clear error otherwise."""
    out = []
    for k, label in enumerate(labels):
        if not isinstance(label, Mapping) or not {"left_id", "right_id", "match"} <= set(label):
            raise AietlInputError(f"Label {k} in {origin} needs left_id, right_id and match (true/false/null), "
                                  f"got {label!r}.")
        match = label["match"]
        if match is not None and not isinstance(match, bool):
            raise AietlInputError(f"Label {k} in {origin}: match must be true, false or null, not {match!r}.")
        out.append({**label, "left_id": str(label["left_id"]), "right_id": str(label["right_id"])})
    return out


VARIANTS = ("weight", "levels")


def _features(levels: np.ndarray, sizes: Sequence[int], weight: np.ndarray, variant: str = "levels") -> np.ndarray:
    """The EM weight (in units of 10 bits); with ``levels`` also the one-hot comparison levels (level 0, missing,
    is all zeros: neutral)."""
    total = np.clip(weight, -60, 60)[:, None].astype(np.float32) / 10.0
    if variant == "weight":
        return total
    blocks = [(levels[:, k][:, None] == np.arange(1, size)[None, :]).astype(np.float32)
              for k, size in enumerate(sizes)]
    return np.hstack([*blocks, total])


@dataclass
class Logistic:
    """L2-regularised logistic regression fitted by Newton's method (the objective of scikit-learn's
    `LogisticRegression(C=...)`, intercept not penalised). Hand-written because a few dozen labelled pairs need
    microseconds, while scikit-learn's L-BFGS path took 0.1-0.3 s per fit on the loaded 2-core machine and the
    leave-one-out choice below fits hundreds of times per labelling session."""

    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(cls, features: np.ndarray, truth: np.ndarray, c: float = 1.0, iterations: int = 50) -> Logistic:
        x = np.hstack([np.asarray(features, dtype=float), np.ones((len(features), 1))])
        y = np.asarray(truth, dtype=float)
        w = np.zeros(x.shape[1])
        penalty = np.full(x.shape[1], 1.0 / c)
        penalty[-1] = 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -35, 35)))
            gradient = x.T @ (p - y) + penalty * w
            hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(len(w))
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(w[:-1], float(w[-1]))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        z = np.clip(np.asarray(features, dtype=float) @ self.coef + self.intercept, -35, 35)
        p = 1.0 / (1.0 + np.exp(-z))
        return np.stack([1 - p, p], axis=1)


@dataclass
class LabelledModel:
    """The logistic regression over comparison vectors + EM weight, and the threshold read from the labels."""

    classifier: Any
    threshold: float
    sizes: list[int]
    variant: str = "levels"

    def probability(self, levels: np.ndarray, weight: np.ndarray) -> np.ndarray:
        if not len(levels):
            return np.zeros(0)
        return self.classifier.predict_proba(_features(levels, self.sizes, weight, self.variant))[:, 1]


def threshold_from_labels(probability: np.ndarray, truth: np.ndarray) -> float:
    """The cut on `probability` that maximises F1 on the labelled pairs (a middle between neighbouring values; of
    equally good cuts, the one nearest 1/2)."""
    order = np.unique(probability)
    cuts = np.r_[(order[:-1] + order[1:]) / 2, 0.5] if len(order) > 1 else np.array([0.5])
    best, best_f1 = 0.5, -1.0
    for cut in cuts:
        predicted = probability >= cut
        tp = float((predicted & truth).sum())
        f1 = 2 * tp / max(predicted.sum() + truth.sum(), 1)
        if f1 > best_f1 + 1e-12 or (abs(f1 - best_f1) <= 1e-12 and abs(cut - 0.5) < abs(best - 0.5)):
            best, best_f1 = float(cut), f1
    return best


def fit_labelled(levels: np.ndarray, sizes: Sequence[int], weight: np.ndarray, truth: np.ndarray,
                 regularisation: float = 1.0) -> LabelledModel | None:
    """The labelled model from labelled pairs (None until both a match and a non-match are labelled)."""
    truth = np.asarray(truth, dtype=bool)
    if len(truth) < 2 or truth.all() or not truth.any():
        return None
    variant = choose_variant(levels, sizes, weight, truth, regularisation)
    classifier = Logistic.fit(_features(levels, sizes, weight, variant), truth, regularisation)
    model = LabelledModel(classifier, 0.5, list(sizes), variant)
    model.threshold = threshold_from_labels(model.probability(levels, weight), truth)
    return model


def choose_variant(levels: np.ndarray, sizes: Sequence[int], weight: np.ndarray, truth: np.ndarray,
                   regularisation: float = 1.0) -> str:
    """Which labelled model the labels support, by leave-one-out log-loss on the labels themselves (as the
    `dedupe` library picks its regularisation by cross-validation): the EM weight recalibrated (``weight``, two
    parameters), or the comparison levels reweighted as well (``levels``). Needs 3 labels of each answer to
    consider ``levels``."""
    if min(int(truth.sum()), int((~truth).sum())) < 3:
        return "weight"
    losses = {}
    for variant in VARIANTS:
        features = _features(levels, sizes, weight, variant)
        loss = 0.0
        for k in range(len(truth)):
            keep = np.arange(len(truth)) != k
            if truth[keep].all() or not truth[keep].any():
                continue
            fitted = Logistic.fit(features[keep], truth[keep], regularisation)
            p = float(np.clip(fitted.predict_proba(features[k:k + 1])[0, 1], 1e-6, 1 - 1e-6))
            loss -= np.log(p if truth[k] else 1 - p)
        losses[variant] = loss
    return min(VARIANTS, key=lambda v: (losses[v], VARIANTS.index(v)))


def label_positions(labels: Sequence[Mapping[str, Any]], record_ids: Sequence[str]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left, right, match) row positions of the definite labels whose two records are in this run."""
    position = {r: i for i, r in enumerate(record_ids)}
    rows = [(position[label["left_id"]], position[label["right_id"]], bool(label["match"])) for label in labels
            if label.get("match") is not None and label["left_id"] in position and label["right_id"] in position
            and label["left_id"] != label["right_id"]]
    unused = sum(1 for label in labels if label.get("match") is not None) - len(rows)
    if unused:
        logger.warning("%d label(s) name records that are not in this run: they are not used", unused)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    left, right, match = (np.array(x) for x in zip(*rows, strict=True))
    return left.astype(np.int64), right.astype(np.int64), match.astype(bool)


def uncertainty(probability: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """How sure the model is of each probability: the distance of its log-odds from the threshold's (0: least
    sure)."""
    p = np.clip(np.asarray(probability, dtype=float), 1e-12, 1 - 1e-12)
    t = float(np.clip(threshold, 1e-12, 1 - 1e-12))
    return np.abs(np.log(p / (1 - p)) - np.log(t / (1 - t)))


def choose_next(probability: np.ndarray, left: np.ndarray, right: np.ndarray, asked: set[int],
                seen_records: set[int], threshold: float = 0.5) -> int | None:
    """The candidate pair to ask next: the most uncertain (log-odds nearest the model's threshold), records not
    shown yet first."""
    return choose_uncertain(uncertainty(probability, threshold), left, right, asked, seen_records)


def choose_uncertain(uncertain: np.ndarray, left: np.ndarray, right: np.ndarray, asked: set[int],
                     seen_records: set[int]) -> int | None:
    """`choose_next` from each pair's `uncertainty`: the first pair in (uncertainty, position) order that is not
    asked and whose two records were not shown yet; else the first not asked (ties: the earlier position)."""
    order = np.argsort(uncertain, kind="stable")
    fallback = None
    for e in order.tolist():
        if e in asked:
            continue
        if int(left[e]) not in seen_records and int(right[e]) not in seen_records:
            return e
        if fallback is None:
            fallback = e
    return fallback


def record_view(records: pd.DataFrame, position: int, columns: Sequence[str]) -> dict[str, Any]:
    """The record a person is shown: its declared columns, missing values as None."""
    row = records.iloc[position]
    return {c: (None if (not isinstance(row[c], list | tuple | np.ndarray) and pd.isna(row[c])) else row[c])
            for c in columns}


# ---------------------------------------------------------------------------------------------- the candidate pairs

class CandidatePatterns(Protocol):
    """What active learning (`services.train_dedupe_with_labels`) needs of the unsupervised run's candidate pairs.

    A pair's probability, under the EM model and under every labelled model, depends only on its comparison
    pattern (its levels; the labelled model's features are the one-hot levels and the EM weight), so the scores
    are computed per pattern: `patterns` (P x k, in the order `scoring.level_patterns` finds them over the pairs
    in (left, right) order, the order the EM model was fitted in), `weight` (the EM match weight of each pattern)
    and `probability` (the EM probability of each). Pairs are (left, right) row positions of `prepared`, left <
    right, ordered by (left, right) (the candidates' order). `pandas_candidates` holds them in memory; an engine
    that keeps the pairs as tables registers its own (`Steps.label_pairs`, Spark: `dedupe_tables.label_pairs`).
    """

    prepared: pd.DataFrame  # or an engine's table of them (Spark's `RecordsTable`: `SparkLabelPairs`)
    patterns: np.ndarray
    sizes: list[int]
    weight: np.ndarray
    probability: np.ndarray

    def record_ids(self) -> list:
        """The records' ids in row order (the labels name records by id)."""
        return self.prepared["record_id"].tolist()
    n_pairs: int

    def patterns_of(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
        """The pattern index of each of these pairs that is a candidate pair."""
        ...

    def next_pair(self, uncertain: np.ndarray, asked: set[tuple[int, int]], seen_records: set[int]
                  ) -> tuple[int, int, int] | None:
        """(left, right, pattern) of the pair to ask next (`choose_uncertain` with `uncertain[pattern]` as each
        pair's uncertainty, ties by (left, right)); None when every pair was asked."""
        ...


@dataclass
class PatternScores:
    """The fields every `CandidatePatterns` implementation holds (see there), without the pairs."""

    prepared: pd.DataFrame  # or an engine's table of them (Spark's `RecordsTable`: `SparkLabelPairs`)
    patterns: np.ndarray
    sizes: list[int]
    weight: np.ndarray
    probability: np.ndarray

    def record_ids(self) -> list:
        """The records' ids in row order (the labels name records by id)."""
        return self.prepared["record_id"].tolist()


@dataclass
class PairsInMemory(PatternScores):
    """`CandidatePatterns` with the pairs as arrays (the pandas engine, and any engine without `label_pairs`)."""

    left: np.ndarray
    right: np.ndarray
    pattern: np.ndarray  # each pair's pattern index

    @property
    def n_pairs(self) -> int:
        return len(self.left)

    def __post_init__(self) -> None:
        self._index = {(a, b): e for e, (a, b) in enumerate(zip(self.left.tolist(), self.right.tolist(), strict=True))}

    def patterns_of(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
        return {pair: int(self.pattern[self._index[pair]]) for pair in pairs if pair in self._index}

    def next_pair(self, uncertain: np.ndarray, asked: set[tuple[int, int]], seen_records: set[int]
                  ) -> tuple[int, int, int] | None:
        e = choose_uncertain(np.asarray(uncertain)[self.pattern], self.left, self.right,
                             {self._index[pair] for pair in asked if pair in self._index}, seen_records)
        return None if e is None else (int(self.left[e]), int(self.right[e]), int(self.pattern[e]))


def pandas_candidates(records: pd.DataFrame, config: Any) -> PairsInMemory:
    """The unsupervised run through the engine's `Steps` (prepare, embed, candidates, compare, score), its pairs on
    the driver: `train_dedupe_with_labels`' pairs for an engine without `Steps.label_pairs`."""
    from aietl_pipelines.dedupe.scoring import level_patterns
    from aietl_pipelines.dedupe.steps import steps_for

    steps = steps_for(config)
    prepared = steps.prepare(records, config)
    vectors = steps.embed(prepared, config)
    pairs, _ = steps.candidates(prepared, vectors, config)
    levels, random_levels, names, sizes = steps.compare(prepared, pairs, vectors, config)
    _, model = steps.score(levels, random_levels, names, sizes, config, rule_rates=steps.rule_rates(prepared, config))
    patterns, inverse, _ = level_patterns(levels)  # the patterns the model was fitted on, in that order
    return PairsInMemory(prepared, patterns, list(sizes), model.match_weight(patterns), model.probability(patterns),
                         pairs["left"].to_numpy(np.int64), pairs["right"].to_numpy(np.int64),
                         np.asarray(inverse, dtype=np.int64))
