"""Small custom Kedro datasets the project needs."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io import AbstractDataset
from kedro.io.core import get_filepath_str, get_protocol_and_path

from aietl_pipelines.errors import AietlInputError


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


class TableDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A table read by its file extension (.parquet, .csv, .json/.jsonl), so that a run-time parameter can
    point a pipeline at any file: ``filepath: ${runtime_params:dedupe.input_path, data/01_raw/customers.parquet}``.

    CSV files are read as UTF-8; bytes that are not valid UTF-8 are a clear error naming the file."""

    def __init__(self, filepath: str, load_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._filepath = filepath
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def _kind(self) -> str:
        lower = self._filepath.lower()
        for ext, kind in ((".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"), (".jsonl", "jsonl"),
                          (".json", "json")):
            if lower.endswith(ext):
                return kind
        raise AietlInputError(f"Cannot tell the format of '{self._filepath}': use .parquet, .csv, .json or .jsonl.")

    def _load(self) -> pd.DataFrame:
        kind = self._kind()
        if kind == "parquet":
            return pd.read_parquet(self._filepath, **self._load_args)
        if kind == "csv":
            try:
                return pd.read_csv(self._filepath, dtype=str, keep_default_na=True, encoding="utf-8", **self._load_args)
            except UnicodeDecodeError as exc:
                raise AietlInputError(
                    f"'{self._filepath}' is not valid UTF-8 ({exc.reason} at byte {exc.start}). Re-save it as UTF-8 "
                    "(e.g. `iconv -f latin1 -t utf-8`) or pass load_args: {encoding: latin-1}."
                ) from None
        return pd.read_json(self._filepath, lines=kind == "jsonl", **self._load_args)

    def _save(self, data: pd.DataFrame) -> None:
        kind = self._kind()
        Path(self._filepath).parent.mkdir(parents=True, exist_ok=True)
        if kind == "parquet":
            data.to_parquet(self._filepath, index=False)
        elif kind == "csv":
            data.to_csv(self._filepath, index=False)
        else:
            data.to_json(self._filepath, orient="records", lines=kind == "jsonl")

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


class DedupeStateDataset(AbstractDataset[Any, Any]):
    """The state a dedupe run leaves for incremental runs (a directory; see `dedupe.engine.save_state`)."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _load(self) -> Any:
        from aietl_pipelines.dedupe.engine import load_state

        return load_state(self._path)

    def _save(self, data: Any) -> None:
        from aietl_pipelines.dedupe.engine import save_state

        save_state(data, self._path)

    def _exists(self) -> bool:
        return (self._path / "model.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
