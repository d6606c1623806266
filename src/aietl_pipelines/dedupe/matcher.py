"""Match score of one free-text query against candidate records (used by `find_duplicates`).

The score is the free-text dedupe model FITTED ON DATA, never fixed weights: a `TextMatcher` holds a
Fellegi-Sunter model fitted (unsupervised, `score.fit_model`) on a collection of texts and the word and segment
counts of that collection (the rarity the comparisons weigh). Which one `score_text_matches` uses, first found:

1. the matcher registered with `use_text_matcher` (e.g. `fit_text_matcher(texts)` on the records a collection
   was built from; `services.dedupe.fit_duplicate_matcher` does both);
2. the model and records of the last free-text dedupe run saved by the pipeline
   (`kedro run --pipeline dedupe --params "dedupe.text_column=full_text"`: `data/07_model_output/dedupe/state`);
3. the model fitted on the project's sample customers (`data/01_raw/customers.parquet`, `full_text`: the records
   the guide's examples look like), shipped beside this module as `sample_text_matcher.json` so that any
   process and any project root has it at once; `python -m aietl_pipelines.dedupe.matcher` fits it again.

The embedding cosine finds the candidates; it is not added to the score (it duplicates the word comparison).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.compare import (
    BITS_SUFFIX,
    compare_column,
    information_levels,
    token_levels_and_bits,
    word_information_levels,
)
from aietl_pipelines.dedupe.score import FellegiSunterModel
from aietl_pipelines.dedupe.textparse import TEXT_KINDS, parse_text

logger = logging.getLogger(__name__)
#: A query and a record are duplicates when the model's match probability is at least this.
DEFAULT_MATCH_THRESHOLD = 0.9
SAMPLE_RECORDS = Path("data/01_raw/customers.parquet")
SAVED_STATE = Path("data/07_model_output/dedupe/state")
PARSED_CACHE = 100_000  # parsed texts kept per matcher
SHIPPED = Path(__file__).with_name("sample_text_matcher.json")


@dataclass(frozen=True)
class TextMatcher:
    """A free-text match model and the corpus statistics its comparisons need."""

    model: FellegiSunterModel
    word_counts: Counter
    segment_counts: Counter
    number_counts: Counter
    n_records: int
    common: frozenset[str]   # words too common to tell records apart (prepare.text_words)
    labels: frozenset[str]   # label words taken out of segments (prepare.text_words)
    source: str              # where the model was fitted, for logs and docs
    _parsed: dict[str | None, dict[str, object]] = field(default_factory=dict, repr=False, compare=False)

    def parts(self, text: str | None) -> dict[str, object]:
        """The parsed parts of one text, with the corpus's common and label words taken out (kept for the texts
        seen last: the stored records come back as candidates again and again)."""
        found = self._parsed.get(text)
        if found is None:
            from aietl_pipelines.dedupe.prepare import drop_words

            parsed = [parse_text(text)]
            drop_words(parsed, self.common, self.labels)
            found = parsed[0]
            if len(self._parsed) >= PARSED_CACHE:
                self._parsed.clear()
            self._parsed[text] = found
        return found

    def to_dict(self) -> dict:
        """JSON-able form (values seen once are left out: an unknown value counts once anyway)."""
        def kept(counts: Counter) -> dict[str, int]:
            return {str(k): int(v) for k, v in sorted(counts.items()) if v >= 2}

        return {"model": self.model.to_dict(), "word_counts": kept(self.word_counts),
                "segment_counts": kept(self.segment_counts), "number_counts": kept(self.number_counts),
                "n_records": self.n_records, "common": sorted(self.common), "labels": sorted(self.labels),
                "source": self.source}

    @classmethod
    def from_dict(cls, data: dict) -> TextMatcher:
        """Inverse of `to_dict`."""
        return cls(FellegiSunterModel.from_dict(data["model"]), Counter(data["word_counts"]),
                   Counter(data["segment_counts"]), Counter(data["number_counts"]), int(data["n_records"]),
                   frozenset(data["common"]), frozenset(data["labels"]), str(data["source"]))

    def kinds(self) -> dict[str, str]:
        """Comparison kind of each part, as the fit chose them (`scoring.comparison_kinds`: without segments, the
        numbers are compared by their rarity)."""
        kinds = dict(TEXT_KINDS)
        if "segments" not in self.model.names:
            kinds["numbers"] = "rare_numbers"
        return kinds

    def score(self, query_text: str, candidate_texts: Sequence[str]) -> np.ndarray:
        """Match probability in [0, 1] of the query against each candidate text."""
        if not len(candidate_texts):
            return np.zeros(0)
        parsed = [self.parts(query_text), *[self.parts(t) for t in candidate_texts]]
        left = np.zeros(len(candidate_texts), dtype=np.int64)
        right = np.arange(1, len(parsed), dtype=np.int64)
        levels = np.zeros((len(right), len(self.model.names)), dtype=np.int8)
        shared_bits: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # words field -> (levels, bits shared)
        for k, name in enumerate(self.model.names):
            kind = self.kinds().get(name)
            values = [p.get(name) for p in parsed]
            if kind == "tokens":
                shared_bits[name] = token_levels_and_bits(values, left, right, self.word_counts, self.n_records)
                levels[:, k] = shared_bits[name][0]
            elif kind == "segments":
                levels[:, k] = information_levels(values, left, right, self.segment_counts, self.n_records)
            elif kind == "rare_numbers":
                levels[:, k] = information_levels(values, left, right, self.number_counts, self.n_records)
            elif kind is not None:
                levels[:, k] = compare_column(kind, [values[0]] * len(right), values[1:])
        for k, name in enumerate(self.model.names):  # the words' information companions (compare.py)
            base = name[: -len(BITS_SUFFIX)]
            if name.endswith(BITS_SUFFIX) and base in shared_bits:
                levels[:, k] = word_information_levels(*shared_bits[base])
        return self.model.probability(levels)


def matcher_from_run(prepared: pd.DataFrame, model: FellegiSunterModel, source: str) -> TextMatcher:
    """The matcher of a free-text dedupe run: its fitted model and the counts of its prepared records."""
    from aietl_pipelines.dedupe.prepare import text_words

    texts = prepared["__text"].fillna("").astype(str).tolist()
    raw = [parse_text(t) for t in texts]
    words = Counter(w for v in prepared["words"].tolist() if v for w in set(str(v).split()))
    segments = Counter(s for v in prepared["segments"].tolist() if v for s in v) if "segments" in prepared else Counter()
    numbers = Counter(x for v in prepared["numbers"].tolist() if v for x in v)
    dropped = text_words(raw)  # the words prepare took out of these records
    return TextMatcher(model, words, segments, numbers, len(prepared), dropped.common, dropped.labels, source)


def fit_text_matcher(texts: Sequence[str], **options: object) -> TextMatcher:
    """Fit the free-text model on `texts` (a collection's records), unsupervised, with the dedupe defaults
    (`options`: any `DedupeConfig` field; embeddings off unless asked for: they only add candidates)."""
    from aietl_pipelines.dedupe import engine

    frame = pd.DataFrame({"record_id": [f"r{i}" for i in range(len(texts))], "text": list(texts)})
    config = engine.DedupeConfig(id_column="record_id", text_column="text",
                                 **{"use_embeddings": False, **options})  # type: ignore[arg-type]
    result = engine.run(frame, config)
    return matcher_from_run(result.prepared, result.model, f"{len(texts)} texts")


_lock = threading.Lock()
_registered: list[TextMatcher] = []


def use_text_matcher(matcher: TextMatcher | None) -> None:
    """Score `find_duplicates` with this matcher from now on (None: back to the default)."""
    with _lock:
        _registered[:] = [matcher] if matcher is not None else []


def _saved_matcher(root: Path) -> TextMatcher | None:
    path = root / SAVED_STATE
    if not path.exists():
        return None
    from aietl_pipelines.dedupe.state import load_state

    try:
        state = load_state(path)
    except Exception as exc:  # an unreadable or older state: the next source serves
        logger.warning("find_duplicates: the saved dedupe state %s could not be read (%s)", path, exc)
        return None
    if "words" not in state.prepared.columns or "words" not in state.model.names:
        return None  # a structured run: its model compares named fields, not text
    return matcher_from_run(state.prepared, state.model, str(path))


def fit_sample_matcher(root: Path) -> TextMatcher:
    """The matcher fitted on the sample customers' free text under `root`."""
    frame = pd.read_parquet(root / SAMPLE_RECORDS, columns=["full_text"])
    matcher = fit_text_matcher(frame["full_text"].dropna().astype(str).tolist())
    return TextMatcher(matcher.model, matcher.word_counts, matcher.segment_counts, matcher.number_counts,
                       matcher.n_records, matcher.common, matcher.labels,
                       f"the sample customers ({SAMPLE_RECORDS}, {matcher.n_records} texts)")


def _sample_matcher(root: Path) -> TextMatcher:
    if SHIPPED.exists():
        return TextMatcher.from_dict(json.loads(SHIPPED.read_text(encoding="utf-8")))
    return fit_sample_matcher(root)


def default_matcher() -> TextMatcher:
    """The matcher `score_text_matches` uses (module docstring: registered, saved run, sample customers)."""
    from aietl_pipelines.dedupe.config import project_root

    with _lock:
        if not _registered:
            root = project_root()
            matcher = _saved_matcher(root) or _sample_matcher(root)
            logger.info("find_duplicates scores with the free-text model fitted on %s", matcher.source)
            _registered.append(matcher)
        return _registered[0]


def score_text_matches(query_text: str, candidate_texts: Sequence[str], matcher: TextMatcher | None = None
                       ) -> np.ndarray:
    """Match probability in [0, 1] of the query against each candidate text (`default_matcher` unless given)."""
    if not len(candidate_texts):
        return np.zeros(0)
    return (matcher or default_matcher()).score(query_text, candidate_texts)


if __name__ == "__main__":  # fit the shipped sample matcher again (after a change of the model or of the sample)
    from aietl_pipelines.dedupe.config import project_root

    fitted = fit_sample_matcher(project_root())
    SHIPPED.write_text(json.dumps(fitted.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n",
                       encoding="utf-8")
    print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size // 1024} KB): {fitted.model.names}")
