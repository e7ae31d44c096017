"""The embedded store: records, vectors, an FTS5 index and history in one SQLite file.

Durability and sharing: WAL journal, ``synchronous=FULL`` by default (an acknowledged write
survives a crash of the process or the machine), a 30 s busy timeout plus retries so that
several processes can write one file and "database is locked" never reaches the caller.
Each public operation is one transaction. No SQLite extension is loaded: vectors are
float32 BLOBs, searched by the exact in-memory index in ``stores.vectors``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigurationError, NotFoundError, StoreError, ValidationError
from ...models import (
    AddedItem,
    ApiKey,
    Event,
    Job,
    MemoryItem,
    Scope,
    Usage,
    content_hash,
    new_id,
    utcnow,
)
from ..base import Change, NewJob, NewRecord, Operation, Query, StoreHit, history_row
from ..portable import BY_NAME, MEMORY_COLUMNS, Table, page_sql
from ..sqlreads import Row, SQLReads, query_sql, scope_sql
from ..vectors import IndexRow, VectorIndex
from .migrations import migrate
from .rows import from_db_time, history_from_row, item_from_row, item_params, to_db_time
from .sqlfilter import compile_filter

BUSY_TIMEOUT_S = 30.0
TOUCH_FLUSH_S = 5.0
MMAP_BYTES = 1 << 30
SNAPSHOT_MIN_ROWS = 5_000  # below this the vector index rebuilds from the file in milliseconds


class SQLiteStore(SQLReads):
    """A Store on one SQLite file (or ``:memory:``). Thread-safe; one connection per store."""

    P = "?"
    COLUMNS = MEMORY_COLUMNS
    item_row = staticmethod(item_from_row)
    history_row = staticmethod(history_from_row)

    @staticmethod
    def key_row(row: Row) -> ApiKey:
        return _key_from_row(row)

    @staticmethod
    def job_row(row: Row) -> Job:
        return _job_from_row(row)

    @staticmethod
    def json_value(value: Any) -> Any:
        return json.loads(value)

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        return _query_sql(query)

    def _meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        self.location = path
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # the connection
        self._lexical_lock = self._lock if path == ":memory:" else threading.RLock()
        self._index_lock = threading.RLock()  # the vector index; taken before _lock, never after
        try:
            self._conn = _connect(path)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self.schema_version = self._retry(lambda: migrate(self._conn))
            # full-text queries get their own read connection (WAL readers do not block each
            # other), so a search runs them beside the vector scan; ":memory:" cannot be shared
            self._lexical_conn = self._conn if path == ":memory:" else _connect(path, read_only=True)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open SQLite store at {path!r}: {exc}") from exc
        self._index: VectorIndex | None = None
        self._unsaved_changes = 0  # index rows changed since the snapshot on disk
        self._pending_touch: dict[str, tuple[int, str]] = {}
        self._last_flush = time.monotonic()
        self._closed = False

    # --- transactions -------------------------------------------------------------------

    def _retry(self, fn: Any) -> Any:
        deadline = time.monotonic() + BUSY_TIMEOUT_S * 2
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise StoreError(f"SQLite error: {exc}") from exc
                time.sleep(0.01)

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
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise StoreError(f"SQLite error: {exc}") from exc
                raise

    def _read(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *, lexical: bool = False
    ) -> list[sqlite3.Row]:
        conn, lock = (self._lexical_conn, self._lexical_lock) if lexical else (self._conn, self._lock)
        with lock:
            self._check_open()
            try:
                return self._retry(lambda: conn.execute(sql, params).fetchall())  # type: ignore[no-any-return]
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"SQLite error: {exc}") from exc

    def _check_open(self) -> None:
        if getattr(self, "_closed", False):
            raise StoreError("the store is closed")

    # --- embedder binding ---------------------------------------------------------------

    def bind_embedder(self, name: str, dimension: int) -> None:
        rows = {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}
        if "embedder" in rows:
            if rows["embedder"] != name or int(rows["dimension"]) != dimension:
                raise ConfigurationError(
                    f"this store holds vectors from embedder {rows['embedder']!r} "
                    f"({rows['dimension']} dims), not {name!r} ({dimension} dims); open it with "
                    f"embedder={rows['embedder']!r} or re-embed it"
                )
            return
        with self._write() as (conn, _):
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('embedder', ?), ('dimension', ?)", (name, str(dimension)))
        self.bind_embedder(name, dimension)  # another process may have won the race

    # --- writes ---------------------------------------------------------------------------

    def add(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob | None = None
    ) -> list[tuple[str, Event]]:
        with self._write() as (conn, seq):
            outcomes = [self._add_one(conn, tenant_id, seq, record) for record in records]
            if job is not None:
                payload = {**job.payload, "episode_ids": [memory_id for memory_id, _ in outcomes]}
                now = to_db_time(utcnow())
                conn.execute(
                    "INSERT INTO jobs (id, tenant_id, user_id, agent_id, session_id, state, payload, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                    (job.id, tenant_id, job.scope.user_id, job.scope.agent_id, job.scope.session_id,
                     json.dumps(payload), now, now),
                )  # fmt: skip
        return outcomes

    def _add_one(self, conn: sqlite3.Connection, tenant_id: str, seq: int, record: NewRecord) -> tuple[str, Event]:
        item = record.item
        existing = conn.execute(
            "SELECT id FROM memories WHERE tenant_id = ? AND ifnull(user_id, '') = ? AND "
            "ifnull(agent_id, '') = ? AND ifnull(session_id, '') = ? AND hash = ? AND state = 'active'",
            (tenant_id, item.user_id or "", item.agent_id or "", item.session_id or "", item.hash),
        ).fetchone()
        if existing is not None:
            return existing["id"], Event.NOOP
        owner = conn.execute("SELECT tenant_id FROM memories WHERE id = ?", (item.id,)).fetchone()
        if owner is not None and owner[0] == tenant_id:
            return item.id, Event.NOOP
        if owner is not None:  # another tenant's id: never reveal it exists, store under a fresh id
            record.item = item = item.model_copy(update={"id": new_id()})
        self._insert(conn, tenant_id, seq, record)
        return item.id, Event.ADD

    def apply(
        self, tenant_id: str, operations: Sequence[Operation], *, job_id: str | None = None, usage: Usage | None = None
    ) -> list[AddedItem] | None:
        with self._write() as (conn, seq):
            if job_id is not None:
                sql = "SELECT state FROM jobs WHERE id = ? AND tenant_id = ?"
                row = conn.execute(sql, (job_id, tenant_id)).fetchone()
                if row is None or row["state"] == "done":
                    return None
            results = [self._apply_one(conn, tenant_id, seq, op) for op in operations]
            if job_id is not None:
                result = {
                    "results": [r.model_dump(mode="json") for r in results],
                    "usage": (usage or Usage()).model_dump(),
                }
                conn.execute(
                    "UPDATE jobs SET state = 'done', result = ?, error = NULL, updated_at = ? WHERE id = ?",
                    (json.dumps(result), to_db_time(utcnow()), job_id),
                )
            return results

    def _apply_one(self, conn: sqlite3.Connection, tenant_id: str, seq: int, op: Operation) -> AddedItem:
        item = op.record.item if op.record is not None else None
        text, kind, sources = (item.memory, item.kind, item.sources) if item else ("", "fact", [])
        if op.event in (Event.ADD, Event.UPDATE) and op.record is not None:
            memory_id, event = self._add_one(conn, tenant_id, seq, op.record)
            if event is Event.ADD and op.event is Event.UPDATE and op.target_id is not None:
                when = op.record.item.valid_from or utcnow()
                self._end(conn, tenant_id, seq, op.target_id, "superseded", when, op.reason, superseded_by=memory_id)
                event = Event.UPDATE
            previous = op.target_id if event is Event.UPDATE else None
            return AddedItem(id=memory_id, memory=text, event=event, kind=kind, previous_id=previous,
                             sources=sources, reason=op.reason)  # fmt: skip
        if op.event is Event.INVALIDATE and op.target_id is not None:
            old = self._get(conn, tenant_id, op.target_id)
            self._end(conn, tenant_id, seq, op.target_id, "invalidated", utcnow(), op.reason)
            return AddedItem(id=old.id, memory=old.memory, event=Event.INVALIDATE, kind=old.kind,
                             sources=sources, reason=op.reason)  # fmt: skip
        return AddedItem(id=op.target_id or "", memory=text, event=Event.NOOP, kind=kind, sources=sources,
                         reason=op.reason)  # fmt: skip

    def _end(
        self,
        conn: sqlite3.Connection,
        tenant_id: str,
        seq: int,
        memory_id: str,
        state: str,
        valid_to: datetime,
        reason: str | None,
        *,
        superseded_by: str | None = None,
    ) -> None:
        """Close a memory's validity: it leaves recall and stays in the store and its history."""
        old = self._get(conn, tenant_id, memory_id)
        if old.state.value != "active":
            return
        conn.execute(
            "UPDATE memories SET state = ?, valid_to = ?, invalidated_at = ?, superseded_by = ?, updated_at = ?, "
            "seq = ? WHERE id = ?",
            (state, to_db_time(valid_to), to_db_time(utcnow()), superseded_by, to_db_time(utcnow()), seq, memory_id),
        )
        new = self._get(conn, tenant_id, superseded_by) if superseded_by else None
        event = Event.UPDATE if superseded_by else Event.INVALIDATE
        self._log(conn, tenant_id, old, event, old=old, new=new, reason=reason or state)

    def _insert(self, conn: sqlite3.Connection, tenant_id: str, seq: int, record: NewRecord) -> None:
        params = item_params(record.item)
        params.update(
            tenant_id=tenant_id,
            index_text=record.index_text,
            embedding=np.ascontiguousarray(record.embedding, dtype=np.float32).tobytes(),
            seq=seq,
        )
        columns = ", ".join(params)
        rowid = conn.execute(
            f"INSERT INTO memories ({columns}) VALUES ({', '.join(':' + c for c in params)})", params
        ).lastrowid
        conn.execute(
            "INSERT INTO memories_fts (rowid, text, speaker) VALUES (?, ?, ?)",
            (rowid, record.index_text, record.item.provenance.name or ""),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO memory_sources VALUES (?, ?)", [(record.item.id, s) for s in record.item.sources]
        )
        self._log(conn, tenant_id, record.item, Event.ADD, new=record.item)

    def _log(
        self,
        conn: sqlite3.Connection,
        tenant_id: str,
        item: MemoryItem,
        event: Event,
        *,
        old: MemoryItem | None = None,
        new: MemoryItem | None = None,
        reason: str | None = None,
    ) -> None:
        row = history_row(tenant_id, item, event, old=old, new=new, reason=reason, encode=json.dumps,
                          when=to_db_time(utcnow()))  # fmt: skip
        conn.execute("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def update(self, tenant_id: str, memory_id: str, change: Change) -> MemoryItem:
        with self._write() as (conn, seq):
            old = self._get(conn, tenant_id, memory_id)
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
            assignments = ", ".join(f"{key} = :{key}" for key in values)
            try:
                conn.execute(f"UPDATE memories SET {assignments} WHERE id = :id", {**values, "id": memory_id})
            except sqlite3.IntegrityError as exc:
                raise ValidationError("another memory in this scope already has exactly this text") from exc
            if "text" in values:
                rowid = conn.execute("SELECT rowid FROM memories WHERE id = ?", (memory_id,)).fetchone()[0]
                conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (rowid,))
                conn.execute(
                    "INSERT INTO memories_fts (rowid, text, speaker) VALUES (?, ?, ?)",
                    (rowid, values["index_text"], old.provenance.name or ""),
                )
            new = self._get(conn, tenant_id, memory_id)
            self._log(conn, tenant_id, new, Event.UPDATE, old=old, new=new)
            return new

    def delete(self, tenant_id: str, memory_id: str) -> None:
        with self._write() as (conn, seq):
            item = self._get(conn, tenant_id, memory_id)
            self._remove(conn, seq, "id = ?", [memory_id])
            self._log(conn, tenant_id, item, Event.DELETE, old=item)
            self._retract_derived(conn, tenant_id, seq, [memory_id])

    def _retract_derived(self, conn: sqlite3.Connection, tenant_id: str, seq: int, gone: Sequence[str]) -> None:
        """Invalidate memories derived only from deleted sources: retraction propagates."""
        for source_id in gone:
            derived = [
                r[0] for r in conn.execute("SELECT memory_id FROM memory_sources WHERE source_id = ?", (source_id,))
            ]
            for memory_id in derived:
                alive = conn.execute(
                    "SELECT 1 FROM memory_sources s JOIN memories m ON m.id = s.source_id "
                    "WHERE s.memory_id = ? LIMIT 1",
                    (memory_id,),
                ).fetchone()
                exists = conn.execute("SELECT 1 FROM memories WHERE id = ? AND tenant_id = ?", (memory_id, tenant_id))
                if alive is None and exists.fetchone():
                    self._end(conn, tenant_id, seq, memory_id, "invalidated", utcnow(), "its source was deleted")

    def delete_scope(self, tenant_id: str, scope: Scope, *, hard: bool = False) -> int:
        where, params = _scope_sql(tenant_id, scope)
        with self._write() as (conn, seq):
            rows = conn.execute(f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where}", params).fetchall()
            ids = [r["id"] for r in rows]
            if hard:
                self._erase_traces(conn, tenant_id, scope, ids)
            else:
                for row in rows:
                    item = item_from_row(row)
                    self._log(conn, tenant_id, item, Event.DELETE, old=item, reason="delete_all")
            self._remove(conn, seq, where.replace("m.", ""), params)
            if not hard:
                self._retract_derived(conn, tenant_id, seq, ids)
        if hard:
            self._after_hard_delete()
        return len(rows)

    def _erase_traces(self, conn: sqlite3.Connection, tenant_id: str, scope: Scope, ids: Sequence[str]) -> None:
        """History, sources and jobs of a scope: what a hard delete removes besides the rows."""
        where, params = _scope_sql(tenant_id, scope)
        plain = where.replace("m.", "")
        conn.execute(f"DELETE FROM history WHERE {plain}", params)
        conn.execute(f"DELETE FROM jobs WHERE {plain}", params)
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            conn.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", chunk)
            conn.execute(
                f"DELETE FROM memory_sources WHERE memory_id IN ({marks}) OR source_id IN ({marks})", chunk * 2
            )

    def _after_hard_delete(self) -> None:
        """Leave no copy behind: the WAL is checkpointed (pages are zeroed by secure_delete) and
        the vector snapshot, which holds embeddings and ids, is rewritten or removed."""
        with self._index_lock, self._lock:
            self._retry(lambda: self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
            path = self._snapshot_path()
            if path is not None and path.exists():
                path.unlink(missing_ok=True)
                if self._index is not None:
                    self._synced_index()
                    self._save_snapshot()

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
                self._remove(conn, seq, f"tenant_id = ? AND id IN ({marks})", [tenant_id, *ids])
            else:
                conn.execute(
                    "UPDATE memories SET state = 'forgotten', updated_at = ?, seq = ? "
                    f"WHERE tenant_id = ? AND id IN ({marks})",
                    [to_db_time(utcnow()), seq, tenant_id, *ids],
                )
                for item in items:
                    self._log(conn, tenant_id, item, Event.DELETE, old=item, reason=reason)
        if hard:
            self._after_hard_delete()
        return len(items)

    def supersede(self, tenant_id: str, ids: Sequence[str], by_id: str, *, reason: str) -> int:
        with self._write() as (conn, seq):
            self._get(conn, tenant_id, by_id)
            for memory_id in ids:
                conn.execute(
                    "INSERT OR IGNORE INTO memory_sources SELECT ?, source_id FROM memory_sources WHERE memory_id = ?",
                    (by_id, memory_id),
                )
                self._end(conn, tenant_id, seq, memory_id, "superseded", utcnow(), reason, superseded_by=by_id)
        return len(ids)

    # --- whole-store copies (engramdb migrate) ------------------------------------------------

    def binding(self) -> tuple[str, int] | None:
        meta = {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}
        return (meta["embedder"], int(meta["dimension"])) if "embedder" in meta else None

    def count_rows(self, table: str) -> int:
        return int(self._read(f"SELECT count(*) FROM {BY_NAME[table].name}")[0][0])

    def iter_rows(self, table: str, *, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        spec = BY_NAME[table]
        last: tuple[Any, ...] | None = None
        while True:
            rows = self._read(page_sql(spec, "?", after=last is not None), [*(last or ()), batch])
            if not rows:
                return
            yield [_portable(spec, row) for row in rows]
            last = tuple(rows[-1][k] for k in spec.key)

    def write_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        spec = BY_NAME[table]
        marks = ", ".join(f":{c}" for c in spec.columns)
        with self._write() as (conn, seq):
            for row in rows:
                params = _from_portable(spec, row)
                if spec.name != "memories":
                    conn.execute(f"INSERT INTO {spec.name} ({', '.join(spec.columns)}) VALUES ({marks})", params)
                    continue
                rowid = conn.execute(
                    f"INSERT INTO memories ({', '.join(spec.columns)}, seq) VALUES ({marks}, :seq)",
                    {**params, "seq": seq},
                ).lastrowid
                conn.execute(
                    "INSERT INTO memories_fts (rowid, text, speaker) VALUES (?, ?, ?)",
                    (rowid, params["index_text"], params["speaker"] or ""),
                )

    # --- API keys ------------------------------------------------------------------------

    def save_key(self, key: ApiKey, key_hash: str) -> None:
        with self._write() as (conn, _):
            conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (key.id, key_hash, key.tenant_id, key.name,
                 json.dumps(key.user_ids) if key.user_ids is not None else None,
                 int(key.admin), to_db_time(key.created_at)),
            )  # fmt: skip

    def revoke_key(self, key_id: str) -> ApiKey:
        with self._write() as (conn, _):
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (to_db_time(utcnow()), key_id)
            )
        return self._key(key_id)

    # --- jobs ---------------------------------------------------------------------------

    def fail_job(self, tenant_id: str, job_id: str, error: str, *, max_attempts: int) -> Job:
        with self._write() as (conn, _):
            conn.execute(
                "UPDATE jobs SET attempts = attempts + 1, error = ?, updated_at = ?, "
                "state = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE state END "
                "WHERE id = ? AND tenant_id = ? AND state = 'pending'",
                (error[:2000], to_db_time(utcnow()), max_attempts, job_id, tenant_id),
            )
        return self.get_job(tenant_id, job_id)

    def _remove(self, conn: sqlite3.Connection, seq: int, where: str, params: Sequence[Any]) -> None:
        rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM memories WHERE {where}", params)]
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            conn.execute(f"DELETE FROM memories_fts WHERE rowid IN ({marks})", chunk)
            conn.execute(f"DELETE FROM memories WHERE rowid IN ({marks})", chunk)
            conn.executemany("INSERT INTO tombstones VALUES (?, ?)", [(seq, r) for r in chunk])

    def reset(self, tenant_id: str) -> None:
        with self._write() as (conn, seq):
            self._remove(conn, seq, "tenant_id = ?", [tenant_id])
            conn.execute("DELETE FROM history WHERE tenant_id = ?", (tenant_id,))

    def touch(self, tenant_id: str, ids: Sequence[str]) -> None:
        """Buffer access counts and flush them at most every few seconds.

        Counting accesses on every search would turn each read into a durable write; access
        counts are a retention hint, so up to TOUCH_FLUSH_S seconds of them may be lost in a crash.
        """
        now = to_db_time(utcnow()) or ""
        with self._lock:
            for memory_id in ids:
                count, _ = self._pending_touch.get(memory_id, (0, now))
                self._pending_touch[memory_id] = (count + 1, now)
            if time.monotonic() - self._last_flush >= TOUCH_FLUSH_S:
                self._flush_touches()

    def _flush_touches(self) -> None:
        with self._lock:
            pending, self._pending_touch = self._pending_touch, {}
            self._last_flush = time.monotonic()
            if not pending:
                return
            self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                self._conn.executemany(
                    "UPDATE memories SET access_count = access_count + ?, last_accessed_at = ? WHERE id = ?",
                    [(count, at, memory_id) for memory_id, (count, at) in pending.items()],
                )
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._conn.execute("ROLLBACK")
                raise StoreError(f"SQLite error: {exc}") from exc

    # --- reads ----------------------------------------------------------------------------

    def _get(self, conn: sqlite3.Connection, tenant_id: str, memory_id: str) -> MemoryItem:
        row = conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ? AND +tenant_id = ?", (memory_id, tenant_id)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return item_from_row(row)

    def get(self, tenant_id: str, memory_id: str) -> MemoryItem:
        with self._lock:
            self._check_open()
            return self._get(self._conn, tenant_id, memory_id)

    def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        rows = self._read(
            # "+tenant_id" keeps the planner on the unique id index instead of scanning a tenant
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE +tenant_id = ? AND id IN ({', '.join('?' for _ in ids)})",
            [tenant_id, *ids],
        )
        by_id = {row["id"]: item_from_row(row) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    # --- search ---------------------------------------------------------------------------

    def dense_search(self, query: Query, vector: np.ndarray, k: int) -> list[StoreHit]:
        """Holds only the index lock while scoring, so a lexical search can use the connection."""
        with self._index_lock:
            index = self._synced_index()
            scope = query.scope
            now = (query.now or utcnow()).timestamp()
            mask = index.mask(
                query.tenant_id, scope.user_id, scope.agent_id, scope.session_id,
                include_inactive=query.include_inactive, now=now,
            )  # fmt: skip
            if query.where is not None:
                where, params = _query_sql(query)
                allowed = [r[0] for r in self._read(f"SELECT m.rowid FROM memories m WHERE {where}", params)]
                mask = index.restrict(mask, allowed)
            return [StoreHit(i, s) for i, s in index.search(vector.astype(np.float32), mask, k)]

    def lexical_search(self, query: Query, terms: Sequence[str], k: int) -> list[StoreHit]:
        if not terms:
            return []
        # a memory must match in its text; a name in the query matching the speaker adds to its score
        any_term = "(" + " OR ".join('"' + t.replace('"', '""') + '"' for t in terms) + ")"
        match = f"text : {any_term} AND {any_term}"
        where, params = _query_sql(query)
        rows = self._read(
            "SELECT m.id, bm25(memories_fts, 1.0, 0.5) AS s FROM memories_fts "
            "JOIN memories m ON m.rowid = memories_fts.rowid "
            f"WHERE memories_fts MATCH ? AND {where} ORDER BY s LIMIT ?",
            [match, *params, k],
            lexical=True,
        )
        return [StoreHit(r["id"], -float(r["s"])) for r in rows]

    def _synced_index(self) -> VectorIndex:
        """Bring the in-memory index up to the file's change sequence (cheap when current)."""
        seq = self._read("SELECT value FROM counters WHERE name = 'seq'")[0][0]
        index = self._index
        if index is not None and index.seq == seq:
            return index
        if index is None:
            index = self._index = self._load_snapshot(seq) or VectorIndex(self._dimension())
        gone = [r[0] for r in self._read("SELECT row FROM tombstones WHERE seq > ?", (index.seq,))]
        index.remove(gone)
        changed = 0
        with self._lock:  # stream the rows: a full rebuild would otherwise hold the whole file twice
            self._check_open()
            cursor = self._conn.execute(
                "SELECT rowid, id, tenant_id, user_id, agent_id, session_id, state, expires_at, embedding "
                "FROM memories WHERE seq > ? AND seq <= ?",
                (index.seq, seq),
            )
            while chunk := cursor.fetchmany(4096):
                index.upsert(_index_row(r) for r in chunk)
                changed += len(chunk)
        index.seq = seq
        self._unsaved_changes += changed + len(gone)
        if changed >= SNAPSHOT_MIN_ROWS and changed > len(index) // 2:
            self._save_snapshot()  # a (near) full rebuild: spare the next process from repeating it
        return index

    def _dimension(self) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = 'dimension'")
        return int(rows[0][0]) if rows else 0

    def _snapshot_path(self) -> Path | None:
        return None if self.location == ":memory:" else Path(self.location + "-vectors")

    def _snapshot_identity(self) -> dict[str, Any]:
        meta = {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}
        return {"store_uid": meta.get("store_uid"), "embedder": meta.get("embedder")}

    def _load_snapshot(self, seq: int) -> VectorIndex | None:
        path = self._snapshot_path()
        if path is None or not path.exists():
            return None
        return VectorIndex.load(path, identity=self._snapshot_identity(), max_seq=seq)

    def _save_snapshot(self) -> None:
        """Best effort: the snapshot is a cache, so a full disk or a read-only folder is no error."""
        path = self._snapshot_path()
        if path is None or self._index is None or len(self._index) < SNAPSHOT_MIN_ROWS:
            return
        try:
            self._index.save(path, identity=self._snapshot_identity())
            self._unsaved_changes = 0
        except OSError:
            pass

    def close(self) -> None:
        with self._index_lock, self._lock:
            if self._closed:
                return
            self._flush_touches()
            if self._index is not None and self._unsaved_changes > max(SNAPSHOT_MIN_ROWS, len(self._index) // 10):
                self._save_snapshot()
            self._closed = True
            with self._lexical_lock:
                self._lexical_conn.close()
            self._conn.close()


def _key_from_row(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"], tenant_id=row["tenant_id"], name=row["name"],
        user_ids=json.loads(row["user_ids"]) if row["user_ids"] is not None else None, admin=bool(row["admin"]),
        created_at=from_db_time(row["created_at"]), revoked_at=from_db_time(row["revoked_at"]),
    )  # fmt: skip


def _job_from_row(row: Row) -> Job:
    result = json.loads(row["result"]) if row["result"] else {}
    return Job(
        id=row["id"], state=row["state"], attempts=row["attempts"], error=row["error"],
        created_at=from_db_time(row["created_at"]), updated_at=from_db_time(row["updated_at"]),
        results=result.get("results", []), usage=result.get("usage", {}),
    )  # fmt: skip


def _portable(spec: Table, row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite3.Row)
    for column in spec.datetimes:
        out[column] = from_db_time(out[column])
    for column in spec.json:
        out[column] = json.loads(out[column]) if out[column] is not None else None
    if "embedding" in out:
        out["embedding"] = np.frombuffer(out["embedding"], dtype=np.float32)
    if "admin" in out:
        out["admin"] = bool(out["admin"])
    return out


def _from_portable(spec: Table, row: dict[str, Any]) -> dict[str, Any]:
    out = {column: row[column] for column in spec.columns}
    for column in spec.datetimes:
        out[column] = to_db_time(out[column])
    for column in spec.json:
        out[column] = json.dumps(out[column]) if out[column] is not None else None
    if "embedding" in out:
        out["embedding"] = np.ascontiguousarray(out["embedding"], dtype=np.float32).tobytes()
    if "admin" in out:
        out["admin"] = int(out["admin"])
    return out


def _connect(path: str, *, read_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # FTS joins touch many rows: map pages, skip syscalls
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA secure_delete=ON")  # deleted content is zeroed, not left in free pages
    if read_only:
        conn.execute("PRAGMA query_only=1")
    return conn


def _index_row(row: sqlite3.Row) -> IndexRow:
    """Positional access: a fresh process converts every row of the file through here."""
    rowid, memory_id, tenant_id, user_id, agent_id, session_id, state, expires_at, embedding = row
    expires = from_db_time(expires_at) if expires_at else None
    return IndexRow(
        rowid, memory_id, tenant_id, user_id, agent_id, session_id, state == "active",
        expires.timestamp() if expires else float("inf"), np.frombuffer(embedding, dtype=np.float32),
    )  # fmt: skip


def _scope_sql(tenant_id: str, scope: Scope) -> tuple[str, list[Any]]:
    return scope_sql(tenant_id, scope, "?")


def _query_sql(query: Query) -> tuple[str, list[Any]]:
    return query_sql(query, "?", compile_filter, to_db_time)
