"""Our drift statistics against Evidently 0.7.23 itself: same test, same score (1e-9 relative), same verdict."""

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

from aietl_pipelines.drift.statistics import (
    column_drift,
    compute_drift,
    infer_column_type,
    psi_band,
)
from aietl_pipelines.errors import AietlInputError


def _evidently(reference: pd.Series, current: pd.Series, column_type: str):
    kind = ColumnType.Numerical if column_type == "num" else ColumnType.Categorical
    ref = reference.replace([np.inf, -np.inf], np.nan).dropna()
    cur = current.replace([np.inf, -np.inf], np.nan).dropna()
    test = get_stattest(ref, cur, kind, None)
    result = test(ref, cur, kind, None)
    return test.name, result.drift_score, result.drifted


def _cases(n: int, rng: np.random.Generator) -> dict[str, tuple[pd.Series, pd.Series]]:
    return {
        "normal_small_shift": (pd.Series(rng.normal(0, 1, n)), pd.Series(rng.normal(0.1, 1, n))),
        "normal_big_shift": (pd.Series(rng.normal(0, 1, n)), pd.Series(rng.normal(0.5, 1, n))),
        "nan_and_inf": (
            pd.Series(np.r_[rng.normal(0, 1, n - 3), np.nan, np.inf, -np.inf]),
            pd.Series(np.r_[rng.normal(0.2, 1, n - 2), np.nan, np.inf]),
        ),
        "constant": (pd.Series(np.ones(n)), pd.Series(np.ones(n))),
        "int_le5": (pd.Series(rng.integers(0, 4, n)), pd.Series(rng.integers(0, 5, n))),
        "int_many": (pd.Series(rng.integers(0, 60, n)), pd.Series(rng.integers(5, 60, n))),
        "bool": (pd.Series(rng.random(n) < 0.3), pd.Series(rng.random(n) < 0.36)),
        "unseen_category": (
            pd.Series(rng.choice(list("abc"), n)).astype("category"),
            pd.Series(rng.choice(list("abcd"), n)).astype("category"),
        ),
        "strings": (pd.Series(rng.choice(["x", "y"], n)), pd.Series(rng.choice(["x", "y", "z"], n))),
    }


@pytest.mark.parametrize("n", [999, 1000, 1001, 3000])
def test_same_test_score_and_verdict_as_evidently(n):
    rng = np.random.default_rng(n)
    for name, (reference, current) in _cases(n, rng).items():
        column_type = infer_column_type(reference)
        ours = column_drift(name, reference, current, column_type)
        test, score, drifted = _evidently(reference, current, column_type)
        assert ours.test == test, name
        assert ours.score == pytest.approx(score, rel=1e-9, abs=0), name
        assert ours.drifted == drifted, name


def test_column_types_follow_evidently_inference():
    assert infer_column_type(pd.Series([1.0, 2.0])) == "num"
    assert infer_column_type(pd.Series(range(5))) == "cat"
    assert infer_column_type(pd.Series(range(11))) == "num"
    assert infer_column_type(pd.Series([True, False])) == "cat"
    assert infer_column_type(pd.Series(["a", "b", "a", "a"])) == "cat"
    assert infer_column_type(pd.Series(pd.to_datetime(["2026-01-01"]))) == "datetime"


def test_other_tests_psi_bands_and_bh_correction():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 5000), "b": rng.normal(0, 1, 5000)})
    cur = pd.DataFrame({"a": rng.normal(1, 1, 5000), "b": rng.normal(0, 1, 5000)})
    table, _ = compute_drift(ref, cur, tests={"num": "psi"})
    assert table["test"].tolist() == ["psi", "psi"]
    assert table.set_index("column").loc["a", "drifted"] and not table.set_index("column").loc["b", "drifted"]
    quantile = column_drift("a", ref["a"], cur["a"], test="psi_quantile")
    assert quantile.score > 0.25 and psi_band(quantile.score) == "significant"
    table_ks, _ = compute_drift(ref.iloc[:500], cur.iloc[:500], correction="bh")
    assert (table_ks["test"] == "ks").all() and table_ks.set_index("column").loc["a", "drifted"]


def test_bad_input_is_named():
    ref = pd.DataFrame({"a": [1.0, 2.0], "when": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    with pytest.raises(AietlInputError, match="current data has no rows"):
        compute_drift(ref, ref.iloc[:0])
    with pytest.raises(AietlInputError, match=r"current lacks \['a'\]"):
        compute_drift(ref, ref[["when"]])
    with pytest.raises(AietlInputError, match="Column 'a' is float64 in the reference but object"):
        compute_drift(ref, ref.assign(a=["x", "y"]))
    table, skipped = compute_drift(ref.assign(n=[np.nan, np.nan]), ref.assign(n=[1.0, 2.0]))
    assert table["column"].tolist() == ["a"]
    assert "datetime" in skipped["when"] and "null" in skipped["n"]
    with pytest.raises(AietlInputError, match="Unknown drift test 'foo'"):
        compute_drift(ref[["a"]], ref[["a"]], tests={"a": "foo"})


@pytest.mark.slow
def test_embedding_drift_of_text_columns(tmp_path):
    rng = np.random.default_rng(0)
    topics_a = ["invoice overdue payment", "password reset request", "shipping delayed parcel"]
    topics_b = ["kubernetes pod crash loop", "database connection timeout", "disk full on node"]
    ref = pd.DataFrame({"note": [f"{rng.choice(topics_a)} #{i}" for i in range(150)], "x": rng.normal(0, 1, 150)})
    same = pd.DataFrame({"note": [f"{rng.choice(topics_a)} #{i}" for i in range(150)], "x": rng.normal(0, 1, 150)})
    moved = pd.DataFrame({"note": [f"{rng.choice(topics_b)} #{i}" for i in range(150)], "x": rng.normal(0, 1, 150)})
    table, skipped = compute_drift(ref, moved, text_columns=["note"])
    row = table.set_index("column").loc["note"]
    assert row["test"] == "embedding_mmd" and row["drifted"] and "note" not in skipped
    table, _ = compute_drift(ref, same, text_columns=["note"])
    assert not table.set_index("column").loc["note", "drifted"]
