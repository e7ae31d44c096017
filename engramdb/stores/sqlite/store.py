"""The embedded store: records, vectors, the lexical index and history in one SQLite file.

Durability and sharing: WAL journal, ``synchronous=FULL`` by default (durability ``full``: an
acknowledged write survives a crash of the process or the machine; ``normal`` is WAL's
``synchronous=NORMAL``: it survives any process crash, and the last commits may be lost on a
power cut), a 30 s busy timeout plus retries so that
several processes can write one file and "database is locked" never reaches the caller.
Each public operation is one transaction. No SQLite extension is loaded: vectors are
float32 BLOBs, searched by the exact in-memory index in ``stores.vectors`` (kept current by
``mirror``). Pragmas, erasure after hard deletes and error translation are in ``connection``;
whole-store copies in ``copies``; write steps in ``writes`` and, shared with PostgreSQL, ``semantics``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ...errors import StoreError
from ...filters import NOT_EPISODES
from ...models import (
    AddedItem,
    ApiKey,
    Event,
    Job,
    MemoryItem,
    Scope,
    Usage,
    content_hash,
    utcnow,
)
from .. import lexicon, semantics
from ..base import Change, Derived, NewJob, NewRecord, Operation, Query, StoreHit
from ..portable import MEMORY_COLUMNS, TableReader
from ..semantics import run
from ..speakers import SpeakerCache
from ..sqlreads import Row, SQLReads, query_sql, scope_sql
from . import copies, writes
from .checkpoint import FALLBACK_PAGES, Checkpointer
from .connection import connect, driver_errors, purge_deleted, retry, rollback, store_error
from .migrations import migrate
from .mirror import VectorMirror
from .rows import history_from_row, item_from_row, job_from_row, key_from_row, to_db_time
from .speakers import read_speakers
from .sqlfilter import compile_filter

R = TypeVar("R")
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}  # durability → SQLite's synchronous pragma


class SQLiteStore(SQLReads):
    """A Store on one SQLite file (or ``:memory:``). Thread-safe; one connection per store."""

    P = "?"
    COLUMNS = MEMORY_COLUMNS
    item_row = staticmethod(item_from_row)
    history_row = staticmethod(history_from_row)

    @staticmethod
    def key_row(row: Row) -> ApiKey:
        return key_from_row(row)

    @staticmethod
    def job_row(row: Row) -> Job:
        return job_from_row(row)

    @staticmethod
    def json_value(value: Any) -> Any:
        return json.loads(value)

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        return _query_sql(query)

    def __init__(self, path: str, *, durability: str = "full") -> None:
        self.location = path
        self.language = writes.LANGUAGE
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # the connection
        self._lexical_lock = self._lock if path == ":memory:" else threading.RLock()
        try:
            with driver_errors(opening=path):
                self._conn = connect(path)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
                self._conn.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")  # ``checkpoint``: beside the writer
                self._conn.execute("PRAGMA foreign_keys=ON")
                self.schema_version = self._retry(lambda: migrate(self._conn))
                # full-text queries get their own read connection (WAL readers do not block each
                # other), so a search runs them beside the vector scan; ":memory:" cannot be shared
                self._lexical_conn = self._conn if path == ":memory:" else connect(path, read_only=True)
        except BaseException:  # refused (a newer engramdb's file) or failed: leave no connection open
            conn = getattr(self, "_conn", None)
            if conn is not None:
                conn.close()
            raise
        snapshot = None if path == ":memory:" else Path(path + "-vectors")
        self._vectors = VectorMirror(self._conn, self._lock, snapshot, self._write, self._check_open)
        self._touches = semantics.TouchBuffer(self._lock)
        self._checkpoints = None if path == ":memory:" else Checkpointer(path)
        self._speakers = SpeakerCache()
        self._closed = False

    # --- transactions -------------------------------------------------------------------

    def _retry(self, fn: Any) -> Any:
        return retry(fn)

    @contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """One IMMEDIATE transaction with a fresh change sequence number for the rows it writes."""
        with self._lock:
            self._check_open()
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                seq = self._conn.execute(
                    "UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value"
                ).fetchone()[0]
                yield self._conn, seq
                self._conn.execute("COMMIT")
                if self._checkpoints is not None:
                    self._checkpoints.committed(self._conn.total_changes)
            except BaseException as exc:
                rollback(self._conn)
                if isinstance(exc, sqlite3.DatabaseError):
                    raise store_error(exc) from exc
                raise

    def _read(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *, lexical: bool = False
    ) -> list[sqlite3.Row]:
        conn, lock = (self._lexical_conn, self._lexical_lock) if lexical else (self._conn, self._lock)
        with lock, driver_errors():
            self._check_open()
            return self._retry(lambda: conn.execute(sql, params).fetchall())  # type: ignore[no-any-return]

    def _check_open(self) -> None:
        if getattr(self, "_closed", False):
            raise StoreError("the store is closed")

    # --- embedder binding ---------------------------------------------------------------

    def bind_embedder(self, name: str, dimension: int) -> None:
        if semantics.check_binding(self._meta(), name, dimension):
            return
        with self._write() as (conn, _):
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('embedder', ?), ('dimension', ?)", (name, str(dimension)))
        self.bind_embedder(name, dimension)  # another process may have won the race

    # --- writes: the shared steps of ``semantics`` in one transaction, or SQLite's own ----------

    def _run(self, body: Callable[[writes.Tx], Coroutine[Any, Any, R]]) -> R:
        with self._write() as (conn, seq):
            return run(body(writes.Tx(conn, seq)))

    def add(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob | None = None
    ) -> list[tuple[str, Event]]:
        return self._run(lambda d: writes.add(d, tenant_id, records, job))

    def add_derived(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob, derived: Derived
    ) -> tuple[list[tuple[str, Event]], list[AddedItem] | None]:
        async def body(d: writes.Tx) -> tuple[list[tuple[str, Event]], list[AddedItem] | None]:
            outcomes = await writes.add(d, tenant_id, records, None)  # the job: written with its result
            return outcomes, await semantics.apply_derived(d, tenant_id, records, outcomes, job, derived)

        return self._run(body)

    def apply(
        self, tenant_id: str, operations: Sequence[Operation], *, job_id: str | None = None, usage: Usage | None = None
    ) -> list[AddedItem] | None:
        return self._run(lambda d: semantics.apply(d, tenant_id, operations, job_id, usage))

    def update(self, tenant_id: str, memory_id: str, change: Change) -> MemoryItem:
        with self._write() as (conn, seq):
            old = writes.get(conn, tenant_id, memory_id)
            values: dict[str, Any] = {"updated_at": to_db_time(utcnow()), "seq": seq}
            if change.text is not None and change.embedding is not None and change.index_text is not None:
                values.update(
                    text=change.text,
                    hash=old.hash if change.text == old.memory else content_hash(change.text),
                    index_text=change.index_text,
                    embedding=np.ascontiguousarray(change.embedding, dtype=np.float32).tobytes(),
                )
            if change.metadata is not None:
                values["metadata"] = json.dumps(change.metadata, allow_nan=False, separators=(",", ":"))
            values.update(change.updates)
            values.update({k: to_db_time(v) for k, v in change.times.items()})
            assignments = ", ".join(f"{key} = :{key}" for key in values)
            indexed = f"SELECT {writes.LEXICAL_COLUMNS} FROM memories WHERE id = ?"
            if "text" in values:
                writes.unindex(conn, conn.execute(indexed, (memory_id,)).fetchall())
            with driver_errors(unique=True):
                conn.execute(f"UPDATE memories SET {assignments} WHERE id = :id", {**values, "id": memory_id})
            if "text" in values:
                writes.reindex(conn, conn.execute(indexed, (memory_id,)).fetchall())
            new = writes.get(conn, tenant_id, memory_id)
            writes.Tx(conn, seq).log(tenant_id, new, Event.UPDATE, old=old, new=new)
            return new

    def delete(self, tenant_id: str, memory_id: str) -> None:
        with self._write() as (conn, seq):
            item = writes.get(conn, tenant_id, memory_id)
            writes.remove(conn, seq, "id = ?", [memory_id])
            tx = writes.Tx(conn, seq)
            tx.log(tenant_id, item, Event.DELETE, old=item)
            run(semantics.retract_derived(tx, tenant_id, [memory_id]))

    def delete_scope(self, tenant_id: str, scope: Scope, *, hard: bool = False) -> int:
        where, params = _scope_sql(tenant_id, scope)
        with self._write() as (conn, seq):
            rows = conn.execute(f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where}", params).fetchall()
            ids = [r["id"] for r in rows]
            if hard:
                writes.erase_traces(conn, tenant_id, scope, ids)
                writes.mark_erased(conn, seq)
            else:
                tx = writes.Tx(conn, seq)
                for row in rows:
                    item = item_from_row(row)
                    tx.log(tenant_id, item, Event.DELETE, old=item, reason="delete_all")
            writes.remove(conn, seq, where.replace("m.", ""), params)
            if not hard:
                run(semantics.retract_derived(writes.Tx(conn, seq), tenant_id, ids))
        if hard:
            self._after_hard_delete()
        return len(rows)

    def _after_hard_delete(self) -> None:
        """Leave no copy behind: the WAL is checkpointed and emptied (freed pages are zeroed by
        secure_delete; the lexical index holds no words), and the vector
        snapshot, which holds embeddings and ids, is rewritten or removed."""
        with self._vectors.saves, self._vectors.lock, self._lock:
            self._check_open()
            self._retry(lambda: purge_deleted(self._conn))
            self._vectors.rewrite_snapshot()

    def forget(self, tenant_id: str, ids: Sequence[str], *, reason: str, hard: bool) -> int:
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        with self._write() as (conn, seq):
            rows = conn.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE tenant_id = ? AND id IN ({marks})", [tenant_id, *ids]
            ).fetchall()
            items = [item_from_row(r) for r in rows]
            if hard:
                conn.execute(f"DELETE FROM history WHERE tenant_id = ? AND memory_id IN ({marks})", [tenant_id, *ids])
                conn.execute(f"DELETE FROM memory_sources WHERE memory_id IN ({marks})", list(ids))
                writes.remove(conn, seq, f"tenant_id = ? AND id IN ({marks})", [tenant_id, *ids])
                writes.mark_erased(conn, seq)
            else:
                conn.execute(
                    "UPDATE memories SET state = 'forgotten', updated_at = ?, seq = ? "
                    f"WHERE tenant_id = ? AND id IN ({marks})",
                    [to_db_time(utcnow()), seq, tenant_id, *ids],
                )
                tx = writes.Tx(conn, seq)
                for item in items:
                    tx.log(tenant_id, item, Event.DELETE, old=item, reason=reason)
        if hard:
            self._after_hard_delete()
        return len(items)

    def supersede(self, tenant_id: str, ids: Sequence[str], by_id: str, *, reason: str) -> int:
        return self._run(lambda d: semantics.supersede(d, tenant_id, ids, by_id, reason))

    # --- whole-store copies (engramdb migrate) ------------------------------------------------

    @property
    def _tables(self) -> TableReader:
        return TableReader(self._read, "?", copies.portable_row)

    def count_rows(self, table: str) -> int:
        return self._tables.count_rows(table)

    def iter_rows(self, table: str, *, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        return self._tables.iter_rows(table, batch=batch)

    def snapshot(self) -> AbstractContextManager[TableReader]:
        """Every table as of one moment, while other connections and processes go on writing."""
        self._check_open()
        return self._held_snapshot() if self.location == ":memory:" else copies.snapshot_of(self.location)

    @contextmanager
    def _held_snapshot(self) -> Iterator[TableReader]:
        """An in-memory store has one connection: holding its lock keeps every other writer out."""
        with self._lock:
            yield self._tables

    def write_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        with self._write() as (conn, seq):
            copies.write_rows(conn, seq, table, rows)

    # --- API keys ------------------------------------------------------------------------

    def save_key(self, key: ApiKey, key_hash: str) -> None:
        self._run(lambda d: semantics.save_key(d, key, key_hash))

    def revoke_key(self, key_id: str) -> ApiKey:
        self._run(lambda d: semantics.revoke_key(d, key_id))
        return self._key(key_id)

    # --- jobs ---------------------------------------------------------------------------

    def reopen_job(self, tenant_id: str, job_id: str) -> Job:
        self._run(lambda d: semantics.reopen_job(d, tenant_id, job_id))
        return self.get_job(tenant_id, job_id)

    def fail_job(self, tenant_id: str, job_id: str, error: str, *, max_attempts: int) -> Job:
        self._run(lambda d: semantics.fail_job(d, tenant_id, job_id, error, max_attempts))
        return self.get_job(tenant_id, job_id)

    def reset(self, tenant_id: str) -> None:
        with self._write() as (conn, seq):
            writes.remove(conn, seq, "tenant_id = ?", [tenant_id])
            conn.execute("DELETE FROM history WHERE tenant_id = ?", (tenant_id,))
            writes.mark_erased(conn, seq)
        self._after_hard_delete()

    def touch(self, tenant_id: str, ids: Sequence[str]) -> None:
        """Buffer access counts (``semantics.TouchBuffer``); the flush holds the connection's lock."""
        with self._lock:
            if self._touches.add(ids, to_db_time(utcnow()) or ""):
                with contextlib.suppress(StoreError):  # a full disk costs the counts, never the read
                    self._flush_touches()

    def _flush_touches(self) -> None:
        with self._lock:
            pending = self._touches.take()
            if not pending:
                return
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                self._conn.executemany(semantics.touch_sql("?"), pending)
                self._conn.execute("COMMIT")
            except BaseException as exc:  # never leave the shared connection inside a transaction
                rollback(self._conn)
                if isinstance(exc, sqlite3.DatabaseError):
                    raise store_error(exc) from exc
                raise

    # --- reads ----------------------------------------------------------------------------

    def get(self, tenant_id: str, memory_id: str) -> MemoryItem:
        with self._lock:
            self._check_open()
            return writes.get(self._conn, tenant_id, memory_id)

    def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]:
        """In the order asked; read ``writes.CHUNK`` ids a statement, within SQLite's parameter limit."""
        unique = list(dict.fromkeys(ids))
        by_id: dict[str, MemoryItem] = {}
        for start in range(0, len(unique), writes.CHUNK):
            chunk = unique[start : start + writes.CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = self._read(  # "+tenant_id" keeps the planner on the unique id index instead of scanning a tenant
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE +tenant_id = ? AND id IN ({marks})", [tenant_id, *chunk]
            )
            by_id.update((row["id"], item_from_row(row)) for row in rows)
        return [by_id[i] for i in ids if i in by_id]

    # --- search ---------------------------------------------------------------------------

    def dense_search(self, query: Query, vector: np.ndarray, k: int) -> list[StoreHit]:
        """Holds only the index lock while scoring, so a lexical search can use the connection."""
        with self._vectors.lock:
            index = self._vectors.synced()
            scope = query.scope
            now = (query.now or utcnow()).timestamp()
            derived_only = query.where == NOT_EPISODES  # the index knows this one: no row is read
            slots = index.select(
                query.tenant_id, scope.user_id, scope.agent_id, scope.session_id,
                include_inactive=query.include_inactive, now=now, episodes=not derived_only,
            )  # fmt: skip
            if query.where is not None and not derived_only:
                where, params = _query_sql(query)
                allowed = [r[0] for r in self._read(f"SELECT m.rowid FROM memories m WHERE {where}", params)]
                slots = index.restrict(slots, allowed)
            return [StoreHit(i, s) for i, s in index.search(vector.astype(np.float32), slots, k)]

    def lexical_search(self, query: Query, terms: Sequence[str], k: int) -> list[StoreHit]:
        """BM25 over the owner scopes the query reaches, from their numbers alone (``lexicon``)."""
        ids = lexicon.query_terms(terms, writes.LANGUAGE)
        if not ids:
            return []
        reach, reach_params = lexicon.reach(query.scope, "?")
        where, params = _query_sql(query)
        sql = lexicon.search_sql("?", "m.rowid", len(ids), reach, where, k)
        rows = self._read(sql, lexicon.search_params(query.tenant_id, reach_params, ids, params, k), lexical=True)
        return [StoreHit(r["id"], float(r["s"])) for r in rows]

    def speakers(self, tenant_id: str, scope: Scope) -> frozenset[str]:
        """Kept at the file's change sequence (``sqlite.speakers``): one row read when nothing changed."""
        with self._lock, driver_errors():
            self._check_open()
            return self._retry(lambda: read_speakers(self._conn, self._speakers, tenant_id, scope))  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._vectors.saves, self._vectors.lock, self._lock:  # the mirror's lock order
            if self._closed:
                return
            try:
                with contextlib.suppress(StoreError):  # access counts are a retention hint (see touch)
                    self._flush_touches()
                self._vectors.close()
            finally:
                if self._checkpoints is not None:
                    self._checkpoints.close()
                self._closed = True
                with self._lexical_lock:
                    self._lexical_conn.close()
                self._conn.close()


def _scope_sql(tenant_id: str, scope: Scope) -> tuple[str, list[Any]]:
    return scope_sql(tenant_id, scope, "?")


def _query_sql(query: Query) -> tuple[str, list[Any]]:
    return query_sql(query, "?", compile_filter, to_db_time)
