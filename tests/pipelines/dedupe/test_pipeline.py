import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.notebook_utils import PROJECT_ROOT
from aietl_pipelines.pipelines.dedupe import create_pipeline


def test_dedupe_pipeline_on_sample_customers(tmp_path):
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_dedupe.yml").read_text())["dedupe"]
    params.update(use_embeddings=False)
    records = generate_customers(n_entities=200, seed=3)
    catalog = DataCatalog({"customers_raw": MemoryDataset(records), "params:dedupe": MemoryDataset(params)})
    result = SequentialRunner().run(create_pipeline(), catalog)
    metrics = result["dedupe_metrics"].load()
    golden = result["golden_records"].load()
    assert metrics["n_records"] == len(records)
    assert metrics["f1"] >= 0.95 and metrics["bcubed_f1"] >= 0.95
    members = [m for ids in golden["member_ids"] for m in ids]
    assert sorted(members) == sorted(records["record_id"])  # every input id accounted for exactly once
