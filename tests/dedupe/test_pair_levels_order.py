"""`scoring.pair_levels` compares each chunk in the order of the right record and puts the levels back: the
levels are those of `compare.compare_pairs` on the pairs as given, whatever the chunking and the pairs' order."""

import numpy as np
import pandas as pd

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import scoring
from aietl_pipelines.dedupe.compare import compare_pairs
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.prepare import prepare_records

FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text", "postcode": "postcode",
          "state": "state", "phone": "phone", "email": "email", "date_of_birth": "date"}


def test_levels_follow_the_pairs_whatever_the_chunks(monkeypatch) -> None:
    config = DedupeConfig(id_column="record_id", fields=FIELDS, blocking=[["last_name"]], cosine_in_score=False)
    prepared = prepare_records(generate_customers(n_entities=300, seed=5), config)
    rng = np.random.default_rng(0)
    n = len(prepared)
    left, right = rng.integers(0, n, 5000), rng.integers(0, n, 5000)
    keep = left != right
    pairs = pd.DataFrame({"left": left[keep], "right": right[keep], "cosine": np.zeros(int(keep.sum()))})
    kinds = scoring.comparison_kinds(config, prepared)
    expected, names, _ = compare_pairs({c: prepared[c].tolist() for c in kinds}, kinds, pairs["left"].to_numpy(),
                                       pairs["right"].to_numpy())
    monkeypatch.setattr(scoring, "PAIR_CHUNK", 777)  # several chunks, the last one short
    levels, got_names, _ = scoring.pair_levels(prepared, pairs, np.zeros((n, 0), np.float32), config)
    assert got_names == names
    assert levels.dtype == expected.dtype and (levels == expected).all()


def test_patterns_of_rows_without_comparisons() -> None:
    patterns, inverse, counts = scoring.level_patterns(np.zeros((5, 0), np.int8))
    assert patterns.shape == (1, 0) and inverse.tolist() == [0] * 5 and counts.tolist() == [5.0]
