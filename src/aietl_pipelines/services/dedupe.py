"""The guide's "customer deduplication" use case as one call, its labelled mode, and the model `find_duplicates`
scores with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe import labels as labelled
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.matcher import TextMatcher, fit_text_matcher, use_text_matcher
from aietl_pipelines.dedupe.steps import steps_for
from aietl_pipelines.dedupe.survivorship import build_golden_records
from aietl_pipelines.errors import AietlInputError

LabelsArg = Sequence[Mapping[str, Any]] | str | Path | None


def _config(frame: pd.DataFrame, id_column: str, fields: Mapping[str, str] | None, text_column: str | None,
            labels: LabelsArg, options: dict[str, Any], caller: str) -> DedupeConfig:
    unknown = sorted(set(options) - set(DedupeConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"{caller}() got unknown option(s) {unknown}; "
                        f"options are {sorted(DedupeConfig.__dataclass_fields__)}")
    if not fields and not text_column:
        text_column = "text" if "text" in frame.columns else None
    if isinstance(labels, str | Path):
        options = {**options, "labels_path": str(labels)}
        labels = None
    params = {**options, "id_column": id_column, "fields": dict(fields or {}), "text_column": text_column}
    if labels:
        params["labels"] = labelled.check_labels(labels)
    return DedupeConfig.from_params(params)


def _frame(records: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))


def deduplicate_customers(records: pd.DataFrame | Iterable[Mapping[str, Any]], id_column: str = "id",
                          fields: Mapping[str, str] | None = None, text_column: str | None = None,
                          labels: LabelsArg = None, **options: Any) -> pd.DataFrame:
    """Unique customers: one golden record per cluster of duplicates.

    Every option left out takes its value from conf/base/parameters_dedupe.yml, as `kedro run --pipeline dedupe`
    does, so both entry points give the same clusters for the same records, fields and blocking.

    Args:
        records: Customer records (frame or list of dicts).
        id_column: Unique id column.
        fields: Structured mode: column -> kind (name, street, email, phone, date, ...).
        text_column: Free-text mode: the column holding the whole record as text.
        labels: Labelled pairs from `train_dedupe_with_labels` (or the path of a labels JSON file).
        **options: Any `DedupeConfig` field (match_threshold, blocking, survivorship, ...).

    Returns:
        Golden records with cluster_id, golden_id, cluster_size and member_ids.
    """
    frame = _frame(records)
    config = _config(frame, id_column, fields, text_column, labels, options, "deduplicate_customers")
    result = engine.run(frame, config)
    kept = config.structured_fields() or [config.text_column]
    base = frame.reset_index(drop=True).copy()
    base[id_column] = base[id_column].astype(str)
    return build_golden_records(base, result.clusters["cluster_id"], kept, id_column, config.survivorship)


def train_dedupe_with_labels(records: pd.DataFrame | Iterable[Mapping[str, Any]], labeler: labelled.Labeler, *,
                             id_column: str, fields: Mapping[str, str] | None = None, text_column: str | None = None,
                             max_labels: int = 20, **options: Any) -> list[dict[str, Any]]:
    """Labelled mode: ask `labeler` about the pairs the model is least sure of; return every answer as a label.

    The run is the unsupervised one (same defaults as `deduplicate_customers`); after each answer the labelled
    model (`dedupe/labels.py`) is refitted and the next question is the pair it is least sure about, among
    records not yet shown. Stops after `max_labels` definite answers (or 3 x `max_labels` questions).

    Args:
        records: The records (frame or list of dicts).
        labeler: `labeler(left: dict, right: dict) -> bool | None`: True same entity, False different, None unsure.
        id_column: Unique id column.
        fields: Structured mode: column -> kind.
        text_column: Free-text mode: the column holding the whole record as text.
        max_labels: How many definite answers to collect.
        **options: Any `DedupeConfig` field; `labels=` earlier labels to start from (they are kept, not asked).

    Returns:
        Labels (earlier ones first): dicts with left_id, right_id, match (True/False/None) and both records;
        pass them to `deduplicate_customers(..., labels=...)` or save them with `save_labels` for
        `kedro run --pipeline dedupe --params dedupe.labels_path=<file>`.
    """
    frame = _frame(records)
    earlier = options.pop("labels", None)
    config = _config(frame, id_column, fields, text_column, earlier, options, "train_dedupe_with_labels")
    # the candidate pairs scored per comparison pattern (a pair's probability is its pattern's): in memory through
    # the `Steps`, or the engine's own tables (`Steps.label_pairs`; Spark: the pairs stay on Spark)
    found = (steps_for(config).label_pairs or labelled.pandas_candidates)(frame, config)
    patterns, sizes, weight = found.patterns, found.sizes, found.weight
    shown = frame.reset_index(drop=True)
    columns = [id_column, *(config.structured_fields() or [config.text_column])]
    ids = found.record_ids()
    labels = list(config.labels)
    known_l, known_r, known_y = labelled.label_positions(labels, ids)
    known = [(min(a, b), max(a, b)) for a, b in zip(known_l.tolist(), known_r.tolist(), strict=True)]
    pattern_of = found.patterns_of(sorted(set(known)))
    answered = {pair: bool(y) for pair, y in zip(known, known_y.tolist(), strict=True) if pair in pattern_of}
    asked, seen = set(answered), set()
    current, threshold = found.probability, config.match_threshold
    answers = questions = 0
    while answers < max_labels and questions < 3 * max_labels and len(asked) < found.n_pairs:
        chosen = found.next_pair(labelled.uncertainty(current, threshold), asked, seen)
        if chosen is None:
            break
        left, right, pattern = chosen
        asked.add((left, right))
        pattern_of[(left, right)] = pattern
        seen.update((left, right))
        a, b = labelled.record_view(shown, left, columns), labelled.record_view(shown, right, columns)
        answer = labeler(dict(a), dict(b))
        questions += 1
        labels.append({"left_id": ids[left], "right_id": ids[right],
                       "match": None if answer is None else bool(answer), "left": a, "right": b})
        if answer is None:
            continue
        answers += 1
        answered[(left, right)] = bool(answer)
        rows = np.array([pattern_of[pair] for pair in answered], dtype=np.int64)
        fitted = labelled.fit_labelled(patterns[rows], sizes, weight[rows], np.array(list(answered.values())))
        if fitted is not None:
            current, threshold = fitted.probability(patterns, weight), fitted.threshold
    return labels


def fit_duplicate_matcher(records: pd.DataFrame | Iterable[Mapping[str, Any]], text_field: str = "text",
                          **options: Any) -> TextMatcher:
    """Fit the model `find_duplicates` scores with on a collection's records and use it from now on.

    Without this call, `find_duplicates` scores with the last saved free-text dedupe run's model, else one fitted
    on the project's sample customers (`dedupe/matcher.py`); never with fixed weights.

    Args:
        records: The records the collection was built from (frame or list of dicts), as given to `batch_index`.
        text_field: The column holding each record's text.
        **options: Any `DedupeConfig` field for the fit (embeddings are off unless `use_embeddings=True`).

    Returns:
        The fitted matcher (now also the one `find_duplicates` uses).
    """
    frame = _frame(records)
    if text_field not in frame.columns:
        raise AietlInputError(f"The records have no '{text_field}' column (columns: {list(frame.columns)}): "
                              "set text_field to the column holding the record text.")
    matcher = fit_text_matcher(frame[text_field].dropna().astype(str).tolist(), **options)
    use_text_matcher(matcher)
    return matcher
