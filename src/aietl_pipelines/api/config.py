"""API settings, read from the environment once when the app is built (restart to change them).

| variable | meaning | default |
| --- | --- | --- |
| ``AIETL_API_AUTH`` | ``required`` or ``disabled`` (local development only) | ``required`` |
| ``AIETL_API_KEYS`` | comma-separated keys with full rights (reads and writes) | none |
| ``AIETL_API_READ_KEYS`` | comma-separated read-only keys | none |
| ``AIETL_API_MAX_BODY_BYTES`` | largest request body, every route but drift detection | 4 MiB |
| ``AIETL_API_MAX_DRIFT_BODY_BYTES`` | largest body of ``POST /drift-monitoring/detect`` (inline rows) | 32 MiB |
| ``AIETL_API_MAX_DRIFT_ROWS`` | rows per frame for drift detection (inline or read by path) | 1,000,000 |
| ``AIETL_API_MAX_DRIFT_FILE_BYTES`` | largest file read by ``*_data_path`` | 1 GiB |
| ``AIETL_API_MAX_TEXT_CHARS`` | longest text to index or search | 10,000 |
| ``AIETL_DATA_ROOTS`` | where ``*_data_path`` may point: local folders and ``s3://bucket/prefix`` | ``<project>/data`` |
| ``AIETL_VECTOR_PROVIDER`` | vector store when a request names none | ``qdrant`` |
| ``AIETL_VECTOR_PATH`` | folder of the embedded Qdrant (Edge) collections; unset = a temporary folder | unset |
| ``AIETL_VECTOR_EMBEDDING`` | ``pieces`` (a record = the sum of its pieces' vectors) or ``text`` (whole texts); re-index to change | ``pieces`` |
| ``AIETL_VECTOR_PIECE_MEMO`` | piece vectors kept in memory per process (``pieces``; 100,000 = 154 MB) | 100,000 |
| ``AIETL_EMBEDDING_CACHE`` | folder of the content-hash embedding cache (the dedupe pipeline's): indexed texts and pieces are stored there, query pieces read from it; ``none`` = no cache | ``<project>/data/02_intermediate/embedding_cache`` |
| ``AIETL_API_WARMUP`` | what to build at start-up: ``1`` (all), ``0`` (nothing) or some of ``features,drift,vector,model`` | ``1`` |
| ``AIETL_API_TORCH_THREADS`` | torch intra-op threads of the query embedding in each API process | ``1`` |
| ``AIETL_API_EMBED_THREADS`` | query batches embedded at once in each API process (threads) | ``1`` |

Text and row limits are also part of the request models (and so of the OpenAPI schema), so they are read at
import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.paths import project_path

MiB = 1024 * 1024


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise AietlInputError(f"{name}={raw!r} is not a whole number; set it to e.g. {default}.") from None
    if value <= 0:
        raise AietlInputError(f"{name}={raw!r} must be positive; set it to e.g. {default}.")
    return value


WARM_UP_PARTS = ("features", "drift", "vector", "model")


def _warm_up_parts(raw: str) -> tuple[str, ...]:
    value = raw.strip().lower()
    if value in ("", "1", "all", "true", "yes"):
        return WARM_UP_PARTS
    if value in ("0", "none", "false", "no"):
        return ()
    parts = tuple(p.strip() for p in value.split(",") if p.strip())
    unknown = sorted(set(parts) - set(WARM_UP_PARTS))
    if unknown:
        raise AietlInputError(f"AIETL_API_WARMUP={raw!r}: unknown part(s) {unknown}; use 1, 0 or a comma-separated "
                              f"list of {', '.join(WARM_UP_PARTS)}.")
    return parts


def _cache_dir(raw: str) -> str | None:
    """AIETL_EMBEDDING_CACHE: a folder, ``none`` (no cache), or unset (the dedupe pipeline's cache folder)."""
    value = raw.strip()
    if value.lower() in ("none", "off", "0"):
        return None
    return value or str(project_path("data/02_intermediate/embedding_cache"))


def _choice(name: str, allowed: tuple[str, ...]) -> str:
    """The environment variable's value among `allowed` (the first when unset)."""
    value = os.environ.get(name, "").strip().lower() or allowed[0]
    if value not in allowed:
        raise AietlInputError(f"{name}={value!r}: use one of {', '.join(allowed)} (default {allowed[0]}).")
    return value


def _keys(name: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in os.environ.get(name, "").split(",") if k.strip())


#: Longest text accepted by index/search/duplicates (characters).
MAX_TEXT_CHARS = _int_env("AIETL_API_MAX_TEXT_CHARS", 10_000)
#: Rows per frame for drift detection.
MAX_DRIFT_ROWS = _int_env("AIETL_API_MAX_DRIFT_ROWS", 1_000_000)
#: Bounds of every `limit` parameter.
MAX_LIMIT = 1000


@dataclass(frozen=True)
class ApiSettings:
    """What the app reads from the environment (see the module docstring)."""

    auth_required: bool = True
    full_keys: tuple[str, ...] = ()
    read_keys: tuple[str, ...] = ()
    max_body_bytes: int = 4 * MiB
    max_drift_body_bytes: int = 32 * MiB
    max_drift_rows: int = MAX_DRIFT_ROWS
    max_drift_file_bytes: int = 1024 * MiB
    data_roots: tuple[str, ...] = field(default_factory=tuple)
    vector_provider: str = "qdrant"
    vector_path: str | None = None
    #: services/vector_search.py: how records and queries are embedded, and the piece vectors remembered
    vector_embedding: str = "pieces"
    piece_memo: int = 100_000
    embedding_cache: str | None = None
    warm_up: tuple[str, ...] = ("features", "drift", "vector", "model")
    #: One thread per process: concurrent requests already keep the cores busy (queries are embedded in batches
    #: while the event loop serves the others); a second intra-op thread spins in OpenMP waits, and on a busy
    #: machine a query costs several times the CPU (benchmarks/api_load.py). Run more uvicorn workers instead.
    torch_threads: int = 1
    #: Query batches embedded at the same time (each in its own thread, on `torch_threads` intra-op threads). One:
    #: with ``pieces`` most pieces of a query are remembered and a second thread only adds GIL hand-offs
    #: (benchmarks/api_load.py, duplicates on 100K records, quiet 2-core machine: 220 req/s, p95 61 ms with one
    #: thread against 210 req/s, p95 85 ms with two). Two helped whole-text queries (``text``), which spend most
    #: of their time in the model.
    embed_threads: int = 1

    @classmethod
    def from_env(cls) -> ApiSettings:
        mode = os.environ.get("AIETL_API_AUTH", "required").strip().lower() or "required"
        if mode not in ("required", "disabled"):
            raise AietlInputError(f"AIETL_API_AUTH={mode!r}: use 'required' (default) or 'disabled'.")
        roots = tuple(r.strip() for r in os.environ.get("AIETL_DATA_ROOTS", "").split(",") if r.strip())
        return cls(
            auth_required=mode == "required",
            full_keys=_keys("AIETL_API_KEYS"),
            read_keys=_keys("AIETL_API_READ_KEYS"),
            max_body_bytes=_int_env("AIETL_API_MAX_BODY_BYTES", 4 * MiB),
            max_drift_body_bytes=_int_env("AIETL_API_MAX_DRIFT_BODY_BYTES", 32 * MiB),
            max_drift_rows=MAX_DRIFT_ROWS,
            max_drift_file_bytes=_int_env("AIETL_API_MAX_DRIFT_FILE_BYTES", 1024 * MiB),
            data_roots=roots or (str(project_path("data")),),
            vector_provider=os.environ.get("AIETL_VECTOR_PROVIDER", "qdrant").strip() or "qdrant",
            vector_path=os.environ.get("AIETL_VECTOR_PATH") or None,
            vector_embedding=_choice("AIETL_VECTOR_EMBEDDING", ("pieces", "text")),
            piece_memo=_int_env("AIETL_VECTOR_PIECE_MEMO", 100_000),
            embedding_cache=_cache_dir(os.environ.get("AIETL_EMBEDDING_CACHE", "")),
            warm_up=_warm_up_parts(os.environ.get("AIETL_API_WARMUP", "1")),
            torch_threads=_int_env("AIETL_API_TORCH_THREADS", 1),
            embed_threads=_int_env("AIETL_API_EMBED_THREADS", 1),
        )
