"""What records are embedded from: field values and free-text pieces, each distinct one embedded once."""

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.normalize import normalize_values
from aietl_pipelines.dedupe.prepare import (
    embed,
    embedded_values,
    embedding_pieces,
    embedding_words,
    prepare_records,
)
from aietl_pipelines.embeddings import embed_field_values, embed_record_values, embed_texts
from aietl_pipelines.errors import AietlInputError


def test_pieces_leave_out_email_phone_date_and_keep_other_scripts():
    text = ("Samantha Robinson - +1 362 652 4034 - 9281 Highland Boulevard, Omaha, NE 41178 - "
            "samantha_robinson76@mail.com - born 04 Jun 2004")
    assert embedding_pieces(text) == ["Samantha Robinson", "Highland Boulevard", "Omaha", "NE", "born"]
    assert embedding_pieces("grace@webmail.io; Morris, Grace; 4219433987") == ["Morris", "Grace"]
    assert embedding_pieces("Иван Петров, Москва") == ["Иван Петров", "Москва"]
    assert embedding_pieces("John Smith 12 Main St") == ["John Smith Main St"]  # no separator: one piece
    assert embedding_pieces("12345") == ["12345"]  # nothing with a letter: the whole text, not nothing
    assert embedding_pieces("") == [] and embedding_pieces(None) == []


def test_embedded_words_leave_out_stand_alone_numbers_only():
    assert embedding_words("4146 oak street apartment 11") == "oak street apartment"
    assert embedding_words("G11C 16/04") == "G11C /"  # digits inside a code stay
    assert embedding_words("32643") is None and embedding_words("Иван 12") == "Иван"
    config = DedupeConfig(id_column="id", fields={"name": "name", "street": "street", "zip": "postcode"},
                          cache_dir=None)
    prepared = prepare_records(pd.DataFrame({"id": [1, 2], "name": ["Ann Lee", None], "street": ["12 Oak St", "7"],
                                             "zip": ["2000", "2000"]}), config)
    rows, values = embedded_values(prepared, config)
    assert rows.tolist() == [0, 0] and values == ["ann lee", "oak street"]  # zip is not an embed kind; "7" no word


def test_record_vectors_are_the_normalised_sum_of_their_distinct_values():
    values = ["Grace Morris", "Oak Street", "Springfield", "Grace Morris", "Springfield"]
    rows = np.array([0, 0, 0, 2, 2])
    out = embed_record_values(rows, values, 4)
    vectors = embed_texts(["Grace Morris", "Oak Street", "Springfield"])
    first = vectors.sum(axis=0)
    assert np.allclose(out[0], first / np.linalg.norm(first), atol=1e-6)
    third = vectors[0] + vectors[2]
    assert np.allclose(out[2], third / np.linalg.norm(third), atol=1e-6)
    assert not out[1].any() and not out[3].any()  # no value: the zero vector, never a neighbour
    # the structured path is the same function over the fields' present values
    columns = {"name": ["Grace Morris", None, "Grace Morris", ""], "city": ["Springfield", None, "Springfield", None]}
    both = embed_field_values(columns)
    pair = vectors[0] + vectors[2]
    assert np.allclose(both[0], pair / np.linalg.norm(pair), atol=1e-6) and np.allclose(both[0], both[2])
    assert not both[1].any() and not both[3].any()


def test_free_text_embedding_modes():
    records = pd.DataFrame({"id": ["a", "b", "c"],
                            "text": ["Grace Morris, Oak Street, Springfield, grace@x.io",
                                     "Morris, Grace; 4219433987; Oak St, Springfield", ""]})
    pieces = DedupeConfig(id_column="id", text_column="text", text_embedding="pieces", cache_dir=None)
    prepared = prepare_records(records, pieces)
    rows, values = embedded_values(prepared, pieces)
    assert rows.tolist() == [0, 0, 0, 1, 1, 1, 1] and "grace@x.io" not in " ".join(values)
    vectors = embed(prepared, pieces)
    assert vectors.shape == (3, 384) and not vectors[2].any()
    assert float(vectors[0] @ vectors[1]) > 0.8  # the same person's pieces, in another order and format
    whole = DedupeConfig(id_column="id", text_column="text", text_embedding="text", cache_dir=None)
    assert embedded_values(prepared, whole)[1] == prepared["__text"].tolist()
    with pytest.raises(AietlInputError, match="text_embedding"):
        DedupeConfig(id_column="id", text_column="text", text_embedding="words")


def test_normalize_values_once_per_distinct_value_matches_per_value():
    calls = []

    def upper(value):
        calls.append(value)
        return None if value is None else str(value).upper()

    series = pd.Series(["a", None, "b", "a", np.nan, "a"], dtype=object)
    assert normalize_values(series, upper) == ["A", None, "B", "A", None, "A"]
    assert sorted(map(str, calls)) == ["None", "a", "b"]  # each distinct value once, missing once
    mixed = pd.Series([1, 1.0, "1", None], dtype=object)  # not all strings: value by value (1 and 1.0 differ here)
    assert normalize_values(mixed, lambda v: None if v is None else repr(v)) == ["1", "1.0", "'1'", None]
