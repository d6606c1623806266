"""The project's custom Kedro datasets, all in one module (catalog entries use `aietl_pipelines.datasets.<Name>`).

- `JSONLinesDataset`: append-only JSON-lines logs (drift summary history, promotion audit).
- `TableDataset`: a table read by its file extension, so a run-time parameter can point at any file.
- `DedupeStateDataset`: the state a dedupe run leaves for incremental runs.
- `FeastFeatureViewDataset`, `FailurePredictionsDataset`: the Feast boundary (offline source, apply,
  materialize; predictions written back to the online store).
- `ChampionModelDataset`, `RegisteredModelDataset`: the MLflow registry boundary, so retraining nodes stay pure.

Heavy back ends (Feast, MLflow) are imported inside the methods that use them, so reading a JSON-lines log
does not import MLflow.
"""

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


def first_undecodable_byte(path: Path, encoding: str, chunk_size: int = 1 << 20) -> int | None:
    """Offset in the file of the first byte that `encoding` cannot decode (None if it all decodes)."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            final = not chunk
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                # the decoder's buffer holds the undecoded tail of the previous chunk
                pending = len(exc.object) - len(chunk)
                return offset - pending + exc.start
            if final:
                return None
            offset += len(chunk)


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
        path = Path(self._filepath)
        if path.is_file() and path.stat().st_size == 0:
            raise AietlInputError(
                f"'{self._filepath}' is empty (0 bytes): expected a {kind} table. Replace it with the real file."
            )
        if kind == "parquet":
            try:
                return pd.read_parquet(self._filepath, **self._load_args)
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                if path.exists():
                    raise AietlInputError(
                        f"'{self._filepath}' is not a readable parquet file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160]}). Replace it, or give a .csv/.json file instead."
                    ) from None
                raise
        if kind == "csv":
            # the caller's load_args win (e.g. `load_args: {encoding: latin-1}`); the defaults fill the rest
            args = {"dtype": str, "keep_default_na": True, "encoding": "utf-8", **self._load_args}
            try:
                return pd.read_csv(self._filepath, **args)
            except UnicodeDecodeError as exc:
                offset = first_undecodable_byte(path, args["encoding"])
                where = f"at offset {offset:,}" if offset is not None else f"({exc.reason})"
                raise AietlInputError(
                    f"'{self._filepath}' is not valid {args['encoding']}: undecodable byte {where}. Re-save it "
                    "as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or add `load_args: {encoding: latin-1}` (the "
                    "file's real encoding) to its catalog entry."
                ) from None
            except pd.errors.EmptyDataError:
                raise AietlInputError(
                    f"'{self._filepath}' holds no CSV header or rows. Replace it with the real file."
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


class FeastFeatureViewDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """`save(features)` writes the batch source, applies the definitions and materializes the saved range
    into the online store; `load()` reads the batch source back.
    """

    def __init__(
        self,
        features_path: str,
        repo_path: str = "feast_repo",
        config: str = "embedded",
        redis_url: str | None = None,
        registry_url: str | None = None,
        materialize: bool = True,
        metadata: dict[str, Any] | None = None,
        offline_store: str = "file",
    ) -> None:
        # offline_store "spark" (conf/spark/catalog.yml): SparkSources, Feast's Spark offline store and spark.engine
        self._options = {"features_path": features_path, "repo_path": repo_path, "config": config,
                         "redis_url": redis_url, "registry_url": registry_url, "offline_store": offline_store}
        self._materialize = materialize
        self.metadata = metadata

    def _service(self) -> Any:
        from aietl_pipelines.features.store import FeatureStoreService

        return FeatureStoreService(**self._options)

    def _load(self) -> pd.DataFrame:
        return pd.read_parquet(self._options["features_path"])

    def _save(self, data: pd.DataFrame) -> None:
        service = self._service()
        service.write_offline_source(data)
        service.apply()
        if self._materialize and len(data):
            start = pd.Timestamp(data["event_timestamp"].min()).to_pydatetime()
            # the bounds are inclusive; + 1 s so that the microsecond datetime still covers a nanosecond max
            end = (pd.Timestamp(data["event_timestamp"].max()) + pd.Timedelta(seconds=1)).to_pydatetime()
            service.materialize(start, end)

    def _exists(self) -> bool:
        return Path(self._options["features_path"]).exists()

    def _describe(self) -> dict[str, Any]:
        return {k: v for k, v in self._options.items() if k != "registry_url"}


class FailurePredictionsDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Writes failure_probability predictions back: into the online store of the `pipeline_features` view
    (so online serving returns them at once) and to a parquet file (the offline record of predictions)."""

    def __init__(self, filepath: str, repo_path: str = "feast_repo", features_path: str | None = None,
                 config: str = "embedded", redis_url: str | None = None, registry_url: str | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._filepath = filepath
        self._options = {"features_path": features_path, "repo_path": repo_path, "config": config,
                         "redis_url": redis_url, "registry_url": registry_url}
        self.metadata = metadata

    def _save(self, data: pd.DataFrame) -> None:
        from aietl_pipelines.features.store import FeatureStoreService

        Path(self._filepath).parent.mkdir(parents=True, exist_ok=True)
        data.to_parquet(self._filepath, index=False)
        if data.empty:
            return
        FeatureStoreService(**self._options).write_failure_probabilities(data)

    def _load(self) -> pd.DataFrame:
        return pd.read_parquet(self._filepath)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "repo_path": self._options["repo_path"]}


class ChampionModelDataset(AbstractDataset[None, Any]):
    """Loads `models:/<name>@champion` (None when no champion exists yet)."""

    def __init__(self, model_name: str, metadata: dict[str, Any] | None = None) -> None:
        self._model_name = model_name
        self.metadata = metadata

    def _load(self) -> Any:
        from aietl_pipelines.retraining.registry import load_champion

        return load_champion(self._model_name)

    def _save(self, data: None) -> None:
        raise NotImplementedError("The champion is set by promotion (RegisteredModelDataset), not saved.")

    def _exists(self) -> bool:
        return True  # "no champion" is a valid state, loaded as None

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": "champion"}


class RegisteredModelDataset(AbstractDataset[dict[str, Any], None]):
    """`save({"model", "input_example", "promote", "tags"})` registers the model version and moves the
    `champion` alias when `promote` is true (else aliases/tags it `challenger`). `model=None` saves nothing
    (training was skipped)."""

    def __init__(self, model_name: str, metadata: dict[str, Any] | None = None) -> None:
        self._model_name = model_name
        self.metadata = metadata

    def _save(self, data: dict[str, Any]) -> None:
        if not data or data.get("model") is None:
            return
        from aietl_pipelines.retraining.registry import register_model

        register_model(data["model"], self._model_name, data["input_example"], bool(data["promote"]),
                       data.get("tags"))

    def _load(self) -> None:
        raise NotImplementedError("Load the champion with ChampionModelDataset.")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name}
