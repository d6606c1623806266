"""The guide's vector search API: `get_vector_search_service(provider="qdrant"|"weaviate")`.

Provider names: ``qdrant`` = a Qdrant server when a URL is given (``url=`` or QDRANT_URL), otherwise the Qdrant
engine embedded in process (Qdrant Edge, HNSW; ``path=`` or a temporary directory); ``qdrant_local`` =
qdrant-client's local mode (exact search in Python, slower: kept for parity with qdrant-client code); ``weaviate`` = a Weaviate server (``url=`` or WEAVIATE_URL);
``numpy`` = exact in-process search. Guide-named methods are async; each has a ``_sync`` twin.

Embedding (``embedding=``, the API's ``AIETL_VECTOR_EMBEDDING``): ``pieces`` (default) embeds a record as the
normalised sum of the vectors of its pieces and identifiers. The pieces are those the dedupe pipeline embeds free
text from (`text_embedding: pieces`, `prepare.embedding_pieces`: the values between separators, without e-mail,
phone, date and numbers); each distinct piece is embedded once and remembered (`embeddings.ValueVectorMemo`), so
a query whose name, street and city were seen before costs no forward pass. What the pipeline's parser reads
exactly in the text (`textparse.identifiers`: the e-mail, the phone as its blocking key, the date and each
stand-alone number) each add a fixed random direction (`embeddings.hashed_vectors`): records that share one are
nearer, at no model cost. ``text`` embeds each whole text. A collection must be searched with the embedding it
was indexed with: changing it means indexing the collection again. Quality and cost of both, on generated, FEBRL and real labelled records:
`python -m aietl_pipelines.benchmarks.duplicates_quality` (docs/vector_search.md).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from aietl_pipelines.dedupe.matcher import DEFAULT_MATCH_THRESHOLD, score_text_matches
from aietl_pipelines.dedupe.normalize import phone_key
from aietl_pipelines.dedupe.prepare import rest_pieces
from aietl_pipelines.dedupe.textparse import identifiers
from aietl_pipelines.dedupe.transliterate import clean_text
from aietl_pipelines.embeddings import (
    EMBEDDING_DIM,
    ValueVectorMemo,
    disk_cached,
    embed_queries,
    embed_record_values,
    embed_texts,
    hashed_vectors,
    uses_bf16,
)
from aietl_pipelines.errors import AietlInputError
from aietl_pipelines.monitoring.instrument import vector_search_operation
from aietl_pipelines.vectorstores import VectorStore, get_vector_store
from aietl_pipelines.vectorstores.common import clean_payload

TEXT_KEY = "text"
#: How records and queries are embedded (module docstring).
EMBEDDINGS = ("pieces", "text")
#: Payload key of the embedding a record was indexed with (checked on queries, not returned as metadata).
EMBEDDING_KEY = "aietl_embedding"


#: Marks an identifier among the values a record is embedded from (removed from the texts themselves; not NUL,
#: which pandas' string hashing reads as the end of the string).
_ID = "\x1f"


def text_pieces(text: str) -> list[str]:
    """What a record text is embedded from with ``embedding="pieces"``: the dedupe pipeline's pieces
    (`prepare.embedding_pieces` of the cleaned text), then its e-mail, phone (blocking key), date and numbers,
    marked as identifiers."""
    clean = clean_text(text).replace(_ID, " ")
    found = identifiers(clean)
    ids = [f"{_ID}email:{found.email}" if found.email else None,
           f"{_ID}phone:{phone_key(found.phone) or found.phone}" if found.phone else None,
           f"{_ID}date:{found.date}" if found.date else None]
    numbers = [f"{_ID}number:{n}" for n in sorted(found.numbers)]
    return rest_pieces(found.rest, clean) + [i for i in ids if i] + numbers


def _value_vectors(values: list[str], embed_pieces: Any) -> np.ndarray:
    """Vectors of distinct values: identifiers hashed (`embeddings.hashed_vectors`), pieces by `embed_pieces`."""
    out = np.empty((len(values), EMBEDDING_DIM), dtype=np.float32)
    ids = [i for i, v in enumerate(values) if v.startswith(_ID)]
    rest = [i for i, v in enumerate(values) if not v.startswith(_ID)]
    if ids:
        out[ids] = hashed_vectors([values[i][1:] for i in ids])
    if rest:
        out[rest] = embed_pieces([values[i] for i in rest])
    return out


def _backend(provider: str, options: Mapping[str, Any]) -> VectorStore:
    if provider == "qdrant":
        if options.get("url") or os.environ.get("QDRANT_URL"):
            return get_vector_store("qdrant", **options)
        return get_vector_store("qdrant_edge", path=options.get("path"), hnsw_ef=options.get("hnsw_ef"))
    return get_vector_store(provider, **options)


def _metadata_value(value: Any) -> Any:
    """A frame cell as stored metadata: missing values (NaN, NaT, None) become None, dates ISO 8601 strings
    (the stores keep JSON values only: vectorstores/common.py)."""
    if value is None or (np.ndim(value) == 0 and not isinstance(value, str) and pd.isna(value)):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else value


class VectorSearchService:
    """Index records as embeddings with their text and metadata; search them and find duplicates."""

    def __init__(self, provider: str = "qdrant", cache_dir: str | None = None, device: str = "auto",
                 embedding: str = "pieces", piece_memo: int = 100_000, **options: Any) -> None:
        if embedding not in EMBEDDINGS:
            raise AietlInputError(f"embedding={embedding!r}: use one of {', '.join(EMBEDDINGS)} "
                                  "(AIETL_VECTOR_EMBEDDING for the API).")
        self.provider = provider
        self.store = _backend(provider, options)
        self.cache_dir = cache_dir
        self.device = device  # torch device of the embedding model: auto | cpu | cuda | mps
        self.embedding = embedding
        self.pieces = ValueVectorMemo(piece_memo)  # piece -> vector, for embedding="pieces"
        self._query_embed: Any = None  # embed_query_texts' embedder of the pieces or texts not remembered
        self._known: set[str] = set()  # collections seen to exist (skips a lookup per query)
        self._same_embedding: set[str] = set()  # collections whose records were seen indexed as this one queries
        self._batcher: QueryBatcher | None = None
        #: batches of query texts embedded at once (threads); the API sets it from AIETL_API_EMBED_THREADS
        self.query_concurrency = 1

    @staticmethod
    def _texts(texts: list[Any]) -> list[str]:
        for i, t in enumerate(texts):
            if isinstance(t, bytes | bytearray):
                raise AietlInputError(f"Text #{i} is bytes: decode it to a str (e.g. text.decode('utf-8')).")
            if t is not None and not isinstance(t, str) and not (isinstance(t, float) and np.isnan(t)):
                raise AietlInputError(f"Text #{i} is a {type(t).__name__} ({t!r:.40}), not a string.")
            if not isinstance(t, str) or not t.strip():
                raise AietlInputError(f"Text #{i} is empty: a record needs text to be indexed or searched.")
        return list(texts)

    def _vectors(self, texts: list[str], embed_many: Any) -> np.ndarray:
        """Vectors of valid texts: `embed_many` of each whole text, or (pieces) the normalised sum of its pieces'
        vectors, the pieces not remembered embedded by `embed_many` in one call."""
        if self.embedding == "text":
            return embed_many(texts)
        pieces = [text_pieces(t) for t in texts]
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), [len(p) for p in pieces])
        return embed_record_values(rows, [p for ps in pieces for p in ps], len(texts),
                                   embed_distinct=lambda values: _value_vectors(
                                       values, lambda pieces: self.pieces.embed(pieces, embed_many)))

    def _embed(self, texts: list[Any]) -> np.ndarray:
        """Vectors of records to index (the batch model, through the disk cache when `cache_dir` is set)."""
        return self._vectors(self._texts(texts), lambda t: embed_texts(t, cache_dir=self.cache_dir,
                                                                        device=self.device))

    def embed_query_texts(self, texts: list[Any]) -> np.ndarray:
        """Vectors of query texts, as the records of a collection are embedded: (pieces) those not remembered
        read from the disk cache when `cache_dir` is set (the pieces indexed there, by this or another
        process), the rest by the query encoder."""
        if self._query_embed is None:  # built once: the disk cache is opened on first use, then reused
            embed = lambda t: embed_queries(t, device=self.device)  # noqa: E731
            if self.embedding == "pieces":
                embed = disk_cached(embed, self.cache_dir, bf16=uses_bf16(self.device), write=False)
            self._query_embed = embed
        return self._vectors(self._texts(texts), self._query_embed)

    def _embed_query(self, text: Any) -> np.ndarray:
        return self.embed_query_texts([text])[0]

    def _require(self, collection_name: str) -> None:
        """Unknown collection: a clear error that names only the caller's collection (never the others)."""
        if collection_name in self._known:
            return
        if not isinstance(collection_name, str) or not self.store.has_collection(collection_name):
            raise AietlInputError(f"Unknown collection '{collection_name}': create it first "
                                  "(create_collection, or POST /api/v1/vector-search/collections).")
        self._known.add(collection_name)

    def _check_embedding(self, collection_name: str, hits: list[Any]) -> None:
        """A collection indexed with another embedding than this service queries with gives meaningless
        neighbours: say so (records indexed before the embedding was recorded, or by `store.upsert` directly,
        carry none and are not checked)."""
        if collection_name in self._same_embedding or not hits:
            return
        found = {h.payload.get(EMBEDDING_KEY) for h in hits} - {None}
        if found - {self.embedding}:
            other = sorted(found - {self.embedding})[0]
            raise AietlInputError(
                f"Collection '{collection_name}' was indexed with embedding '{other}' and is queried with "
                f"'{self.embedding}': set AIETL_VECTOR_EMBEDDING={other} (embedding='{other}' in Python) or index "
                "the collection again.")
        if found:
            self._same_embedding.add(collection_name)

    # sync core -------------------------------------------------------------------------------------
    @vector_search_operation("create_collection")
    def create_collection_sync(self, name: str, recreate: bool = False) -> dict[str, Any]:
        self.store.create_collection(name, EMBEDDING_DIM, recreate=recreate)
        self._known.add(name)
        return {"collection_name": name, "dimension": EMBEDDING_DIM, "provider": self.provider}

    @vector_search_operation("index")
    def index_record_sync(self, collection_name: str, record_id: str, text: str,
                          metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self._require(collection_name)
        vector = self._embed([text])
        self.store.upsert(collection_name, [record_id], vector,
                          [{**clean_payload(metadata), TEXT_KEY: text, EMBEDDING_KEY: self.embedding}])
        return {"record_id": str(record_id), "indexed": True}

    @vector_search_operation("batch_index")
    def batch_index_sync(self, collection_name: str, records: Iterable[Mapping[str, Any]] | pd.DataFrame,
                         text_field: str = "text", id_field: str = "id") -> dict[str, Any]:
        self._require(collection_name)
        frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
        missing = [c for c in (text_field, id_field) if c not in frame.columns]
        if missing:
            raise AietlInputError(f"Records lack {missing} (columns: {list(frame.columns)}); set text_field/id_field.")
        ids = frame[id_field].astype(str)
        if ids.duplicated().any():
            raise AietlInputError(f"Duplicate ids in '{id_field}': {ids[ids.duplicated()].unique()[:10].tolist()}.")
        vectors = self._embed(frame[text_field].tolist())
        payloads = [{k: _metadata_value(v) for k, v in row.items() if k != id_field}
                    for row in frame.to_dict(orient="records")]
        for p, t in zip(payloads, frame[text_field].tolist(), strict=True):
            p[TEXT_KEY], p[EMBEDDING_KEY] = t, self.embedding
        self.store.upsert(collection_name, ids.tolist(), vectors, payloads)
        return {"indexed": len(frame), "collection_name": collection_name}

    @vector_search_operation("search")
    def search_sync(self, collection_name: str, query: str, filters: Mapping[str, Any] | None = None,
                    limit: int = 10, vector: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Nearest records to the query (``vector``: its embedding, when already computed)."""
        self._require(collection_name)
        vector = self._embed_query(query) if vector is None else vector
        hits = self.store.query(collection_name, vector, limit=limit, filters=filters)
        self._check_embedding(collection_name, hits)
        return [{"record_id": h.record_id, "score": h.score,
                 "metadata": {k: v for k, v in h.payload.items() if k != EMBEDDING_KEY}} for h in hits]

    @vector_search_operation("find_duplicates")
    def find_duplicates_sync(self, collection_name: str, text: str, threshold: float = DEFAULT_MATCH_THRESHOLD,
                             limit: int = 10, vector: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Nearest records scored by the dedupe match model: similarity_score = match probability
        (``vector``: the text's embedding, when already computed)."""
        self._require(collection_name)
        vector = self._embed_query(text) if vector is None else vector
        hits = self.store.query(collection_name, vector, limit=limit)
        self._check_embedding(collection_name, hits)
        scores = score_text_matches(text, [str(h.payload.get(TEXT_KEY, "")) for h in hits])
        out = [{"record_id": h.record_id, "similarity_score": float(s), "cosine": h.score,
                "is_duplicate": bool(s >= threshold),
                "metadata": {k: v for k, v in h.payload.items() if k not in ("record_id", EMBEDDING_KEY)}}
               for h, s in zip(hits, scores, strict=True)]
        return sorted(out, key=lambda r: -r["similarity_score"])

    # async API of the guide ----------------------------------------------------------------------
    async def create_collection(self, name: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.create_collection_sync, name)

    async def index_record(self, collection_name, record_id, text, metadata=None):
        return await asyncio.to_thread(self.index_record_sync, collection_name, record_id, text, metadata)

    async def batch_index(self, collection_name, records, text_field="text", id_field="id"):
        return await asyncio.to_thread(self.batch_index_sync, collection_name, records, text_field, id_field)

    async def find_duplicates(self, collection_name, text, threshold=DEFAULT_MATCH_THRESHOLD, limit=10):
        vector = await self._query_vector_or_none(collection_name, text)
        return await asyncio.to_thread(self.find_duplicates_sync, collection_name, text, threshold, limit, vector)

    async def search(self, collection_name, query, filters=None, limit=10):
        vector = await self._query_vector_or_none(collection_name, query)
        return await asyncio.to_thread(self.search_sync, collection_name, query, filters, limit, vector)

    async def _query_vector_or_none(self, collection_name: str, text: Any) -> np.ndarray | None:
        """The batched query embedding, or None on bad input: the instrumented sync method then raises the
        same error itself, so that it is counted (aietl_vector_search_errors_total{kind="bad_input"})."""
        try:
            return await self._query_vector(collection_name, text)
        except AietlInputError:
            return None

    async def _query_vector(self, collection_name: str, text: Any) -> np.ndarray:
        """The query's embedding, computed together with the other queries awaiting at the same moment."""
        if collection_name not in self._known:  # bad input fails before any embedding
            await asyncio.to_thread(self._require, collection_name)
        (text,) = self._texts([text])
        if self._batcher is None:
            self._batcher = QueryBatcher(self.embed_query_texts, concurrency=self.query_concurrency)
        return await self._batcher.embed(text)


class QueryBatcher:
    """Embeds the query texts awaiting at the same moment in one forward pass, in up to ``concurrency`` worker
    threads at once.

    With many concurrent requests (the API), one pass over a batch of short texts costs less per text than one
    pass per text; a lone request is embedded at once, alone. Torch releases the GIL during the forward pass
    and runs one intra-op thread per process (`AIETL_API_TORCH_THREADS`), so with ``concurrency`` 2 two
    batches are embedded on two cores at the same time while the event loop serves the rest
    (`AIETL_API_EMBED_THREADS`). Texts that arrive while every thread is busy wait, and are split evenly over
    the threads that free up. Batches are at most ``max_batch`` texts."""

    def __init__(self, embed_many: Any, max_batch: int = 32, concurrency: int = 1) -> None:
        self.embed_many = embed_many
        self.max_batch = max_batch
        self.concurrency = max(1, int(concurrency))
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="aietl-query-embed")
        # per event loop (the service may be used from several loops: tests, asyncio.run in scripts)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue] = weakref.WeakKeyDictionary()

    async def embed(self, text: str) -> np.ndarray:
        loop = asyncio.get_running_loop()
        queue = self._loops.get(loop)
        if queue is None:
            queue = self._loops[loop] = _LoopQueue()
        future = loop.create_future()
        queue.pending.append((text, future))
        self._start(loop, queue)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop, queue: _LoopQueue) -> None:
        while queue.pending and queue.running < self.concurrency:
            share = -(-len(queue.pending) // (self.concurrency - queue.running))  # even split over free threads
            size = min(self.max_batch, share)
            batch, queue.pending = queue.pending[:size], queue.pending[size:]
            queue.running += 1
            loop.create_task(self._run(loop, queue, batch))

    async def _run(self, loop: asyncio.AbstractEventLoop, queue: _LoopQueue,
                   batch: list[tuple[str, asyncio.Future]]) -> None:
        try:
            vectors = await loop.run_in_executor(self._executor, self.embed_many, [text for text, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), vector in zip(batch, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)
        finally:
            queue.running -= 1
            self._start(loop, queue)


class _LoopQueue:
    """The texts waiting in one event loop, and how many of its batches are being embedded."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, asyncio.Future]] = []
        self.running = 0


_SERVICES: dict[tuple, VectorSearchService] = {}


def get_vector_search_service(provider: str = "qdrant", **options: Any) -> VectorSearchService:
    """One service per provider and options in this process (collections live as long as it does)."""
    key = (provider, tuple(sorted((k, str(v)) for k, v in options.items())))
    if key not in _SERVICES:
        _SERVICES[key] = VectorSearchService(provider, **options)
    return _SERVICES[key]
