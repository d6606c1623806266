"""Files that readers never see half-written: write to a unique temporary file in the same folder, fsync,
``os.replace`` over the target (atomic on POSIX), fsync the folder; writers serialised by an advisory
``fcntl.flock`` lock that holds across threads (each holder opens its own file description) and processes.

A reader that opened the old file keeps reading it; the next open sees the new one. A writer killed at any
point leaves the target as it was (at worst a ``.<name>.*.tmp`` file that the next writer removes).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Temporary files older than this are left by a killed writer and are removed by the next writer.
STALE_TMP_SECONDS = 3600.0


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Exclusive lock on ``path`` (created if missing) across threads and processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(target: str | Path, older_than: float = STALE_TMP_SECONDS) -> int:
    """Remove temporary files of ``target`` left by killed writers; returns how many were removed."""
    target = Path(target)
    removed = 0
    now = time.time()
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


@contextmanager
def atomic_target(target: str | Path) -> Iterator[Path]:
    """Yield a unique temporary path next to ``target``; on success it replaces ``target`` atomically, on
    error it is removed and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically."""
    with atomic_target(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_parquet(target: str | Path, table: Any) -> None:
    """Replace ``target`` with a pandas DataFrame or pyarrow Table atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_target(target) as tmp:
        pq.write_table(table, tmp)


@contextmanager
def appended_parquet(target: str | Path, table: Any) -> Iterator[int]:
    """Stage ``target`` + the new rows in a temporary file; on leaving the block without an error it replaces
    ``target`` atomically (yields the total row count). Callers hold the file's lock.

    The new rows are cast to the file's schema, so an append never changes it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(target)
    new = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
    if target.exists():
        old = pq.read_table(target)
        new = new.select(old.schema.names).cast(old.schema)
        combined = pa.concat_tables([old, new])
    else:
        combined = new
    remove_stale_temporaries(target, older_than=0)  # under the lock, any temporary is a killed writer's
    with atomic_target(target) as tmp:
        pq.write_table(combined, tmp)
        yield combined.num_rows


def append_parquet(target: str | Path, table: Any) -> int:
    """Append rows to a parquet file as one atomic replace; returns the total rows. Callers hold the lock."""
    with appended_parquet(target, table) as total:
        return total
