"""Checks shared by the backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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


def matches(payload: Mapping[str, Any], filters: Mapping[str, Any] | None) -> bool:
    """Filter semantics of every backend: equality, any-of (list) and ranges ({gte, gt, lte, lt})."""
    for key, cond in (filters or {}).items():
        value = payload.get(key)
        if isinstance(cond, Mapping):
            if value is None:
                return False
            for op, bound in cond.items():
                ok = {"gte": value >= bound, "gt": value > bound, "lte": value <= bound, "lt": value < bound}.get(op)
                if ok is None:
                    raise AietlInputError(f"Unknown range operator '{op}' in filter on '{key}': use gte/gt/lte/lt.")
                if not ok:
                    return False
        elif isinstance(cond, list | tuple | set):
            if value not in cond:
                return False
        elif value != cond:
            return False
    return True


RANGE_OPERATORS = ("gte", "gt", "lte", "lt")


def translate_filters(filters: Mapping[str, Any] | None, *, field_condition: Any, match_value: Any, match_any: Any,
                      range_: Any, filter_: Any) -> Any:
    """Our filter dict → a Qdrant filter, built from the given classes (qdrant-client's `models` and qdrant_edge
    have the same shapes): equality, any-of and ranges, combined with AND."""
    if not filters:
        return None
    must = []
    for key, cond in filters.items():
        if isinstance(cond, Mapping):
            unknown = set(cond) - set(RANGE_OPERATORS)
            if unknown:
                raise AietlInputError(f"Unknown range operator(s) {sorted(unknown)} in filter on '{key}': use gte/gt/lte/lt.")
            must.append(field_condition(key=key, range=range_(**{k: float(v) for k, v in cond.items()})))
        elif isinstance(cond, list | tuple | set):
            must.append(field_condition(key=key, match=match_any(any=list(cond))))
        else:
            must.append(field_condition(key=key, match=match_value(value=cond)))
    return filter_(must=must)
