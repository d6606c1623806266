"""One lookup for every engine-dependent step set (drift, features, retraining, dedupe).

Each area keeps an `EngineRegistry` of its implementations (pandas in process, spark with `kedro run --env spark`),
registered as the object itself or as a function that builds it on first use (so that pyspark is imported only
when the Spark engine is asked for). Nodes and services ask `registry.get(name)` and never branch on the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from aietl_pipelines.errors import AietlInputError

T = TypeVar("T")


class EngineRegistry(Generic[T]):
    """Implementations of one area's steps by engine name, built lazily, with one clear error for a bad name."""

    def __init__(self, area: str, parameter: str, engines: dict[str, T | Callable[[], T]], kind: type | None = None):
        self.area, self.parameter, self.kind = area, parameter, kind
        self._engines: dict[str, T | Callable[[], T]] = dict(engines)
        self._built: dict[str, T] = {}

    def register(self, name: str, steps: T | Callable[[], T]) -> None:
        """Make `<parameter>: <name>` available (the steps, or a function building them on first use)."""
        self._engines[name] = steps
        self._built.pop(name, None)

    def names(self) -> list[str]:
        """The engine names that can be chosen."""
        return sorted(self._engines)

    def get(self, name: str | None = "pandas") -> T:
        """The steps of engine `name` (None means pandas)."""
        name = name or "pandas"
        if name not in self._engines:
            raise AietlInputError(
                f"Unknown {self.area} engine {name!r} in `{self.parameter}`: use one of {self.names()}."
            )
        if name not in self._built:
            found = self._engines[name]
            is_built = isinstance(found, self.kind) if self.kind is not None else not callable(found)
            self._built[name] = found if is_built else found()  # type: ignore[operator]
        return self._built[name]
