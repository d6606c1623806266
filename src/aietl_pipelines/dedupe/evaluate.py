"""Accuracy against ground truth: pairwise precision/recall/F1, B-cubed, candidate completeness."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pairs_from_labels(labels: np.ndarray) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    frame = pd.DataFrame({"c": labels, "i": np.arange(len(labels))})
    for members in frame.groupby("c")["i"].apply(list):
        if len(members) > 1:
            out.update((a, b) for k, a in enumerate(members) for b in members[k + 1:])
    return out


def pairwise_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 over record pairs put in the same cluster."""
    pred, true = _pairs_from_labels(predicted), _pairs_from_labels(truth)
    tp = len(pred & true)
    precision = tp / len(pred) if pred else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": float(len(true)),
            "predicted_pairs": float(len(pred))}


def bcubed(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """B-cubed precision, recall and F1 (per record, averaged)."""
    frame = pd.DataFrame({"p": predicted, "t": truth})
    both = frame.groupby(["p", "t"]).size().rename("n").reset_index()
    psize, tsize = frame.groupby("p").size(), frame.groupby("t").size()
    precision = float((both["n"] ** 2 / psize.loc[both["p"]].to_numpy()).sum() / len(frame))
    recall = float((both["n"] ** 2 / tsize.loc[both["t"]].to_numpy()).sum() / len(frame))
    return {"bcubed_precision": precision, "bcubed_recall": recall,
            "bcubed_f1": 2 * precision * recall / (precision + recall)}


def candidate_quality(left: np.ndarray, right: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pair completeness (share of true pairs among the candidates) and reduction ratio."""
    n = len(truth)
    true = _pairs_from_labels(truth)
    cand = {(min(a, b), max(a, b)) for a, b in zip(left.tolist(), right.tolist(), strict=True)}
    completeness = len(true & cand) / len(true) if true else 1.0
    total = n * (n - 1) / 2
    return {"pair_completeness": completeness, "reduction_ratio": 1 - len(cand) / total if total else 1.0,
            "candidate_pairs": float(len(cand))}
