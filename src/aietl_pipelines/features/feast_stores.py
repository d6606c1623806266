"""Feast stores made safe for concurrent writers, through Feast's own extension points (custom online store
and registry store classes named by their import path in the repo config).

- `ThreadLocalSqliteOnlineStore`: Feast 0.67's SQLite online store keeps ONE connection per store object and
  shares it across threads (``check_same_thread=False``). Two threads pushing at once then interleave their
  statements in one transaction ("cannot start a transaction within a transaction", "no more rows
  available"), and a reader on the same connection sees another thread's uncommitted half-push (an entity
  with ``current_memory_usage`` but no ``current_cpu_usage``). Here every thread gets its own connection, the
  database runs in WAL mode (readers never block the writer and always see whole commits) with a 60 s busy
  timeout; each ``online_write_batch`` stays one transaction (Feast's ``with conn:``).
- `TransactionalRedisOnlineStore`: Feast's Redis writer sends a batch as a pipeline with
  ``transaction=False``; here the same pipelines run as MULTI/EXEC, so a push is stored whole or not at all
  (a connection lost before EXEC stores nothing) and readers never see half of it.
- `AtomicFileRegistryStore`: Feast's file registry is rewritten in place (``open(path, "wb")``), so a reader
  (the registry is re-read on every call with ``cache_ttl_seconds=0``) can read a truncated file while
  ``apply`` or ``materialize`` writes it. Here it is written to a unique temporary file and renamed.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from feast.infra.online_stores import sqlite as feast_sqlite
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
from feast.infra.registry.file import FileRegistryStore

from aietl_pipelines.features.files import atomic_write_bytes

SQLITE_TYPE = "aietl_pipelines.features.feast_stores.ThreadLocalSqliteOnlineStore"
REDIS_TYPE = "aietl_pipelines.features.feast_stores.TransactionalRedisOnlineStore"
REGISTRY_STORE_TYPE = "aietl_pipelines.features.feast_stores.AtomicFileRegistryStore"
BUSY_TIMEOUT_S = 60.0


class ThreadLocalSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Feast's SQLite online store settings (same table layout and file)."""

    type: Literal[SQLITE_TYPE] = SQLITE_TYPE  # type: ignore[assignment, valid-type]


class ThreadLocalSqliteOnlineStore(SqliteOnlineStore):
    """Feast's SQLite online store with one connection per thread (see the module docstring)."""

    def _get_conn(self, config: Any) -> sqlite3.Connection:
        local = self.__dict__.get("_aietl_local")
        if local is None:
            local = self.__dict__.setdefault("_aietl_local", threading.local())
        conn = getattr(local, "conn", None)
        if conn is None:
            path = Path(self._get_db_path(config))
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S,
                                   detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES)
            conn.execute("PRAGMA journal_mode=WAL")
            local.conn = conn
        return conn

    def online_write_batch(self, *args: Any, **kwargs: Any) -> None:
        # sqlite3 adapters are process-global: Feast registers datetime -> epoch seconds at import, but a module
        # imported later can replace it (nbformat.sign registers datetime -> ISO text), and Feast's reader then
        # fails on the ISO strings (int(b"2026-...")). Put Feast's adapter back before every write.
        sqlite3.register_adapter(datetime, feast_sqlite.adapt_datetime_epoch)
        return super().online_write_batch(*args, **kwargs)

    def teardown(self, config: Any, tables: Any, entities: Any) -> None:
        local = self.__dict__.pop("_aietl_local", None)
        if local is not None and getattr(local, "conn", None) is not None:
            local.conn.close()
        super().teardown(config, tables, entities)


class _TransactionalPipelines:
    """A redis-py client whose pipelines are MULTI/EXEC transactions."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:  # noqa: ARG002
        return self._client.pipeline(transaction=True, shard_hint=shard_hint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class TransactionalRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis online store settings (same keys and values)."""

    type: Literal[REDIS_TYPE] = REDIS_TYPE  # type: ignore[assignment, valid-type]


class TransactionalRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store; each write batch is one MULTI/EXEC transaction."""

    def _get_client(self, online_store_config: Any) -> Any:
        client = super()._get_client(online_store_config)
        from redis import Redis

        return _TransactionalPipelines(client) if isinstance(client, Redis) else client


class AtomicFileRegistryStore(FileRegistryStore):
    """Feast's file registry, replaced atomically on every write."""

    def _write_registry(self, registry_proto: Any) -> None:
        import uuid

        from feast.utils import _utc_now

        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        atomic_write_bytes(self._filepath, registry_proto.SerializeToString())
