"""Property tests of the public services: random frames and values in, and the only acceptable outcomes are
a result or the project's own error (AietlInputError, one line). Any other exception is a bug."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aietl_pipelines.errors import AietlInputError

#: PROPERTY_EXAMPLES=300 PROPERTY_RANDOM=1 searches harder (the suite runs a fixed 30 per test).
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "30"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("PROPERTY_RANDOM"),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def result_or_project_error(call):
    """Run `call`; return its result, or None when it raised AietlInputError with a one-line message."""
    try:
        return call()
    except AietlInputError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), repr(str(exc))
        return None


# random values and frames ----------------------------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.binary(max_size=6), st.just(pd.NaT),
    st.datetimes().map(pd.Timestamp), st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+02:00", "2026-01-01", "high", "0.7", ""]),
    st.frozensets(st.integers(0, 3), max_size=2), st.lists(st.integers(0, 3), max_size=2),
)


@st.composite
def frames(draw, columns: list[str], max_rows: int = 6) -> pd.DataFrame:
    """A frame over a random subset (or superset) of `columns`, each column of one random kind of values."""
    names = draw(st.lists(st.sampled_from([*columns, "extra"]), unique=True, max_size=len(columns) + 1))
    n = draw(st.integers(0, max_rows))
    data = {}
    for name in names:
        kind = draw(st.sampled_from(["float", "int", "str", "mixed", "time", "bool"]))
        if kind == "float":
            data[name] = draw(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(math.nan)), min_size=n, max_size=n))
        elif kind == "int":
            data[name] = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
        elif kind == "str":
            data[name] = draw(st.lists(st.sampled_from(["a", "b", "pipeline_001", ""]), min_size=n, max_size=n))
        elif kind == "bool":
            data[name] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        elif kind == "time":
            data[name] = pd.Timestamp.now(tz="UTC") - pd.to_timedelta(
                draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n)), unit="s")
        else:
            data[name] = pd.Series(draw(st.lists(scalars, min_size=n, max_size=n)), dtype=object)
    return pd.DataFrame(data, index=range(n)) if data else pd.DataFrame(index=range(n))


# feature store ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def feature_store(tmp_path_factory):
    from aietl_pipelines.datagen.telemetry import generate_etl_runs
    from aietl_pipelines.features.compute import compute_pipeline_features
    from aietl_pipelines.features.store import FeatureStoreService

    service = FeatureStoreService(repo_path=tmp_path_factory.mktemp("feast"))
    service.write_offline_source(compute_pipeline_features(generate_etl_runs(n_pipelines=2, days=2, runs_per_day=4)))
    service.apply()
    return service


PUSH_COLUMNS = ["pipeline_id", "event_timestamp", "current_cpu_usage", "current_memory_usage", "anomaly_detected"]


@SETTINGS
@given(frame=frames(PUSH_COLUMNS), to=st.sampled_from(["online", "offline", "online_and_offline", "nowhere"]))
def test_feature_push_gives_a_count_or_the_project_error(feature_store, frame, to):
    before = len(pd.read_parquet(feature_store.realtime_path))
    written = result_or_project_error(lambda: feature_store.push_features("pipeline_realtime_push_source", frame, to))
    after = len(pd.read_parquet(feature_store.realtime_path))
    assert after == before + (written if written and to != "online" else 0)  # nothing half-written


@SETTINGS
@given(frame=frames(["pipeline_id", "event_timestamp", "label"]),
       features=st.sampled_from([None, ["avg_execution_time"], ["nope"], [], ["pipeline_realtime_features:anomaly_detected"]]))
def test_historical_features_give_every_row_or_the_project_error(feature_store, frame, features):
    result = result_or_project_error(lambda: feature_store.get_historical_features(frame, features))
    if result is not None:
        assert len(result) == len(frame)


@SETTINGS
@given(ids=st.one_of(st.lists(scalars, max_size=4), scalars),
       features=st.sampled_from([None, ["avg_execution_time"], ["x:y"], ["pipeline_realtime_features:current_cpu_usage"]]))
def test_online_features_give_one_row_per_id_or_the_project_error(feature_store, ids, features):
    result = result_or_project_error(lambda: feature_store.get_pipeline_features(ids, features))
    if result is not None:
        assert len(result) == (1 if isinstance(ids, str) else len(ids))


# drift monitoring ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def drift_service(tmp_path_factory):
    from aietl_pipelines.services import get_drift_monitoring_service

    folder = tmp_path_factory.mktemp("drift")
    return get_drift_monitoring_service(report_dir=folder / "reports", history_path=folder / "history.jsonl")


DRIFT_COLUMNS = ["x", "y", "label", "when"]


@SETTINGS
@given(reference=frames(DRIFT_COLUMNS, max_rows=30), current=frames(DRIFT_COLUMNS, max_rows=30),
       target=st.sampled_from([None, "label", "nope"]))
def test_drift_detection_gives_a_report_or_the_project_error(drift_service, reference, current, target):
    report = result_or_project_error(
        lambda: drift_service.detect_data_drift_sync(reference, current, target_column=target, save_report=False))
    if report is not None:
        assert 0.0 <= report["drift_share"] <= 1.0 and isinstance(report["alert_triggered"], bool)


@SETTINGS
@given(report=st.dictionaries(st.sampled_from(["drift_share", "alert_triggered", "drifted_columns", "generated_at",
                                               "target_drifted", "n_columns"]), scalars, max_size=6))
def test_retraining_advice_gives_a_decision_or_the_project_error(drift_service, report):
    decision = result_or_project_error(lambda: drift_service.should_trigger_retraining_sync(report))
    if decision is not None:
        retrain, reason = decision
        assert isinstance(retrain, bool) and isinstance(reason, str)


# vector search ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vector_service():
    from aietl_pipelines.services.vector_search import VectorSearchService

    service = VectorSearchService(provider="numpy")
    service.create_collection_sync("people")
    service.batch_index_sync("people", [{"id": "1", "text": "John Doe, 123 Main St", "city": "Springfield"},
                                        {"id": "2", "text": "Jane Roe, 9 Elm Road", "city": "Shelbyville"}])
    return service


filters = st.one_of(st.none(), st.dictionaries(st.sampled_from(["city", "n"]), st.one_of(
    scalars, st.dictionaries(st.sampled_from(["gte", "lt", "between"]), scalars, max_size=2)), max_size=2))


@SETTINGS
@given(text=scalars, metadata=st.one_of(st.none(), st.dictionaries(st.sampled_from(["city", "n", "tags"]), scalars,
                                                                   max_size=3)),
       limit=st.one_of(st.integers(-2, 5), scalars), query_filters=filters)
def test_vector_search_gives_hits_or_the_project_error(vector_service, text, metadata, limit, query_filters):
    result_or_project_error(lambda: vector_service.index_record_sync("people", "3", text, metadata))
    hits = result_or_project_error(lambda: vector_service.search_sync("people", text, query_filters, limit))
    if hits is not None:
        assert len(hits) <= limit
    dupes = result_or_project_error(lambda: vector_service.find_duplicates_sync("people", text, limit=limit))
    if dupes is not None:
        assert all(0.0 <= d["similarity_score"] <= 1.0 for d in dupes)


@SETTINGS
@given(records=frames(["id", "text", "city"], max_rows=5))
def test_vector_batch_index_gives_a_count_or_the_project_error(vector_service, records):
    done = result_or_project_error(lambda: vector_service.batch_index_sync("batch", records))
    assert done is None  # the collection 'batch' was never created
    vector_service.create_collection_sync("batch2", recreate=True)
    done = result_or_project_error(lambda: vector_service.batch_index_sync("batch2", records))
    if done is not None:
        assert done["indexed"] == len(records) == vector_service.store.count("batch2")


# deduplication ---------------------------------------------------------------------------------------
@settings(max_examples=max(EXAMPLES // 3, 5), deadline=None, derandomize=not os.environ.get("PROPERTY_RANDOM"), suppress_health_check=[HealthCheck.too_slow])
@given(records=frames(["id", "text"], max_rows=5))
def test_deduplicate_customers_gives_golden_records_or_the_project_error(records):
    from aietl_pipelines.services import deduplicate_customers

    with tempfile.TemporaryDirectory() as cache:
        golden = result_or_project_error(lambda: deduplicate_customers(records, text_column="text",
                                                                       cache_dir=str(Path(cache))))
    if golden is not None:
        assert int(golden["cluster_size"].sum()) == len(records)
        assert not math.isnan(float(len(golden)))
        assert np.all(golden["cluster_size"] >= 1)
