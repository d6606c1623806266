"""Input checks shared by the hooks, the nodes and the services.

Catalog entries declare what they expect under ``metadata.aietl``::

    customers_raw:
      type: pandas.ParquetDataset
      filepath: data/01_raw/customers.parquet
      metadata:
        aietl:
          required_columns: [record_id, first_name]
          allow_empty: false
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from aietl_pipelines.errors import AietlInputError


def check_frame(
    df: object,
    name: str,
    required_columns: Iterable[str] = (),
    allow_empty: bool = False,
    where: str = "",
) -> pd.DataFrame:
    """Raise a clear `AietlInputError` unless ``df`` is a DataFrame with the required columns.

    Args:
        df: The loaded object.
        name: Dataset or argument name used in the message.
        required_columns: Columns that must be present.
        allow_empty: Whether a frame with no rows is acceptable.
        where: Where the data came from (file path), for the message.

    Returns:
        The frame, unchanged.
    """
    origin = f" ({where})" if where else ""
    if not isinstance(df, pd.DataFrame):
        raise AietlInputError(
            f"'{name}'{origin} should be a table (pandas DataFrame), got {type(df).__name__}."
        )
    required = list(required_columns)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AietlInputError(
            f"'{name}'{origin} is missing column(s) {missing}. Expected at least {required}; "
            f"found {list(df.columns)}. Rename the columns or change the column names in the "
            "parameters / catalog metadata."
        )
    if not allow_empty and df.empty:
        raise AietlInputError(
            f"'{name}'{origin} has no rows. Expected a non-empty table with columns {required or list(df.columns)}."
        )
    return df
