"""The rule agreement rates `prepare_with_rule_rates` counts from the codes of prepare's normalisation are the
rates counted from the prepared strings, on data of several shapes; they are kept only for the frame they were
counted on."""

import numpy as np
import pandas as pd
import pytest

from aietl_pipelines.datagen.customers import generate_customers
from aietl_pipelines.dedupe.config import DedupeConfig
from aietl_pipelines.dedupe.febrl import FEBRL_BLOCKING, FEBRL_FIELDS, load_febrl
from aietl_pipelines.dedupe.prepare import prepare_records, prepare_records_with_codes
from aietl_pipelines.dedupe.scoring import (
    RULE_RATES_ATTR,
    prepare_with_rule_rates,
    rule_agreement_rates,
)

CUSTOMER_FIELDS = {"first_name": "name", "last_name": "name", "street": "street", "city": "text",
                   "postcode": "postcode", "state": "state", "phone": "phone", "email": "email",
                   "date_of_birth": "date"}
CUSTOMER_BLOCKING = [["email"], ["phone"], ["date_of_birth", "last_name"], ["postcode", "last_name"],
                     ["first_name", "last_name"], ["street", "postcode"]]


def _awkward(n: int, seed: int = 0) -> pd.DataFrame:
    """Values that normalise to one form from several raw forms, to empty, or to missing; phones whose blocking
    key is shared by different numbers; numbers among the strings of one column."""
    rng = np.random.default_rng(seed)
    names = ["Anna", "anna ", "ANNA", "Bob", "", None, "  ", "Иван", "Ivan", "José", "jose", "O'Brien", "obrien"]
    phones = ["+44 20 7946 0958", "020 7946 0958", "(020) 7946-0958", "310/246-1501", "310-246-1501", "", None,
              "12738800436", "2738800436", "555"]
    mixed = [1, "1", 2.0, "2", None, "x", 3]
    pick = lambda values: [values[k] for k in rng.integers(0, len(values), n)]  # noqa: E731
    return pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "name": pick(names), "phone": pick(phones),
                         "number": pick(mixed), "city": pick(["Paris", "paris", None, "", "Köln", "Koln"])})


CASES = {
    "customers": (lambda: generate_customers(n_entities=1500, seed=3), "record_id", CUSTOMER_FIELDS,
                  CUSTOMER_BLOCKING),
    "febrl3": (lambda: load_febrl(3), "rec_id", FEBRL_FIELDS, FEBRL_BLOCKING),
    "awkward": (lambda: _awkward(3000), "record_id", {"name": "name", "phone": "phone", "number": "number",
                                                      "city": "text"}, [["name"], ["phone"], ["name", "city"]]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rates_from_codes_equal_rates_from_strings(case: str) -> None:
    load, id_column, fields, blocking = CASES[case]
    config = DedupeConfig(id_column=id_column, fields=fields, blocking=blocking)
    records = load()
    prepared, codes = prepare_records_with_codes(records, config)
    assert codes, "structured string columns give codes"
    for column, found in codes.items():  # equal codes exactly where the prepared values are equal
        values = prepared[column].to_numpy(dtype=object)
        missing = np.array([v is None or v == "" for v in values])
        assert ((found < 0) == missing).all(), column
        pairs = pd.DataFrame({"code": found[~missing], "value": values[~missing]}).drop_duplicates()
        assert pairs["code"].is_unique and pairs["value"].is_unique, column
    from_strings = rule_agreement_rates(prepare_records(records, config), config)
    kept = prepare_with_rule_rates(records, config)
    assert RULE_RATES_ATTR in kept.attrs
    assert rule_agreement_rates(kept, config) == from_strings  # bit-identical: integer counts either way
    assert rule_agreement_rates(prepared, config, codes) == from_strings


def test_kept_rates_only_for_the_frame_they_were_counted_on(tmp_path) -> None:
    load, id_column, fields, blocking = CASES["awkward"]
    config = DedupeConfig(id_column=id_column, fields=fields, blocking=blocking)
    kept = prepare_with_rule_rates(load(), config)
    kept.attrs[RULE_RATES_ATTR]["rates"] = [[["name"], -1.0]]  # a marker: returned only where the attrs are read
    assert rule_agreement_rates(kept, config) == {("name",): -1.0}
    assert rule_agreement_rates(kept.sample(frac=1.0, random_state=0), config) == {("name",): -1.0}  # order-free
    kept.to_parquet(tmp_path / "p.parquet")
    assert rule_agreement_rates(pd.read_parquet(tmp_path / "p.parquet"), config) == {("name",): -1.0}
    for changed in (kept.iloc[:-1], pd.concat([kept, kept.iloc[:5]], ignore_index=True), kept.drop(columns="city")):
        assert rule_agreement_rates(changed, config)[("name",)] >= 0  # counted again
    other = DedupeConfig(id_column=id_column, fields=fields, blocking=[["name", "phone"]])
    assert rule_agreement_rates(kept, other)[("name",)] >= 0
