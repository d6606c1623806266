"""Decorators that services put on their methods to emit the guide's metrics (one line per method).

    @vector_search_operation("search")          # vector_search_total{collection,operation} + errors + latency
    @drift_detection("service")                  # drift_detection_duration_seconds + drift share gauges

A decorated method behaves exactly as before (same result, same exception); the metric is recorded on the
way out, and a failure to record it is logged, never raised.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.monitoring import metrics

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _safely(record: Callable[[], None]) -> None:
    try:
        record()
    except Exception as exc:  # noqa: BLE001 - metrics never change what the caller gets
        logger.warning("Metric not recorded: %s", exc)


def vector_search_operation(operation: str) -> Callable[[F], F]:
    """Count calls of a ``(self, collection_name, ...)`` method; errors by kind (bad_input or failure)."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            collection = args[0] if args else kwargs.get("collection_name", kwargs.get("name"))
            start = time.perf_counter()
            error: str | None = None
            try:
                return method(self, *args, **kwargs)
            except AietlInputError:
                error = "bad_input"
                raise
            except Exception:
                error = "failure"
                raise
            finally:
                seconds = time.perf_counter() - start
                _safely(lambda: metrics.observe_vector_search(collection, operation, seconds, error))

        return wrapper  # type: ignore[return-value]

    return decorate


def drift_detection(dataset: str) -> Callable[[F], F]:
    """Time a method returning a drift summary dict and record its share, drifted columns and alert."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            report = method(*args, **kwargs)
            seconds = time.perf_counter() - start
            _safely(lambda: metrics.observe_drift_duration(dataset, seconds))
            if isinstance(report, Mapping):
                _safely(lambda: metrics.record_drift(dataset, report))
            return report

        return wrapper  # type: ignore[return-value]

    return decorate
