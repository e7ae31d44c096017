"""The server store: records, vectors (pgvector), full text (tsvector + GIN) and history in PostgreSQL.

Same semantics as the SQLite store, method for method, checked by the congruence suite. What
differs is where the work happens: vectors are searched inside the database (exactly within a
user's or session's rows, through an HNSW index across a whole tenant or agent), full text
uses PostgreSQL's parser and ``ts_rank`` instead of FTS5's BM25 (hybrid search fuses ranks,
not raw scores, so results agree), and concurrency comes from MVCC, so any number of server
processes can share one database. Every public operation is one transaction on a pooled
connection; committed means durable (PostgreSQL's own WAL and fsync).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

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
from ..base import Change, NewJob, NewRecord, Operation, Query, StoreHit
from ..portable import BY_NAME, MEMORY_COLUMNS
from ..sqlreads import SQLReads
from . import queries
from .aio import AsyncConnections
from .migrations import migrate
from .queries import query_sql as _query_sql
from .queries import scope_sql as _scope_sql
from .rows import (
    history_from_row,
    item_from_row,
    item_params,
    job_from_row,
    jsonb,
    key_from_row,
    utc,
)

TOUCH_FLUSH_S = 5.0
OWN_PARAMS = ("text_search", "pool_size")  # URL query parameters engramdb reads itself


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL without engramdb's own parameters, and those parameters."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in OWN_PARAMS}
    rest = urlencode([(k, v) for k, v in query if k not in OWN_PARAMS])
    return urlunsplit(parts._replace(query=rest)), own


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@"))
    return urlunsplit(parts)


def _configure(conn: psycopg.Connection) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.execute("SET TIME ZONE 'UTC'")


class PostgresStore(SQLReads):
    """A Store on one PostgreSQL database with pgvector. Thread-safe; a pool of connections.

    URL parameters besides libpq's: ``text_search`` (the text search configuration, default
    ``english``, fixed when the schema is created) and ``pool_size`` (default 10).
    """

    P = "%s"
    COLUMNS = MEMORY_COLUMNS
    item_row = staticmethod(item_from_row)
    history_row = staticmethod(history_from_row)
    key_row = staticmethod(key_from_row)
    job_row = staticmethod(job_from_row)

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        return _query_sql(query)

    def __init__(self, url: str, *, text_search: str = "english", pool_size: int = 10) -> None:
        conninfo, own = split_url(url)
        self.location = redact(url)
        self._closed = False
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("SELECT %s::regconfig", (own.get("text_search", text_search),))
                self.schema_version = migrate(conn, text_search=own.get("text_search", text_search))
            self._pool: ConnectionPool[Any] = ConnectionPool(
                conninfo, min_size=1, max_size=int(own.get("pool_size", pool_size)), open=True,
                kwargs={"autocommit": True, "row_factory": dict_row}, configure=_configure,
            )  # fmt: skip
        except psycopg.errors.UndefinedObject as exc:
            raise ConfigurationError(f"unknown text search configuration: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"cannot open PostgreSQL store at {self.location!r}: {exc}") from exc
        meta = self._meta()
        self._text_search = meta["text_search"]
        self._dimension = int(meta["dimension"]) if "dimension" in meta else 0
        self._async = AsyncConnections(conninfo, pool_size=int(own.get("pool_size", pool_size)))
        self._lock = threading.Lock()  # the touch buffer
        self._pending_touch: dict[str, tuple[int, datetime]] = {}
        self._last_flush = time.monotonic()

    # --- transactions -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection; database errors become StoreError."""
        self._check_open()
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        self._check_open()
        try:
            with self._pool.connection() as conn:
                rows: list[dict[str, Any]] = conn.execute(sql, params).fetchall()
                return rows
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL error: {exc}") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}

    # --- embedder binding ---------------------------------------------------------------

    def bind_embedder(self, name: str, dimension: int) -> None:
        meta = self._meta()
        if "embedder" in meta:
            if meta["embedder"] != name or int(meta["dimension"]) != dimension:
                raise ConfigurationError(
                    f"this store holds vectors from embedder {meta['embedder']!r} "
                    f"({meta['dimension']} dims), not {name!r} ({dimension} dims); open it with "
                    f"embedder={meta['embedder']!r} or re-embed it"
                )
            self._dimension = dimension
            return
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x656E6773,))
            conn.execute(
                "INSERT INTO meta VALUES ('embedder', %s), ('dimension', %s) ON CONFLICT DO NOTHING",
                (name, str(dimension)),
            )
            # an expression index: the column takes any dimension, the index the bound one
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS memories_hnsw ON memories "
                f"USING hnsw ((embedding::vector({int(dimension)})) vector_cosine_ops)"
            )
        self.bind_embedder(name, dimension)  # another process may have won the race

    # --- writes ---------------------------------------------------------------------------

    def add(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob | None = None
    ) -> list[tuple[str, Event]]:
        with self._write() as conn:
            outcomes = self._add_many(conn, tenant_id, records)
            if job is not None:
                payload = {**job.payload, "episode_ids": [memory_id for memory_id, _ in outcomes]}
                now = utcnow()
                conn.execute(
                    "INSERT INTO jobs (id, tenant_id, user_id, agent_id, session_id, state, payload, created_at, "
                    "updated_at) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s)",
                    (job.id, tenant_id, job.scope.user_id, job.scope.agent_id, job.scope.session_id,
                     jsonb(payload), now, now),
                )  # fmt: skip
        return outcomes

    def _add_many(
        self, conn: psycopg.Connection[Any], tenant_id: str, records: Sequence[NewRecord]
    ) -> list[tuple[str, Event]]:
        """``_add_one`` for a batch in a few round trips: the lookups as one query each, the
        inserts pipelined. Anything unusual (a clash with a concurrent writer, an id taken by
        another tenant) goes through ``_add_one``, so the outcome is the same."""

        def key(item: MemoryItem) -> tuple[str, str, str, str]:
            return (item.user_id or "", item.agent_id or "", item.session_id or "", item.hash)

        found = conn.execute(
            "SELECT id, coalesce(user_id, '') AS u, coalesce(agent_id, '') AS a, coalesce(session_id, '') AS s, hash "
            "FROM memories WHERE tenant_id = %s AND hash = ANY(%s) AND state = 'active'",
            (tenant_id, [r.item.hash for r in records]),
        ).fetchall()
        known = {(r["u"], r["a"], r["s"], r["hash"]): r["id"] for r in found}
        taken = {
            r["id"] for r in conn.execute("SELECT id FROM memories WHERE id = ANY(%s)", ([r.item.id for r in records],))
        }
        outcomes: list[tuple[str, Event] | None] = []
        fresh: list[tuple[int, NewRecord]] = []
        for record in records:
            k = key(record.item)
            if k in known:
                outcomes.append((known[k], Event.NOOP))
            elif record.item.id in taken:
                outcomes.append(self._add_one(conn, tenant_id, record))
            else:
                known[k] = record.item.id
                taken.add(record.item.id)
                outcomes.append(None)
                fresh.append((len(outcomes) - 1, record))
        inserted = self._insert_many(conn, tenant_id, [r for _, r in fresh])
        for (position, record), ok in zip(fresh, inserted, strict=True):
            outcomes[position] = (record.item.id, Event.ADD) if ok else self._add_one(conn, tenant_id, record)
        return [o for o in outcomes if o is not None]

    def _insert_many(self, conn: psycopg.Connection[Any], tenant_id: str, records: Sequence[NewRecord]) -> list[bool]:
        if not records:
            return []
        rows = [self._row(tenant_id, record) for record in records]
        columns = ", ".join(rows[0])
        values = ", ".join(f"%({c})s" for c in rows[0])
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO memories ({columns}, tsv) VALUES ({values}, to_tsvector(%(cfg)s::regconfig, "
                "%(index_text)s)) ON CONFLICT DO NOTHING RETURNING id",
                [{**row, "cfg": self._text_search} for row in rows],
                returning=True,
            )
            done: set[str] = set()
            while True:
                done.update(r["id"] for r in cur.fetchall())
                if not cur.nextset():
                    break
            ok = [record.item.id in done for record in records]
            cur.executemany(
                "INSERT INTO memory_sources VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(r.item.id, s) for r, good in zip(records, ok, strict=True) if good for s in r.item.sources],
            )
            now = utcnow()
            cur.executemany(
                "INSERT INTO history VALUES (%s, %s, %s, %s, %s, %s, 'ADD', NULL, %s, NULL, %s, NULL, %s)",
                [(new_id(), r.item.id, tenant_id, r.item.user_id, r.item.agent_id, r.item.session_id, r.item.memory,
                  jsonb(r.item.metadata), now) for r, good in zip(records, ok, strict=True) if good],
            )  # fmt: skip
        return ok

    def _row(self, tenant_id: str, record: NewRecord) -> dict[str, Any]:
        params = item_params(record.item)
        params.update(
            tenant_id=tenant_id,
            index_text=record.index_text,
            embedding=np.ascontiguousarray(record.embedding, dtype=np.float32),
        )
        return params

    def _add_one(self, conn: psycopg.Connection[Any], tenant_id: str, record: NewRecord) -> tuple[str, Event]:
        for _ in range(3):
            item = record.item
            existing = conn.execute(
                "SELECT id FROM memories WHERE tenant_id = %s AND coalesce(user_id, '') = %s AND "
                "coalesce(agent_id, '') = %s AND coalesce(session_id, '') = %s AND hash = %s AND state = 'active'",
                (tenant_id, item.user_id or "", item.agent_id or "", item.session_id or "", item.hash),
            ).fetchone()
            if existing is not None:
                return existing["id"], Event.NOOP
            owner = conn.execute("SELECT tenant_id FROM memories WHERE id = %s", (item.id,)).fetchone()
            if owner is not None and owner["tenant_id"] == tenant_id:
                return item.id, Event.NOOP
            if owner is not None:  # another tenant's id: never reveal it exists, store under a fresh id
                record.item = item = item.model_copy(update={"id": new_id()})
            if self._insert(conn, tenant_id, record):
                return item.id, Event.ADD
            # a concurrent transaction committed the same text or id first: look again
        raise StoreError("could not add a memory: concurrent writers kept conflicting")

    def apply(
        self, tenant_id: str, operations: Sequence[Operation], *, job_id: str | None = None, usage: Usage | None = None
    ) -> list[AddedItem] | None:
        with self._write() as conn:
            if job_id is not None:
                sql = "SELECT state FROM jobs WHERE id = %s AND tenant_id = %s FOR UPDATE"
                row = conn.execute(sql, (job_id, tenant_id)).fetchone()
                if row is None or row["state"] == "done":
                    return None
            results = [self._apply_one(conn, tenant_id, op) for op in operations]
            if job_id is not None:
                result = {
                    "results": [r.model_dump(mode="json") for r in results],
                    "usage": (usage or Usage()).model_dump(),
                }
                conn.execute(
                    "UPDATE jobs SET state = 'done', result = %s, error = NULL, updated_at = %s WHERE id = %s",
                    (jsonb(result), utcnow(), job_id),
                )
            return results

    def _apply_one(self, conn: psycopg.Connection[Any], tenant_id: str, op: Operation) -> AddedItem:
        item = op.record.item if op.record is not None else None
        text, kind, sources = (item.memory, item.kind, item.sources) if item else ("", "fact", [])
        if op.event in (Event.ADD, Event.UPDATE) and op.record is not None:
            memory_id, event = self._add_one(conn, tenant_id, op.record)
            if event is Event.ADD and op.event is Event.UPDATE and op.target_id is not None:
                when = op.record.item.valid_from or utcnow()
                self._end(conn, tenant_id, op.target_id, "superseded", when, op.reason, superseded_by=memory_id)
                event = Event.UPDATE
            previous = op.target_id if event is Event.UPDATE else None
            return AddedItem(id=memory_id, memory=text, event=event, kind=kind, previous_id=previous,
                             sources=sources, reason=op.reason)  # fmt: skip
        if op.event is Event.INVALIDATE and op.target_id is not None:
            old = self._get(conn, tenant_id, op.target_id)
            self._end(conn, tenant_id, op.target_id, "invalidated", utcnow(), op.reason)
            return AddedItem(id=old.id, memory=old.memory, event=Event.INVALIDATE, kind=old.kind,
                             sources=sources, reason=op.reason)  # fmt: skip
        return AddedItem(id=op.target_id or "", memory=text, event=Event.NOOP, kind=kind, sources=sources,
                         reason=op.reason)  # fmt: skip

    def _end(
        self,
        conn: psycopg.Connection[Any],
        tenant_id: str,
        memory_id: str,
        state: str,
        valid_to: datetime,
        reason: str | None,
        *,
        superseded_by: str | None = None,
    ) -> None:
        """Close a memory's validity: it leaves recall and stays in the store and its history."""
        old = self._get(conn, tenant_id, memory_id, lock=True)
        if old.state.value != "active":
            return
        now = utcnow()
        conn.execute(
            "UPDATE memories SET state = %s, valid_to = %s, invalidated_at = %s, superseded_by = %s, "
            "updated_at = %s WHERE id = %s",
            (state, valid_to, now, superseded_by, now, memory_id),
        )
        new = self._get(conn, tenant_id, superseded_by) if superseded_by else None
        event = Event.UPDATE if superseded_by else Event.INVALIDATE
        self._log(conn, tenant_id, old, event, old=old, new=new, reason=reason or state)

    def _insert(self, conn: psycopg.Connection[Any], tenant_id: str, record: NewRecord) -> bool:
        """Insert one record; False when a concurrent writer took its id or text first."""
        params = self._row(tenant_id, record)
        columns = ", ".join(params)
        values = ", ".join(f"%({c})s" for c in params)
        inserted = conn.execute(
            f"INSERT INTO memories ({columns}, tsv) VALUES ({values}, to_tsvector(%(cfg)s::regconfig, %(index_text)s))"
            " ON CONFLICT DO NOTHING RETURNING id",
            {**params, "cfg": self._text_search},
        ).fetchone()
        if inserted is None:
            return False
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO memory_sources VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(record.item.id, s) for s in record.item.sources],
            )
        self._log(conn, tenant_id, record.item, Event.ADD, new=record.item)
        return True

    def _log(
        self,
        conn: psycopg.Connection[Any],
        tenant_id: str,
        item: MemoryItem,
        event: Event,
        *,
        old: MemoryItem | None = None,
        new: MemoryItem | None = None,
        reason: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO history VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                new_id(), item.id, tenant_id, item.user_id, item.agent_id, item.session_id, event.value,
                old.memory if old else None, new.memory if new else None,
                jsonb(old.metadata) if old else None, jsonb(new.metadata) if new else None,
                reason, utcnow(),
            ),
        )  # fmt: skip

    def update(self, tenant_id: str, memory_id: str, change: Change) -> MemoryItem:
        with self._write() as conn:
            old = self._get(conn, tenant_id, memory_id, lock=True)
            values: dict[str, Any] = {"updated_at": utcnow()}
            if change.text is not None and change.embedding is not None and change.index_text is not None:
                values.update(
                    text=change.text,
                    hash=old.hash if change.text == old.memory else content_hash(change.text),
                    index_text=change.index_text,
                    embedding=np.ascontiguousarray(change.embedding, dtype=np.float32),
                )
            if change.metadata is not None:
                values["metadata"] = jsonb(change.metadata)
            values.update(change.updates)
            assignments = ", ".join(f"{key} = %({key})s" for key in values)
            if "index_text" in values:
                assignments += ", tsv = to_tsvector(%(cfg)s::regconfig, %(index_text)s)"
            try:
                with conn.transaction():  # a savepoint: a clash leaves the outer transaction usable
                    conn.execute(
                        f"UPDATE memories SET {assignments} WHERE id = %(id)s",
                        {**values, "id": memory_id, "cfg": self._text_search},
                    )
            except psycopg.errors.UniqueViolation as exc:
                raise ValidationError("another memory in this scope already has exactly this text") from exc
            new = self._get(conn, tenant_id, memory_id)
            self._log(conn, tenant_id, new, Event.UPDATE, old=old, new=new)
            return new

    def delete(self, tenant_id: str, memory_id: str) -> None:
        with self._write() as conn:
            item = self._get(conn, tenant_id, memory_id, lock=True)
            conn.execute("DELETE FROM memories WHERE id = %s", (memory_id,))
            self._log(conn, tenant_id, item, Event.DELETE, old=item)
            self._retract_derived(conn, tenant_id, [memory_id])

    def _retract_derived(self, conn: psycopg.Connection[Any], tenant_id: str, gone: Sequence[str]) -> None:
        """Invalidate memories derived only from deleted sources: retraction propagates."""
        if not gone:
            return
        derived = conn.execute(
            "SELECT DISTINCT s.memory_id FROM memory_sources s JOIN memories m ON m.id = s.memory_id "
            "WHERE s.source_id = ANY(%s) AND m.tenant_id = %s ORDER BY s.memory_id",
            (list(gone), tenant_id),
        ).fetchall()
        for row in derived:
            alive = conn.execute(
                "SELECT 1 FROM memory_sources s JOIN memories m ON m.id = s.source_id WHERE s.memory_id = %s LIMIT 1",
                (row["memory_id"],),
            ).fetchone()
            if alive is None:
                self._end(conn, tenant_id, row["memory_id"], "invalidated", utcnow(), "its source was deleted")

    def delete_scope(self, tenant_id: str, scope: Scope, *, hard: bool = False) -> int:
        where, params = _scope_sql(tenant_id, scope)
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY id FOR UPDATE", params
            ).fetchall()
            ids = [r["id"] for r in rows]
            if hard:
                self._erase_traces(conn, tenant_id, scope, ids)
            else:
                for row in rows:
                    item = item_from_row(row)
                    self._log(conn, tenant_id, item, Event.DELETE, old=item, reason="delete_all")
            conn.execute(f"DELETE FROM memories m WHERE {where}", params)
            if not hard:
                self._retract_derived(conn, tenant_id, ids)
        return len(rows)

    def _erase_traces(self, conn: psycopg.Connection[Any], tenant_id: str, scope: Scope, ids: Sequence[str]) -> None:
        """History, sources and jobs of a scope: what a hard delete removes besides the rows."""
        where, params = _scope_sql(tenant_id, scope)
        conn.execute(f"DELETE FROM history m WHERE {where}", params)
        conn.execute(f"DELETE FROM jobs m WHERE {where}", params)
        conn.execute("DELETE FROM history WHERE tenant_id = %s AND memory_id = ANY(%s)", (tenant_id, list(ids)))
        conn.execute(
            "DELETE FROM memory_sources WHERE memory_id = ANY(%s) OR source_id = ANY(%s)", (list(ids), list(ids))
        )

    def forget(self, tenant_id: str, ids: Sequence[str], *, reason: str, hard: bool) -> int:
        if not ids:
            return 0
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {MEMORY_COLUMNS} FROM memories WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
                (tenant_id, list(ids)),
            ).fetchall()
            items = [item_from_row(r) for r in rows]
            found = [item.id for item in items]
            if hard:
                conn.execute("DELETE FROM history WHERE tenant_id = %s AND memory_id = ANY(%s)", (tenant_id, found))
                conn.execute("DELETE FROM memory_sources WHERE memory_id = ANY(%s)", (found,))
                conn.execute("DELETE FROM memories WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, found))
            else:
                conn.execute(
                    "UPDATE memories SET state = 'forgotten', updated_at = %s WHERE tenant_id = %s AND id = ANY(%s)",
                    (utcnow(), tenant_id, found),
                )
                for item in items:
                    self._log(conn, tenant_id, item, Event.DELETE, old=item, reason=reason)
        return len(items)

    def supersede(self, tenant_id: str, ids: Sequence[str], by_id: str, *, reason: str) -> int:
        with self._write() as conn:
            self._get(conn, tenant_id, by_id)
            for memory_id in ids:
                conn.execute(
                    "INSERT INTO memory_sources SELECT %s, source_id FROM memory_sources WHERE memory_id = %s "
                    "ON CONFLICT DO NOTHING",
                    (by_id, memory_id),
                )
                self._end(conn, tenant_id, memory_id, "superseded", utcnow(), reason, superseded_by=by_id)
        return len(ids)

    def reset(self, tenant_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM memories WHERE tenant_id = %s", (tenant_id,))
            conn.execute("DELETE FROM history WHERE tenant_id = %s", (tenant_id,))

    def touch(self, tenant_id: str, ids: Sequence[str]) -> None:
        """Buffer access counts and flush them at most every few seconds (a retention hint, as in SQLite)."""
        now = utcnow()
        with self._lock:
            for memory_id in ids:
                count, _ = self._pending_touch.get(memory_id, (0, now))
                self._pending_touch[memory_id] = (count + 1, now)
            due = time.monotonic() - self._last_flush >= TOUCH_FLUSH_S
        if due:
            self._flush_touches()

    def _flush_touches(self) -> None:
        with self._lock:
            pending, self._pending_touch = self._pending_touch, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE memories SET access_count = access_count + %s, last_accessed_at = %s WHERE id = %s",
                [(count, at, memory_id) for memory_id, (count, at) in sorted(pending.items())],
            )

    # --- whole-store copies (engramdb migrate) ------------------------------------------------

    def binding(self) -> tuple[str, int] | None:
        meta = self._meta()
        return (meta["embedder"], int(meta["dimension"])) if "embedder" in meta else None

    def count_rows(self, table: str) -> int:
        return int(self._read(f"SELECT count(*) AS n FROM {BY_NAME[table].name}")[0]["n"])

    def iter_rows(self, table: str, *, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        spec = BY_NAME[table]
        key = ", ".join(spec.key)
        last: tuple[Any, ...] | None = None
        while True:
            where = "" if last is None else f"WHERE ({key}) > ({', '.join('%s' for _ in spec.key)})"
            rows = self._read(
                f"SELECT {', '.join(spec.columns)} FROM {spec.name} {where} ORDER BY {key} LIMIT %s",
                [*(last or ()), batch],
            )
            if not rows:
                return
            for row in rows:
                for column in spec.datetimes:
                    row[column] = utc(row[column])
                if "embedding" in row:
                    row["embedding"] = np.asarray(row["embedding"].to_numpy(), dtype=np.float32)
            yield rows
            last = tuple(rows[-1][k] for k in spec.key)

    def write_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        spec = BY_NAME[table]
        columns = ", ".join(spec.columns)
        marks = ", ".join(f"%({c})s" for c in spec.columns)
        if spec.name == "memories":
            columns, marks = columns + ", tsv", marks + ", to_tsvector(%(cfg)s::regconfig, %(index_text)s)"
        params = [
            {**{c: jsonb(row[c]) if c in spec.json and row[c] is not None else row[c] for c in spec.columns},
             "cfg": self._text_search}
            for row in rows
        ]  # fmt: skip
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {spec.name} ({columns}) VALUES ({marks})", params)

    # --- API keys ------------------------------------------------------------------------

    def save_key(self, key: ApiKey, key_hash: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)",
                (key.id, key_hash, key.tenant_id, key.name,
                 jsonb(key.user_ids) if key.user_ids is not None else None, key.admin, key.created_at),
            )  # fmt: skip

    def revoke_key(self, key_id: str) -> ApiKey:
        with self._write() as conn:
            conn.execute("UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (utcnow(), key_id))
        return self._key(key_id)

    # --- jobs ---------------------------------------------------------------------------

    def fail_job(self, tenant_id: str, job_id: str, error: str, *, max_attempts: int) -> Job:
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET attempts = attempts + 1, error = %s, updated_at = %s, "
                "state = CASE WHEN attempts + 1 >= %s THEN 'failed' ELSE state END "
                "WHERE id = %s AND tenant_id = %s AND state = 'pending'",
                (error[:2000], utcnow(), max_attempts, job_id, tenant_id),
            )
        return self.get_job(tenant_id, job_id)

    # --- reads ----------------------------------------------------------------------------

    def _get(self, conn: psycopg.Connection[Any], tenant_id: str, memory_id: str, *, lock: bool = False) -> MemoryItem:
        row = conn.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = %s AND tenant_id = %s" + (" FOR UPDATE" if lock else ""),
            (memory_id, tenant_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return item_from_row(row)

    def get(self, tenant_id: str, memory_id: str) -> MemoryItem:
        rows = self._read(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = %s AND tenant_id = %s", (memory_id, tenant_id)
        )
        if not rows:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return item_from_row(rows[0])

    def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        plan = queries.get_many(tenant_id, ids)
        rows = self._read(plan.sql, plan.params)
        by_id = {row["id"]: item_from_row(row) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    # --- search ---------------------------------------------------------------------------

    def dense_search(self, query: Query, vector: np.ndarray, k: int) -> list[StoreHit]:
        return self._hits(queries.dense(query, vector, k, self._dimension))

    def lexical_search(self, query: Query, terms: Sequence[str], k: int) -> list[StoreHit]:
        plan = queries.lexical(query, terms, k, self._text_search)
        return self._hits(plan) if plan is not None else []

    def _hits(self, plan: queries.Plan) -> list[StoreHit]:
        if not plan.settings:
            return [StoreHit(r["id"], float(r["s"])) for r in self._read(plan.sql, plan.params)]
        with self._write() as conn:  # SET LOCAL needs a transaction
            for setting in plan.settings:
                conn.execute(setting)
            return [StoreHit(r["id"], float(r["s"])) for r in conn.execute(plan.sql, plan.params).fetchall()]

    # --- native async reads (AsyncReads) ---------------------------------------------------

    async def adense_search(self, query: Query, vector: np.ndarray, k: int) -> list[StoreHit]:
        return await self._async.hits(queries.dense(query, vector, k, self._dimension))

    async def alexical_search(self, query: Query, terms: Sequence[str], k: int) -> list[StoreHit]:
        plan = queries.lexical(query, terms, k, self._text_search)
        return await self._async.hits(plan) if plan is not None else []

    async def aget_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        rows = await self._async.rows(queries.get_many(tenant_id, ids))
        by_id = {row["id"]: item_from_row(row) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def aget(self, tenant_id: str, memory_id: str) -> MemoryItem:
        rows = await self._async.rows(queries.get_many(tenant_id, [memory_id]))
        if not rows:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return item_from_row(rows[0])

    async def aclose(self) -> None:
        await self._async.close()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._flush_touches()
        finally:
            self._closed = True
            self._pool.close()
