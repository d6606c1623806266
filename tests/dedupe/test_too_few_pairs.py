"""A file too small to fit the match model says so in one log line; a small file that can be fitted does not."""

from __future__ import annotations

import logging

import pandas as pd

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import engine
from aietl_pipelines.dedupe.config import DedupeConfig, default_params

TINY = [
    "Jon Smith, 12 High Street, Leeds, jon.smith@example.com",
    "John Smith - 12 High St - Leeds - jon.smith@example.com",
    "Ivan Petrov, ul. Lenina 5, Moskva, +7 495 123 45 67",
    "Иван Петров, ул. Ленина 5, Москва, +7 495 123-45-67",
    "Maria Garcia; Calle Mayor 3; Madrid; 310/246-1501",
    "María García | Calle Mayor 3 | Madrid | 310-246-1501",
]


def _config() -> DedupeConfig:
    return DedupeConfig.from_params({**default_params(), "id_column": "id", "text_column": "full_text",
                                     "use_embeddings": False})


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "too few candidate pairs" in r.getMessage()]


def test_too_few_pairs_to_fit_is_logged_once(caplog):
    frame = pd.DataFrame({"id": range(len(TINY)), "full_text": TINY})
    with caplog.at_level(logging.WARNING, logger="aietl_pipelines.dedupe.score"):
        result = engine.run(frame, _config())
    said = _warnings(caplog)
    assert len(said) == 1, said
    assert "label some pairs" in said[0] and "kedro dedupe-label" in said[0]
    assert sorted(result.clusters["record_id"].astype(int)) == list(range(len(TINY)))  # every record has a cluster


def test_a_small_file_that_can_be_fitted_is_not_warned_about(caplog):
    records = generate_customers(n_entities=30, seed=4)
    frame = pd.DataFrame({"id": range(len(records)), "full_text": records["full_text"]})
    with caplog.at_level(logging.WARNING, logger="aietl_pipelines.dedupe.score"):
        result = engine.run(frame, _config())
    assert _warnings(caplog) == []
    assert result.clusters["cluster_id"].nunique() < len(frame)  # duplicates found
