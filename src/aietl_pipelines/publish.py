"""All file outputs of a `kedro run` published together, or none of them.

Kedro saves each output when its node finishes, in place: a run that fails (or is killed) half-way leaves the
outputs of the nodes that ran next to the previous run's outputs of the nodes that did not. `RunPublishHooks`
points every local file output of the run at a staging folder instead
(``<output folder>/.aietl-staging-<run id>/<file name>``, on the same file system so that a rename publishes
it), lets the run read its own staged outputs, and after the whole pipeline succeeded renames them into place.
A failed run deletes its staging folders: nothing of it is published.

A journal (``<journal dir>/<run id>.json``, next to a lock file the live run holds with ``flock``) records the
moves. A run killed with ``kill -9`` leaves a journal whose lock nobody holds; the next run finds it and either
deletes the staged files (the run had not reached its publication) or finishes the renames (it was killed
while publishing). Readers therefore see the previous run's outputs, or, once a run publishes, the new ones;
only during the few milliseconds of the renames (or after a kill inside them, until the next run) can they
see a mix.

Not covered (they are not files): outputs held by Feast's stores and the MLflow registry, which their own
datasets write at their node (see docs/operations.md). Append-mode JSON-lines outputs are staged as a copy of
the current file plus the run's new lines.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset

from aietl_pipelines.errors import AietlInputError

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".aietl-staging-"
PUBLISH_LOCK = "publish.lock"
#: Path keys of dataset configurations that name a local output file or folder.
PATH_KEYS = ("filepath", "path")


def _local_path(value: Any) -> Path | None:
    """The local path of a dataset's file path, or None for remote/other protocols."""
    if not isinstance(value, str | os.PathLike):
        return None
    text = str(value)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        return None
    return Path(text).absolute()


def staged_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], Path, str] | None:
    """(config, final path, key) of a dataset config whose output can be staged; None when it cannot.

    Handles a top-level ``filepath``/``path`` and a wrapper's inner ``dataset`` (kedro-mlflow's
    MlflowArtifactDataset). Versioned datasets already keep every version apart and are left alone."""
    if not isinstance(config, Mapping) or config.get("versioned"):
        return None
    for key in PATH_KEYS:
        final = _local_path(config.get(key))
        if final is not None:
            return copy.deepcopy(dict(config)), final, key
    inner = config.get("dataset")
    if isinstance(inner, Mapping):
        found = staged_config(inner)
        if found is not None:
            inner_config, final, key = found
            outer = copy.deepcopy(dict(config))
            outer["dataset"] = inner_config
            return outer, final, "dataset." + key
    return None


def _set_path(config: dict[str, Any], key: str, value: Path) -> None:
    target = config
    *parents, last = key.split(".")
    for part in parents:
        target = target[part]
    target[last] = str(value)


@dataclass
class Move:
    """One staged output and where it goes."""

    staged: Path
    final: Path

    def as_dict(self) -> dict[str, str]:
        return {"staged": str(self.staged), "final": str(self.final)}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish_one(move: Move, backups: list[tuple[Move, Path | None]]) -> None:
    """Rename one staged output into place, keeping the old one in the staging folder for a rollback."""
    if not move.staged.exists():  # the run never saved it (e.g. a node that produced nothing)
        return
    backup = move.staged.parent / f".previous-{move.final.name}"
    _remove(backup)
    if move.staged.is_dir():
        if move.final.exists():
            os.replace(move.final, backup)  # folders cannot be replaced in one rename
            backups.append((move, backup))
        else:
            backups.append((move, None))
        os.replace(move.staged, move.final)
    else:
        if move.final.exists():
            try:
                os.link(move.final, backup)
            except OSError:
                shutil.copy2(move.final, backup)
            backups.append((move, backup))
        else:
            backups.append((move, None))
        os.replace(move.staged, move.final)  # atomic for files
    _fsync_dir(move.final.parent)


def _roll_back(backups: list[tuple[Move, Path | None]]) -> None:
    for move, backup in reversed(backups):
        try:
            _remove(move.final)
            if backup is not None:
                os.replace(backup, move.final)
        except OSError as exc:  # pragma: no cover - best effort; the journal keeps the rest
            logger.error("Could not restore %s from %s: %s", move.final, backup, exc)


@dataclass
class RunJournal:
    """The staged outputs of one run and the journal that lets a later run clean up after a crash."""

    journal_dir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    moves: dict[Path, Move] = field(default_factory=dict)
    _lock_fd: int | None = None

    @property
    def journal_path(self) -> Path:
        return self.journal_dir / f"{self.run_id}.json"

    @property
    def lock_path(self) -> Path:
        return self.journal_dir / f"{self.run_id}.lock"

    def open(self) -> None:
        """Create the journal and hold its lock for as long as the run lives."""
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._write("staging")

    def staging_dir(self, final: Path) -> Path:
        return final.parent / f"{STAGING_PREFIX}{self.run_id}"

    def stage(self, final: Path, append_copy: bool = False) -> Path:
        """The staged path for `final` (the same one for every dataset that writes `final`)."""
        if final in self.moves:
            return self.moves[final].staged
        folder = self.staging_dir(final)
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / final.name
        if append_copy and final.is_file():
            shutil.copy2(final, staged)
        self.moves[final] = Move(staged, final)
        self._write("staging")
        return staged

    def _write(self, state: str) -> None:
        record = {"run_id": self.run_id, "pid": os.getpid(), "state": state,
                  "moves": [m.as_dict() for m in self.moves.values()]}
        tmp = self.journal_dir / f".{self.run_id}.{uuid.uuid4().hex[:6]}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.journal_path)
        _fsync_dir(self.journal_dir)

    def publish(self) -> None:
        """Rename every staged output into place (rolled back if a rename fails), then clean up.

        Publications are serialised (one lock per journal folder): two runs finishing at once publish one
        after the other, so the outputs are all from one of them, never a mix."""
        with _exclusive(self.journal_dir / PUBLISH_LOCK):
            self._write("publishing")
            backups: list[tuple[Move, Path | None]] = []
            try:
                for move in self.moves.values():
                    _publish_one(move, backups)
            except OSError:
                _roll_back(backups)
                self.discard()
                raise
        self._finish()

    def discard(self) -> None:
        """Forget the run: delete its staged outputs. Never raises."""
        try:
            self._finish()
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's own error
            logger.warning("Could not remove the staging folders of run %s: %s", self.run_id, exc)

    def _finish(self) -> None:
        for folder in {self.staging_dir(final) for final in self.moves}:
            _remove(folder)
        self.journal_path.unlink(missing_ok=True)
        self.moves.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self.lock_path.unlink(missing_ok=True)


