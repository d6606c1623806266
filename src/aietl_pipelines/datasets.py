"""Small custom Kedro datasets the project needs."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractDataset
from kedro.io.core import get_filepath_str, get_protocol_and_path


class JSONLinesDataset(AbstractDataset[list[dict[str, Any]], list[dict[str, Any]]]):
    """An append-only log of JSON records, one per line.

    `load()` returns every record (an empty list when the file does not exist yet); `save(records)` appends
    (mode ``append``, the default) or rewrites the file (mode ``overwrite``). Used for histories such as the
    drift summaries, so that "last N days" queries read one file.
    """

    def __init__(self, filepath: str, mode: str = "append", metadata: dict[str, Any] | None = None) -> None:
        if mode not in ("append", "overwrite"):
            raise ValueError("mode must be 'append' or 'overwrite'")
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol)
        self._mode = mode
        self.metadata = metadata

    def _load(self) -> list[dict[str, Any]]:
        path = get_filepath_str(self._filepath, self._protocol)
        if not self._fs.exists(path):
            return []
        with self._fs.open(path, "r", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def _save(self, data: list[dict[str, Any]] | dict[str, Any]) -> None:
        records = [data] if isinstance(data, dict) else list(data)
        path = get_filepath_str(self._filepath, self._protocol)
        if self._protocol == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self._fs.open(path, "a" if self._mode == "append" else "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, default=str) + "\n")

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "mode": self._mode}
