"""The contract every backend shares, checked here once before any backend sees the input: vectors
(dimension, finite), limits (whole number >= 1), upserts (ids, vectors and payloads of one length, unique
non-empty ids, JSON-compatible metadata), filters (equality, any-of, numeric ranges; unknown operators and
unsupported values refused) and the filter semantics of the in-process backend (`matches`, as Qdrant's).
Every refusal is one AietlInputError line naming the input and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.errors import AietlInputError


def as_matrix(vectors: np.ndarray, dim: int, collection: str) -> np.ndarray:
    """float32 2-D array with the collection's dimension, else a clear error."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise AietlInputError(
            f"Vectors for collection '{collection}' must have dimension {dim}, got shape {array.shape}. "
            "Embed with the same model the collection was created for."
        )
    if not np.isfinite(array).all():
        raise AietlInputError(f"Vectors for collection '{collection}' contain NaN or infinite values.")
    return array


def unknown_collection(name: str, known: Sequence[str]) -> AietlInputError:
    return AietlInputError(f"Unknown collection '{name}'. Existing collections: {sorted(known)}. "
                           "Create it first with create_collection(name).")


RANGE_OPERATORS = ("gte", "gt", "lte", "lt")
#: Largest integer every backend stores exactly (Qdrant and Weaviate keep int64).
MAX_INT = 2**63 - 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def check_limit(limit: Any) -> int:
    """The number of hits to return: a whole number >= 1 (bools and floats are refused)."""
    if isinstance(limit, bool | np.bool_) or not isinstance(limit, int | np.integer) or limit < 1:
        raise AietlInputError(f"limit must be a whole number >= 1, got {limit!r}.")
    return int(limit)


def _fix_for(value: Any) -> str:
    if isinstance(value, set | frozenset):
        return "use a list"
    if isinstance(value, bytes | bytearray | memoryview):
        return "decode it to a str"
    if hasattr(value, "isoformat"):
        return "store it as an ISO 8601 string (value.isoformat())"
    return "use str, int, float, bool, None, or lists/dicts of those"


def clean_value(value: Any, where: str) -> Any:
    """A JSON-compatible payload value (numpy scalars become Python ones, tuples lists), else one clear
    AietlInputError naming ``where``. Every backend stores exactly these types."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        if abs(int(value)) > MAX_INT:
            raise AietlInputError(f"{where} = {value} does not fit in 64 bits: store it as a str.")
        return int(value)
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            raise AietlInputError(f"{where} is {value}: NaN and infinity cannot be stored; use None for a missing value.")
        return float(value)
    if isinstance(value, list | tuple):
        return [clean_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return clean_payload(value, where)
    raise AietlInputError(f"{where} is a {type(value).__name__} ({value!r:.60}), which vector stores cannot keep: "
                          f"{_fix_for(value)}.")


def clean_payload(payload: Any, where: str = "metadata") -> dict[str, Any]:
    """A payload (metadata) dict with str keys and JSON-compatible values (see `clean_value`)."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise AietlInputError(f"{where} must be a dict of field -> value, got {type(payload).__name__}.")
    out = {}
    for key, value in payload.items():
        if not isinstance(key, str) or not key:
            raise AietlInputError(f"{where} has the key {key!r}: field names must be non-empty strings.")
        out[key] = clean_value(value, f"{where}['{key}']")
    return out


def check_upsert(name: str, record_ids: Any, matrix: np.ndarray, payloads: Any) -> tuple[list[str], list[dict]]:
    """Ids (non-empty str/int, unique), vectors and payloads of the same length; returns ids as str and
    clean payloads, or one clear AietlInputError before anything is written."""
    if isinstance(record_ids, str | bytes | Mapping) or not hasattr(record_ids, "__len__"):
        raise AietlInputError(f"upsert into '{name}': record_ids must be a list of ids, got {type(record_ids).__name__}.")
    ids = list(record_ids)
    payloads = [None] * len(ids) if payloads is None else payloads
    if isinstance(payloads, str | bytes | Mapping) or not hasattr(payloads, "__len__"):
        raise AietlInputError(f"upsert into '{name}': payloads must be a list with one dict per id.")
    if not (len(ids) == len(matrix) == len(payloads)):
        raise AietlInputError(f"upsert into '{name}': {len(ids)} ids, {len(matrix)} vectors and {len(payloads)} "
                              "payloads; they must be the same length.")
    out_ids = []
    for i, rid in enumerate(ids):
        if isinstance(rid, bool | np.bool_) or not isinstance(rid, str | int | np.integer) or not str(rid).strip():
            raise AietlInputError(f"upsert into '{name}': record id #{i} is {rid!r}; ids are non-empty strings or integers.")
        out_ids.append(str(rid))
    if len(set(out_ids)) != len(out_ids):
        dupes = pd.Series(out_ids)[pd.Series(out_ids).duplicated()].unique().tolist()
        raise AietlInputError(f"upsert into '{name}': duplicate record ids {sorted(dupes)[:10]}; each id once per call.")
    return out_ids, [clean_payload(p, f"metadata of '{out_ids[i]}'") for i, p in enumerate(payloads)]