@contextmanager
def _exclusive(path: Path):
    """Hold an exclusive flock on `path` (blocking)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def _try_lock(path: Path):
    """Yield True when nobody holds the lock at `path` (the run that held it is gone)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def recover_interrupted_runs(journal_dir: Path) -> list[str]:
    """Finish or undo the runs that died (their lock is free): returns what was done, one line per run.

    A run that died while staging is undone (staged files deleted); one that died while publishing is
    rolled forward (the remaining renames are done), since some of its outputs are already in place."""
    done: list[str] = []
    if not journal_dir.is_dir():
        return done
    with _exclusive(journal_dir / PUBLISH_LOCK):
        for journal in sorted(journal_dir.glob("*.json")):
            _recover_one(journal, done)
    return done


def _recover_one(journal: Path, done: list[str]) -> None:
    """Undo or finish the run of one journal when its owner is gone (its lock is free)."""
    lock = journal.with_suffix(".lock")
    with _try_lock(lock) as free:
        if not free:
            return  # a live run
        try:
            record = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        moves = [Move(Path(m["staged"]), Path(m["final"])) for m in record.get("moves", [])]
        if record.get("state") == "publishing":
            for move in moves:
                if move.staged.exists():
                    _publish_one(move, [])
            done.append(f"run {record.get('run_id')}: finished publishing {len(moves)} output(s)")
        else:
            done.append(f"run {record.get('run_id')}: discarded {len(moves)} unpublished output(s)")
        for folder in {m.staged.parent for m in moves}:
            _remove(folder)
        journal.unlink(missing_ok=True)
    lock.unlink(missing_ok=True)


def _is_append(config: Mapping[str, Any]) -> bool:
    kind = str(config.get("type", ""))
    return kind.endswith("JSONLinesDataset") and config.get("mode", "append") == "append"


def _writable_error(folder: Path, exc: OSError) -> AietlInputError:
    return AietlInputError(
        f"Output folder '{folder}' is not writable ({type(exc).__name__}: {exc.strerror or exc}). "
        "Make it writable (or free space on its disk), or point the catalog entry / runtime params "
        "(e.g. dedupe.output_dir) at a writable folder."
    )


class RunPublishHooks:
    """Stage every local file output of a run; publish them all after the pipeline succeeded."""

    def __init__(self, journal_dir: str | Path | None = None) -> None:
        self._journal_dir = Path(journal_dir) if journal_dir else None
        self._journal: RunJournal | None = None

    def _dir(self) -> Path:
        if self._journal_dir is not None:
            return self._journal_dir
        return Path(os.environ.get("AIETL_RUN_JOURNAL_DIR", "data/.runs")).absolute()

    @hook_impl
    def before_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        journal_dir = self._dir()
        try:
            for line in recover_interrupted_runs(journal_dir):
                logger.warning("Interrupted earlier run cleaned up: %s", line)
            journal = RunJournal(journal_dir)
            journal.open()
        except OSError as exc:
            raise _writable_error(journal_dir, exc) from None
        self._journal = journal
        try:
            self._stage_outputs(journal, pipeline.all_outputs(), catalog)
        except BaseException:
            journal.discard()
            self._journal = None
            raise

    def _stage_outputs(self, journal: RunJournal, outputs: Iterable[str], catalog: Any) -> None:
        configs = getattr(getattr(catalog, "config_resolver", None), "config", {}) or {}
        replaced: dict[str, AbstractDataset] = {}
        for name in sorted(outputs):
            found = staged_config(configs.get(name) or {})
            if found is None:
                continue
            config, final, key = found
            try:
                staged = journal.stage(final, append_copy=_is_append(config))
            except OSError as exc:
                raise _writable_error(final.parent, exc) from None
            _set_path(config, key, staged)
            replaced[name] = AbstractDataset.from_config(name, config)
        catalog_logger = logging.getLogger("kedro.io.data_catalog")
        previous = catalog_logger.level
        catalog_logger.setLevel(logging.ERROR)  # "Replacing dataset ..." is what we mean here
        try:
            for name, dataset in replaced.items():
                catalog[name] = dataset
        finally:
            catalog_logger.setLevel(previous)
        if replaced:
            logger.info("Staging %d output(s) of this run until it succeeds (run %s)", len(replaced),
                        journal.run_id)

    @hook_impl(tryfirst=True)  # before any other after-run hook can fail and skip the publication
    def after_pipeline_run(self) -> None:
        journal, self._journal = self._journal, None
        if journal is None:
            return
        try:
            journal.publish()
        except OSError as exc:
            folder = Path(exc.filename).parent if exc.filename else journal.journal_dir
            raise _writable_error(folder, exc) from None

    @hook_impl
    def on_pipeline_error(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.discard()
