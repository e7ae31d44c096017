"""The server store: records, vectors (pgvector), the lexical index and history in PostgreSQL.

Same semantics as the SQLite store, method for method, checked by the congruence suite. What
differs is where the work happens: vectors are searched inside the database (exactly within a
user's or session's rows, through an HNSW index across a whole tenant or agent); the lexical
index is SQLite's own two tables and statement (``stores.lexicon``), so BM25 scores agree;
and concurrency comes from MVCC, so any number of server
processes can share one database. Every public operation is one transaction on a pooled
connection; committed means durable (PostgreSQL's own WAL and fsync).

A hard delete is followed by a plain VACUUM of the tables it touched (``ERASE_VACUUM``): the
dead row versions, which still hold the text, are removed from the table pages and their
entries from the indexes at once rather than whenever autovacuum comes by. What VACUUM does
not do is in docs/architecture.md (the freed bytes are not overwritten).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from ...errors import NotFoundError, StoreError
from ...models import (
    AddedItem,
    ApiKey,
    Event,
    Job,
    MemoryItem,
    Scope,
    Usage,
    utcnow,
)
from .. import lexicon, semantics, sqlreads
from ..base import Change, Derived, NewJob, NewRecord, Operation, Query, StoreHit
from ..portable import BY_NAME, MEMORY_COLUMNS, TableReader
from ..semantics import run
from ..speakers import TTL_SECONDS, SpeakerCache, acached, cached, said_by, speakers_sql
from ..sqlreads import SQLReads
from . import queries, tx, writes
from .aio import AsyncConnections
from .errors import driver_errors
from .migrations import migrate
from .queries import query_sql as _query_sql
from .rows import (
    history_from_row,
    item_from_row,
    job_from_row,
    jsonb,
    key_from_row,
    portable_row,
)

R = TypeVar("R")
OWN_PARAMS = ("text_search", "pool_size")  # URL query parameters engramdb reads itself
ERASE_VACUUM = "VACUUM memories, history, jobs, memory_sources"  # the tables a hard delete removes rows from


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


SYNCHRONOUS_COMMIT = {"full": "on", "normal": "off"}  # durability → PostgreSQL's synchronous_commit


def _configure(conn: psycopg.Connection, *, durability: str = "full") -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute(f"SET synchronous_commit = {SYNCHRONOUS_COMMIT[durability]}")


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

    def __init__(
        self, url: str, *, text_search: str = "english", pool_size: int = 10, durability: str = "full"
    ) -> None:
        conninfo, own = split_url(url)
        self.location = redact(url)
        self._closed = False
        with driver_errors(opening=self.location):
            with psycopg.connect(conninfo, autocommit=True) as conn:
                lexicon.check_language(own.get("text_search", text_search))
                self.schema_version = migrate(conn, text_search=own.get("text_search", text_search))
            self._pool: ConnectionPool[Any] = ConnectionPool(
                conninfo, min_size=1, max_size=int(own.get("pool_size", pool_size)), open=True,
                kwargs={"autocommit": True, "row_factory": dict_row},
                configure=functools.partial(_configure, durability=durability),
            )  # fmt: skip
        meta = self._meta()
        self._text_search = meta["text_search"]
        self.language = self._text_search
        self._dimension = int(meta["dimension"]) if "dimension" in meta else 0
        self._async = AsyncConnections(conninfo, pool_size=int(own.get("pool_size", pool_size)),
                                       synchronous_commit=SYNCHRONOUS_COMMIT[durability])  # fmt: skip
        self._touches = semantics.TouchBuffer(threading.Lock())
        self._flushing = threading.Lock()  # held by the access-count flush running in the background
        self._speakers = SpeakerCache(ttl=TTL_SECONDS)  # kept by this process's writes (``stores.speakers``)

    # --- transactions -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection; database errors become StoreError."""
        self._check_open()
        with driver_errors(), self._pool.connection() as conn, conn.transaction():
            yield conn

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        self._check_open()
        with driver_errors(), self._pool.connection() as conn:
            rows: list[dict[str, Any]] = conn.execute(sql, params).fetchall()
            return rows

    def _erase_vacuum(self) -> None:
        """After a hard delete: VACUUM runs outside a transaction (pooled connections autocommit)."""
        with driver_errors(), self._pool.connection() as conn:
            conn.execute(ERASE_VACUUM)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # --- embedder binding ---------------------------------------------------------------

    def bind_embedder(self, name: str, dimension: int) -> None:
        if semantics.check_binding(self._meta(), name, dimension):
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

    # --- writes: each body in ``writes``, run here on a sync connection, awaited in ``a…`` ----------

    def _run(self, body: Callable[[tx.Connection], Coroutine[Any, Any, R]]) -> R:
        with self._write() as conn:
            return run(body(tx.SyncConnection(conn)))

    def add(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob | None = None
    ) -> list[tuple[str, Event]]:
        outcomes = self._run(lambda c: writes.add(c, tenant_id, records, job, self._text_search))
        return self._speakers.noted(tenant_id, said_by(records), outcomes)

    async def aadd(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob | None = None
    ) -> list[tuple[str, Event]]:
        outcomes = await self._async.transaction(lambda c: writes.add(c, tenant_id, records, job, self._text_search))
        return self._speakers.noted(tenant_id, said_by(records), outcomes)

    def add_derived(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob, derived: Derived
    ) -> tuple[list[tuple[str, Event]], list[AddedItem] | None]:
        done = self._run(lambda c: writes.add_derived(c, tenant_id, records, job, derived, self._text_search))
        return self._speakers.noted(tenant_id, said_by(records, derived.operations), done)

    async def aadd_derived(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob, derived: Derived
    ) -> tuple[list[tuple[str, Event]], list[AddedItem] | None]:
        cfg = self._text_search
        done = await self._async.transaction(lambda c: writes.add_derived(c, tenant_id, records, job, derived, cfg))
        return self._speakers.noted(tenant_id, said_by(records, derived.operations), done)

    def apply(
        self, tenant_id: str, operations: Sequence[Operation], *, job_id: str | None = None, usage: Usage | None = None
    ) -> list[AddedItem] | None:
        cfg = self._text_search
        applied = self._run(lambda c: semantics.apply(writes.Tx(c, cfg), tenant_id, operations, job_id, usage))
        return self._speakers.noted(tenant_id, said_by((), operations), applied)

    def update(self, tenant_id: str, memory_id: str, change: Change) -> MemoryItem:
        return self._run(lambda c: writes.update(c, tenant_id, memory_id, change, self._text_search))

    async def aupdate(self, tenant_id: str, memory_id: str, change: Change) -> MemoryItem:
        cfg = self._text_search
        return await self._async.transaction(lambda c: writes.update(c, tenant_id, memory_id, change, cfg))

    def delete(self, tenant_id: str, memory_id: str) -> None:
        self._run(lambda c: writes.delete(c, tenant_id, memory_id, self._text_search))
        self._speakers.removed()

    async def adelete(self, tenant_id: str, memory_id: str) -> None:
        await self._async.transaction(lambda c: writes.delete(c, tenant_id, memory_id, self._text_search))
        self._speakers.removed()

    def delete_scope(self, tenant_id: str, scope: Scope, *, hard: bool = False) -> int:
        count = self._run(lambda c: writes.delete_scope(c, tenant_id, scope, hard, self._text_search))
        self._speakers.removed()
        if hard:
            self._erase_vacuum()
        return count

    async def adelete_scope(self, tenant_id: str, scope: Scope, *, hard: bool = False) -> int:
        count = await self._async.transaction(
            lambda c: writes.delete_scope(c, tenant_id, scope, hard, self._text_search)
        )
        self._speakers.removed()
        if hard:
            await self._async.outside_transaction(ERASE_VACUUM)
        return count

    def forget(self, tenant_id: str, ids: Sequence[str], *, reason: str, hard: bool) -> int:
        if not ids:
            return 0
        count = self._run(lambda c: writes.forget(c, tenant_id, ids, reason, hard, self._text_search))
        self._speakers.removed()
        if hard:
            self._erase_vacuum()
        return count

    def supersede(self, tenant_id: str, ids: Sequence[str], by_id: str, *, reason: str) -> int:
        return self._run(lambda c: semantics.supersede(writes.Tx(c), tenant_id, ids, by_id, reason))

    def reset(self, tenant_id: str) -> None:
        self._run(lambda c: writes.reset(c, tenant_id))
        self._speakers.removed()
        self._erase_vacuum()

    def touch(self, tenant_id: str, ids: Sequence[str]) -> None:
        """Buffer access counts (``semantics.TouchBuffer``); a due flush is written off the search's path."""
        self._count(ids)

    async def atouch(self, tenant_id: str, ids: Sequence[str]) -> None:
        """``touch`` for the async search path: the same buffer, nothing awaited on the loop."""
        self._count(ids)

    def _count(self, ids: Sequence[str]) -> None:
        if self._touches.add(ids, utcnow()):
            self._flush_later()

    def _flush_later(self) -> None:
        """Write the counts on a thread of their own, one flush at a time: each row's UPDATE may
        rewrite its index entries (a full page leaves no room for an update in place; after a
        bulk load a flush took seconds), and a search must not wait for that."""
        if not self._flushing.acquire(blocking=False):
            return  # a flush is running; the counts wait for the next one

        def flush() -> None:
            try:
                with contextlib.suppress(StoreError):  # a full disk costs the counts, never the read
                    self._flush_touches()
            finally:
                self._flushing.release()

        threading.Thread(target=flush, name="engramdb-access-counts", daemon=True).start()

    def _flush_touches(self) -> None:
        if pending := self._touches.take():
            self._run(lambda c: writes.touch(c, pending))

    # --- whole-store copies (engramdb migrate) ------------------------------------------------

    def count_rows(self, table: str) -> int:
        return TableReader(self._read, "%s", portable_row).count_rows(table)

    def iter_rows(self, table: str, *, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        return TableReader(self._read, "%s", portable_row).iter_rows(table, batch=batch)

    def snapshot(self) -> AbstractContextManager[TableReader]:
        """Every table as of one moment: a read-only REPEATABLE READ transaction on one connection."""
        self._check_open()
        return self._snapshot()

    @contextmanager
    def _snapshot(self) -> Iterator[TableReader]:
        def fetch(sql: str, params: Sequence[Any]) -> list[Any]:
            with driver_errors():
                rows: list[Any] = conn.execute(sql, params).fetchall()
                return rows

        with driver_errors(), self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield TableReader(fetch, "%s", portable_row)

    def write_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        spec = BY_NAME[table]
        columns = ", ".join(spec.columns)
        marks = ", ".join(f"%({c})s" for c in spec.columns)
        params = [{c: jsonb(row[c]) if c in spec.json and row[c] is not None else row[c] for c in spec.columns}
                  for row in rows]  # fmt: skip
        with self._write() as conn:
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {spec.name} ({columns}) VALUES ({marks})", params)
            if spec.name == "memories":  # and into the lexical index
                ids = [row["id"] for row in rows]
                run(writes.reindex(tx.SyncConnection(conn), "m.id = ANY(%s)", (ids,), self._text_search))
        self._speakers.removed()  # rows copied in: read every set again

    # --- API keys ------------------------------------------------------------------------

    def save_key(self, key: ApiKey, key_hash: str) -> None:
        self._run(lambda c: semantics.save_key(writes.Tx(c), key, key_hash))

    def revoke_key(self, key_id: str) -> ApiKey:
        self._run(lambda c: semantics.revoke_key(writes.Tx(c), key_id))
        return self._key(key_id)

    # --- jobs ---------------------------------------------------------------------------

    def reopen_job(self, tenant_id: str, job_id: str) -> Job:
        self._run(lambda c: semantics.reopen_job(writes.Tx(c), tenant_id, job_id))
        return self.get_job(tenant_id, job_id)

    def fail_job(self, tenant_id: str, job_id: str, error: str, *, max_attempts: int) -> Job:
        self._run(lambda c: semantics.fail_job(writes.Tx(c), tenant_id, job_id, error, max_attempts))
        return self.get_job(tenant_id, job_id)

    # --- reads ----------------------------------------------------------------------------

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
        """BM25 over the owner scopes the query reaches, from their numbers alone (``lexicon``)."""
        plan = queries.lexical(query, terms, k, self._text_search)
        return self._hits(plan) if plan is not None else []

    def speakers(self, tenant_id: str, scope: Scope) -> frozenset[str]:
        """Kept by this process's writes and read again after ``TTL_SECONDS`` (``stores.speakers``)."""
        plan = queries.Plan(*speakers_sql(tenant_id, scope, "%s"))
        return cached(
            self._speakers, tenant_id, scope, lambda: [r["speaker"] for r in self._read(plan.sql, plan.params)]
        )

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

    async def aspeakers(self, tenant_id: str, scope: Scope) -> frozenset[str]:
        plan = queries.Plan(*speakers_sql(tenant_id, scope, "%s"))
        return await acached(self._speakers, tenant_id, scope, lambda: self._async.rows(plan), "speaker")

    async def aget_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]:
        if not ids:
            return []
        rows = await self._async.rows(queries.get_many(tenant_id, ids))
        by_id = {row["id"]: item_from_row(row) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    async def aoutdated(self, tenant_id: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        rows = await self._async.rows(queries.Plan(*sqlreads.outdated_sql("%s", tenant_id, ids)))
        return {r["source_id"] for r in rows}

    async def aget(self, tenant_id: str, memory_id: str) -> MemoryItem:
        rows = await self._async.rows(queries.get_many(tenant_id, [memory_id]))
        if not rows:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return item_from_row(rows[0])

    async def arecent(self, query: Query, *, limit: int) -> list[MemoryItem]:
        rows = await self._async.rows(queries.Plan(*self._recent_sql(query, limit)))
        return [item_from_row(r) for r in reversed(rows)]

    async def aclose(self) -> None:
        await self._async.close()

    def close(self) -> None:
        if self._closed:
            return
        try:
            with self._flushing, contextlib.suppress(StoreError):  # after a background flush; counts are a hint
                self._flush_touches()
        finally:
            self._closed = True
            self._pool.close()