def check_filters(filters: Any) -> dict[str, Any]:
    """Validate a filter dict: {"field": value} (str, int or bool equality), {"field": [v1, v2]} (any of: all
    str or all int), {"field": {"gte": x, "lt": y}} (numeric range). One clear AietlInputError otherwise."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise AietlInputError(f"filters must be a dict of field -> condition, got {type(filters).__name__}.")
    out: dict[str, Any] = {}
    for key, cond in filters.items():
        if not isinstance(key, str) or not key:
            raise AietlInputError(f"filter field {key!r}: field names must be non-empty strings.")
        if isinstance(cond, Mapping):
            unknown = sorted(set(map(str, cond)) - set(RANGE_OPERATORS))
            if unknown or not cond:
                raise AietlInputError(f"Unknown range operator(s) {unknown} in filter on '{key}': use gte/gt/lte/lt.")
            for op, bound in cond.items():
                if not _is_number(bound) or not np.isfinite(bound):
                    raise AietlInputError(f"filter on '{key}': {op} needs a finite number, got {bound!r}.")
            out[key] = {op: float(bound) for op, bound in cond.items()}
        elif isinstance(cond, list | tuple | set | frozenset):
            values = list(cond)
            if not values:
                raise AietlInputError(f"filter on '{key}': the list of allowed values is empty.")
            if not (all(isinstance(v, str) for v in values)
                    or all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in values)):
                raise AietlInputError(f"filter on '{key}': any-of values must be all strings or all integers, got {values!r:.80}.")
            out[key] = [v if isinstance(v, str) else int(v) for v in values]
        elif isinstance(cond, bool | np.bool_):
            out[key] = bool(cond)
        elif isinstance(cond, str) or (isinstance(cond, int | np.integer)):
            out[key] = cond if isinstance(cond, str) else int(cond)
        elif _is_number(cond):
            raise AietlInputError(f"filter on '{key}': equality on a float ({cond!r}) is not supported by every backend; "
                                  f"use a range, e.g. {{'{key}': {{'gte': {cond!r}, 'lte': {cond!r}}}}}.")
        else:
            raise AietlInputError(f"filter on '{key}': {cond!r:.60} is not a condition; use a str/int/bool value, a "
                                  "list of values, or a range dict with gte/gt/lte/lt.")
    return out


def _same(value: Any, cond: Any) -> bool:
    if isinstance(cond, bool):
        return isinstance(value, bool) and value == cond
    if isinstance(cond, int):
        return isinstance(value, int) and not isinstance(value, bool) and value == cond
    return isinstance(value, str) and value == cond


def matches(payload: Mapping[str, Any], filters: Mapping[str, Any] | None) -> bool:
    """Filter semantics of every backend (as Qdrant's): equality, any-of and numeric ranges; a payload list
    matches when one of its elements does. ``filters`` must have passed `check_filters`."""
    for key, cond in (filters or {}).items():
        value = payload.get(key)
        values = value if isinstance(value, list) else [value]
        if isinstance(cond, Mapping):
            numbers = [v for v in values if _is_number(v)]
            checks = {"gte": lambda v, b: v >= b, "gt": lambda v, b: v > b,
                      "lte": lambda v, b: v <= b, "lt": lambda v, b: v < b}
            if not any(all(checks[op](v, b) for op, b in cond.items()) for v in numbers):
                return False
        elif isinstance(cond, list):
            if not any(_same(v, c) for v in values for c in cond):
                return False
        elif not any(_same(v, cond) for v in values):
            return False
    return True


def translate_filters(filters: Mapping[str, Any] | None, *, field_condition: Any, match_value: Any, match_any: Any,
                      range_: Any, filter_: Any) -> Any:
    """Our filter dict → a Qdrant filter, built from the given classes (qdrant-client's `models` and qdrant_edge
    have the same shapes): equality, any-of and ranges, combined with AND."""
    filters = check_filters(filters)
    if not filters:
        return None
    must = []
    for key, cond in filters.items():
        if isinstance(cond, Mapping):
            must.append(field_condition(key=key, range=range_(**cond)))
        elif isinstance(cond, list):
            must.append(field_condition(key=key, match=match_any(any=cond)))
        else:
            must.append(field_condition(key=key, match=match_value(value=cond)))
    return filter_(must=must)
