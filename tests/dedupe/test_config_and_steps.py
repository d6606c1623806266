"""One source of defaults for every dedupe entry point, config parsed once, steps chosen by engine name."""

import dataclasses

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe import engine, steps
from aietl_pipelines.dedupe.config import DATA_KEYS, DedupeConfig, project_root
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.pipelines.dedupe import create_pipeline
from aietl_pipelines.services import deduplicate_customers

BASE = yaml.safe_load((project_root() / "conf/base/parameters_dedupe.yml").read_text())["dedupe"]


def test_every_model_default_comes_from_the_parameters_file():
    config = DedupeConfig(fields={"name": "name"})
    for f in dataclasses.fields(DedupeConfig):
        if f.name in DATA_KEYS:
            continue
        assert f.name in BASE, f"dedupe.{f.name} is missing from conf/base/parameters_dedupe.yml"
        expected = BASE[f.name]
        if f.name == "cache_dir":
            expected = str(project_root() / expected)
        assert getattr(config, f.name) == expected, f.name


def test_service_and_pipeline_give_the_same_clusters(tmp_path):
    records = generate_customers(n_entities=60, seed=5)
    fields = {"first_name": "name", "last_name": "name", "street": "street", "phone": "phone"}
    blocking = [["phone"], ["first_name", "last_name"]]
    golden = deduplicate_customers(records, id_column="record_id", fields=fields, blocking=blocking,
                                   use_embeddings=False)
    params = {**BASE, "fields": fields, "blocking": blocking, "use_embeddings": False, "cache_dir": str(tmp_path)}
    catalog = DataCatalog({"customers_raw": MemoryDataset(records), "params:dedupe": MemoryDataset(params)})
    result = SequentialRunner().run(create_pipeline(), catalog)
    piped = result["golden_records"].load()

    def groups(frame: pd.DataFrame) -> set[frozenset]:
        return {frozenset(ids) for ids in frame["member_ids"]}

    assert groups(golden) == groups(piped)
    assert len(groups(golden)) < len(records)  # some duplicates were merged: the comparison is not vacuous


def test_pipeline_parses_the_parameters_once():
    pipeline = create_pipeline()
    readers = [n.name for n in pipeline.nodes if "params:dedupe" in n.inputs]
    assert readers == ["parse_dedupe_config"]
    assert all("dedupe_config" in n.inputs for n in pipeline.nodes if n.name != "parse_dedupe_config")


def test_engine_is_chosen_by_configuration():
    records = pd.DataFrame({"id": ["1", "2", "3"], "name": ["Ann Lee", "Ann Lee", "Bob Stone"]})
    calls = []

    def counting_candidates(prepared, vectors, config):
        calls.append(len(prepared))
        return steps.PANDAS.candidates(prepared, vectors, config)

    steps.register_engine("counting", lambda: dataclasses.replace(steps.PANDAS, candidates=counting_candidates))
    try:
        config = DedupeConfig(id_column="id", fields={"name": "name"}, use_embeddings=False, engine="counting")
        result = engine.run(records, config)
    finally:  # the registry (engine_registry.py) has no unregister: take the test engine out by hand
        steps._ENGINES._engines.pop("counting", None)
        steps._ENGINES._built.pop("counting", None)
    assert calls == [3]
    assert sorted(result.clusters["record_id"]) == ["1", "2", "3"]
    with pytest.raises(AietlInputError, match="Unknown dedupe engine 'nope'"):
        engine.run(records, DedupeConfig(id_column="id", fields={"name": "name"}, engine="nope"))


def test_service_rejects_unknown_options():
    with pytest.raises(TypeError, match="unknown option"):
        deduplicate_customers([{"id": 1, "text": "a"}], match_treshold=0.5)
