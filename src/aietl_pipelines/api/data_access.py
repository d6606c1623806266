"""Tables named by path in requests (drift detection's ``reference_data_path`` / ``current_data_path``).

Only paths under the allowed roots are read (``AIETL_DATA_ROOTS``: comma-separated local folders and
``s3://bucket/prefix`` entries; default the project's ``data/``). Relative local paths are taken from the
project root. Local files and S3 objects are read through fsspec (s3fs), with credentials from the standard
AWS environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` for S3-compatible servers such as MinIO). Parquet and CSV, by
extension; files and row counts above the limits are refused before they are read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pandas as pd

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.paths import project_root

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def _s3_parts(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, str(PurePosixPath("/", key))[1:] if key else ""


def resolve_data_path(path: str, roots: Sequence[str], name: str = "path") -> str:
    """The URL or absolute local path to read, or a clear error when `path` is outside every root."""
    if not path or "\x00" in path or len(path) > 1024:
        raise AietlInputError(f"{name} must be a file path or s3:// URL of at most 1024 characters.")
    outside = AietlInputError(f"{name} '{path}' is outside the allowed data roots: put the file under one of "
                              "the folders or s3:// prefixes listed in AIETL_DATA_ROOTS on the server.")
    if "://" in path:
        if not path.startswith("s3://"):
            raise AietlInputError(f"{name} '{path}': only local paths and s3:// URLs are supported.")
        if any(part == ".." for part in path[5:].split("/")):
            raise outside
        bucket, key = _s3_parts(path)
        if not bucket or not key:
            raise AietlInputError(f"{name} '{path}' must name an object: s3://bucket/key.parquet")
        for root in roots:
            if root.startswith("s3://"):
                root_bucket, prefix = _s3_parts(root.rstrip("/"))
                if bucket == root_bucket and (not prefix or key.startswith(prefix + "/")):
                    return f"s3://{bucket}/{key}"
        raise outside
    local = Path(path).expanduser()
    local = (local if local.is_absolute() else project_root() / local).resolve()
    for root in roots:
        if root.startswith("s3://"):
            continue
        base = Path(root).expanduser()
        base = (base if base.is_absolute() else project_root() / base).resolve()
        if local.is_relative_to(base):
            return str(local)
    raise outside


def read_table(path: str, roots: Sequence[str], max_rows: int, max_bytes: int, name: str = "path") -> pd.DataFrame:
    """A parquet or CSV file under the allowed roots as a DataFrame (see the module docstring)."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    url = resolve_data_path(path, roots, name)
    suffix = os.path.splitext(url)[1].lower()
    kind = FORMATS.get(suffix)
    if kind is None:
        raise AietlInputError(f"{name} '{path}': cannot tell the format; use a .parquet or .csv file.")
    try:
        fs, fpath = fsspec.core.url_to_fs(url)
        info = fs.info(fpath)
    except FileNotFoundError:
        raise AietlInputError(f"{name} '{path}' does not exist.") from None
    except Exception as exc:  # noqa: BLE001 - credentials, network, permissions: many types
        raise AietlInputError(f"{name} '{path}' cannot be read ({type(exc).__name__}): check the path and, for "
                              "s3://, the AWS_* credentials and AWS_ENDPOINT_URL of the server.") from None
    if info.get("type") == "directory":
        raise AietlInputError(f"{name} '{path}' is a folder: name one .parquet or .csv file.")
    size = int(info.get("size") or 0)
    if size > max_bytes:
        raise AietlInputError(f"{name} '{path}' is {size:,} bytes, above the limit of {max_bytes:,} "
                              "(AIETL_API_MAX_DRIFT_FILE_BYTES): sample it first.")
    try:
        with fs.open(fpath, "rb") as handle:
            if kind == "parquet":
                parquet = pq.ParquetFile(handle)
                rows = parquet.metadata.num_rows
                if rows > max_rows:
                    raise AietlInputError(f"{name} '{path}' has {rows:,} rows, above the limit of {max_rows:,} "
                                          "(AIETL_API_MAX_DRIFT_ROWS): sample it first.")
                frame = parquet.read().to_pandas()
            else:
                frame = pd.read_csv(handle, nrows=max_rows + 1, encoding="utf-8")
                if len(frame) > max_rows:
                    raise AietlInputError(f"{name} '{path}' has more than {max_rows:,} rows "
                                          "(AIETL_API_MAX_DRIFT_ROWS): sample it first.")
    except AietlInputError:
        raise
    except (pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError, OSError) as exc:
        raise AietlInputError(f"{name} '{path}' is not a readable {kind} file ({type(exc).__name__}).") from None
    return frame
