"""One contract on every backend: the same bad input gets the same one-line AietlInputError, and the same
filters select the same points (numpy, Qdrant Edge, qdrant-client local; Weaviate's filter translation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.vectorstores import get_vector_store
from aietl_pipelines.vectorstores.weaviate import build_filter as weaviate_filter

BACKENDS = ["numpy", "qdrant_edge", "qdrant_local"]
DIM = 4


@pytest.fixture(scope="module")
def stores():
    out = {}
    for backend in BACKENDS:
        store = get_vector_store(backend)
        store.create_collection("c", DIM, recreate=True)
        store.upsert("c", ["a", "b"], np.eye(DIM)[:2], [{"n": 1}, {"n": 2}])
        out[backend] = store
    return out


BAD_UPSERTS = [
    ("set", dict(payloads=[{"tags": {"x", "y"}}]), r"metadata of 'x'\['tags'\] is a set .* use a list"),
    ("timestamp", dict(payloads=[{"at": pd.Timestamp("2026-01-01", tz="UTC")}]), r"is a Timestamp .* ISO 8601"),
    ("bytes", dict(payloads=[{"text": b"raw"}]), r"is a bytes .* decode it to a str"),
    ("nan", dict(payloads=[{"score": float("nan")}]), r"NaN and infinity cannot be stored"),
    ("lengths", dict(ids=["x", "y"], payloads=[{}]), r"2 ids, 1 vectors and 1 payloads; they must be the same length"),
    ("none id", dict(ids=[None]), r"record id #0 is None"),
    ("duplicate ids", dict(ids=["x", "x"], vectors=np.ones((2, DIM))), r"duplicate record ids \['x'\]"),
    ("key", dict(payloads=[{1: "a"}]), r"field names must be non-empty strings"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "args", "message"), BAD_UPSERTS, ids=[c[0] for c in BAD_UPSERTS])
def test_bad_upserts_are_refused_alike_and_nothing_is_written(stores, backend, case, args, message):
    store = stores[backend]
    ids = args.get("ids", ["x"])
    vectors = args.get("vectors", np.ones((1, DIM)))
    with pytest.raises(AietlInputError, match=message) as info:
        store.upsert("c", ids, vectors, args.get("payloads"))
    assert "\n" not in str(info.value)
    assert store.count("c") == 2


BAD_QUERIES = [
    ("limit -1", dict(limit=-1), r"limit must be a whole number >= 1, got -1"),
    ("limit 0", dict(limit=0), r"limit must be a whole number >= 1, got 0"),
    ("limit float", dict(limit=2.5), r"limit must be a whole number >= 1, got 2.5"),
    ("limit bool", dict(limit=True), r"limit must be a whole number >= 1, got True"),
    ("unknown operator", dict(filters={"n": {"between": 1}}), r"Unknown range operator\(s\) \['between'\] in filter on 'n'"),
    ("string bound", dict(filters={"n": {"gte": "1"}}), r"gte needs a finite number, got '1'"),
    ("float equality", dict(filters={"n": 1.5}), r"equality on a float"),
    ("empty any-of", dict(filters={"n": []}), r"the list of allowed values is empty"),
    ("mixed any-of", dict(filters={"n": [1, "a"]}), r"all strings or all integers"),
    ("none value", dict(filters={"n": None}), r"is not a condition"),
    ("not a dict", dict(filters=["n"]), r"filters must be a dict"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "args", "message"), BAD_QUERIES, ids=[c[0] for c in BAD_QUERIES])
def test_bad_queries_are_refused_alike(stores, backend, case, args, message):
    store = stores[backend]
    for call in (lambda: store.query("c", np.ones(DIM), **args),
                 lambda: store.query_batch("c", np.ones((2, DIM)), **args)):
        with pytest.raises(AietlInputError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    if "filters" in args:  # Weaviate's translation applies the same checks
        with pytest.raises(AietlInputError, match=message):
            weaviate_filter(args["filters"])


def test_numpy_scalars_and_tuples_are_stored_as_plain_values(stores):
    for store in stores.values():
        store.upsert("c", ["np"], np.ones((1, DIM)), [{"i": np.int64(3), "f": np.float32(0.5), "t": (1, 2)}])
        hit = store.query("c", np.ones(DIM), limit=1, filters={"i": 3})[0]
        assert hit.record_id == "np" and hit.payload["t"] == [1, 2] and hit.payload["f"] == 0.5
        assert store.count("c") == 3


# the same filters select the same points on every backend ----------------------------------------------
_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False),
                    st.sampled_from(["a", "b", "c"]), st.lists(st.sampled_from(["a", "b"]), max_size=2),
                    st.lists(st.integers(-2, 2), max_size=2))
_payloads = st.lists(st.fixed_dictionaries({}, optional={"k": _values, "m": _values}), min_size=1, max_size=12)
# Boolean match values are left out: Qdrant's engine (qdrant-edge, as a server) lets `False` match an integer 0
# inside a list payload while qdrant-client's local mode and the numpy backend do not (hypothesis found
# payload {"k": [0]} with filter {"k": False}); a known cross-backend difference, listed in docs/vector_search.md.
_conditions = st.one_of(
    st.integers(-3, 3), st.sampled_from(["a", "b", "c"]),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
    st.lists(st.integers(-3, 3), min_size=1, max_size=3),
    st.dictionaries(st.sampled_from(["gte", "gt", "lte", "lt"]), st.floats(-3, 3, allow_nan=False), min_size=1),
)
_filters = st.dictionaries(st.sampled_from(["k", "m"]), _conditions, max_size=2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=_payloads, filters=_filters)
def test_filters_select_the_same_points_on_every_backend(payloads, filters):
    vectors = np.random.default_rng(len(payloads)).normal(size=(len(payloads), DIM))
    ids = [f"p{i}" for i in range(len(payloads))]
    selected = {}
    for backend in BACKENDS:
        store = get_vector_store(backend)
        store.create_collection("f", DIM, recreate=True)
        store.upsert("f", ids, vectors, payloads)
        hits = store.query("f", vectors[0], limit=len(ids), filters=filters)
        selected[backend] = sorted(h.record_id for h in hits)
        if backend == "qdrant_edge":
            store.close()
    assert selected["numpy"] == selected["qdrant_edge"] == selected["qdrant_local"], (payloads, filters, selected)
