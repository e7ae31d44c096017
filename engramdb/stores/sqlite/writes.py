"""The SQLite store's write steps, each run inside the caller's transaction (``SQLiteStore._write``).

Every function takes the connection and, where it writes rows the vector index mirrors, the
transaction's change sequence ``seq`` (see ``mirror``). What the steps mean is written once for
both stores in ``stores.semantics``; ``Tx`` is how SQLite says it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ...errors import NotFoundError
from ...models import Event, MemoryItem, Scope, utcnow
from .. import lexicon, semantics
from ..base import NewJob, NewRecord, history_row
from ..portable import MEMORY_COLUMNS
from ..semantics import run
from ..sqlreads import scope_sql
from .rows import item_from_row, item_params, to_db_time

CHUNK = 500  # values bound in one statement: well inside SQLite's limit on parameters
LANGUAGE = lexicon.DEFAULT_LANGUAGE  # the stemmer of the lexical index (the file's words are English by default)
LEXICAL_COLUMNS = "rowid, tenant_id, user_id, agent_id, session_id, index_text, speaker"


class Tx:
    """One IMMEDIATE transaction as a ``semantics.Dialect``: nothing else writes the file
    meanwhile, so an insert never meets a concurrent one and no row needs locking."""

    mark, nullsafe, row_lock = "?", "ifnull", ""
    max_list = CHUNK

    def __init__(self, conn: sqlite3.Connection, seq: int) -> None:
        self.conn, self.seq = conn, seq

    @property
    def stamp(self) -> dict[str, Any]:
        return {"seq": self.seq}

    def time(self, value: datetime) -> str | None:
        return to_db_time(value)

    def json(self, value: Any) -> str:
        return json.dumps(value)

    @staticmethod
    def ignore_conflicts(insert_sql: str) -> str:
        return insert_sql.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)

    async def execute(self, sql: str, params: Sequence[Any]) -> None:
        self.conn.execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        return self.conn.execute(sql, params).fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    @staticmethod
    def any_of(column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)

    async def get(self, tenant_id: str, memory_id: str, *, lock: bool = False) -> MemoryItem:
        return get(self.conn, tenant_id, memory_id)

    async def insert(self, tenant_id: str, record: NewRecord) -> bool:
        return (await self.insert_many(tenant_id, [record]))[0]

    async def insert_many(self, tenant_id: str, records: Sequence[NewRecord]) -> list[bool]:
        insert(self.conn, tenant_id, self.seq, records)
        when = to_db_time(utcnow())
        history = [
            history_row(tenant_id, r.item, Event.ADD, old=None, new=r.item, reason=None, encode=self.json, when=when)
            for r in records
        ]
        self.conn.executemany(f"INSERT INTO history VALUES ({', '.join('?' * len(history[0]))})", history)
        return [True] * len(records)  # nothing else writes meanwhile: every insert holds

    def log(self, tenant_id: str, item: MemoryItem, event: Event, **changes: Any) -> None:
        """``semantics.log`` from the store's synchronous steps (``old``, ``new``, ``reason``)."""
        run(semantics.log(self, tenant_id, item, event, **changes))


async def add(d: Tx, tenant_id: str, records: Sequence[NewRecord], job: NewJob | None) -> list[tuple[str, Event]]:
    outcomes = await semantics.add_many(d, tenant_id, records)
    if job is not None:
        await semantics.insert_job(d, tenant_id, job, [memory_id for memory_id, _ in outcomes])
    return outcomes


def get(conn: sqlite3.Connection, tenant_id: str, memory_id: str) -> MemoryItem:
    row = conn.execute(
        f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ? AND +tenant_id = ?", (memory_id, tenant_id)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no memory with id {memory_id!r}")
    return item_from_row(row)


def insert(conn: sqlite3.Connection, tenant_id: str, seq: int, records: Sequence[NewRecord]) -> None:
    """New memories' rows, their lexical entries and their sources (not their history).

    The rows take the rowids SQLite would give them one by one (the largest plus one, in
    order), chosen here so that one ``executemany`` writes them all and the postings can name
    them: the IMMEDIATE transaction holds the file's write lock, so no other writer can take
    them meanwhile. A statement per row cost a quarter of a bulk add's time in the driver.
    """
    last = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM memories").fetchone()[0]
    rows, entries = [], []
    for rowid, record in enumerate(records, start=last + 1):
        params = item_params(record.item)
        params.update(
            rowid=rowid,
            tenant_id=tenant_id,
            index_text=record.index_text,
            embedding=np.ascontiguousarray(record.embedding, dtype=np.float32).tobytes(),
            seq=seq,
        )
        rows.append(params)
        item = record.item
        scope = Scope(user_id=item.user_id, agent_id=item.agent_id, session_id=item.session_id)
        entries.append(lexicon.entry(tenant_id, scope, rowid, record.index_text, item.provenance.name, LANGUAGE))
    if rows:
        columns = ", ".join(rows[0])
        conn.executemany(f"INSERT INTO memories ({columns}) VALUES ({', '.join(':' + c for c in rows[0])})", rows)
    index(conn, entries)
    conn.executemany(
        "INSERT OR IGNORE INTO memory_sources VALUES (?, ?)", [(r.item.id, s) for r in records for s in r.item.sources]
    )


def erase_traces(conn: sqlite3.Connection, tenant_id: str, scope: Scope, ids: Sequence[str]) -> None:
    """History, sources and jobs of a scope: what a hard delete removes besides the rows."""
    where, params = scope_sql(tenant_id, scope, "?")
    plain = where.replace("m.", "")
    conn.execute(f"DELETE FROM history WHERE {plain}", params)
    conn.execute(f"DELETE FROM jobs WHERE {plain}", params)
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        marks = ", ".join("?" for _ in chunk)
        conn.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM memory_sources WHERE memory_id IN ({marks}) OR source_id IN ({marks})", chunk * 2)


def index(conn: sqlite3.Connection, entries: Sequence[lexicon.Entry]) -> None:
    """Add memories to the lexical index (``lexicon``): their postings, their scopes' counts."""
    conn.executemany(lexicon.insert_postings_sql("?"), [r for e in entries for r in e.posting_rows])
    conn.executemany(lexicon.upsert_scope_sql("?"), lexicon.merged(entries))


def unindex(conn: sqlite3.Connection, rows: Sequence[Any]) -> None:
    """Take memories out of the lexical index; ``rows`` carry ``LEXICAL_COLUMNS``."""
    entries = [_entry(r, -1) for r in rows]
    conn.executemany(lexicon.delete_postings_sql("?"), lexicon.posting_keys(entries))
    merged = lexicon.merged(entries)
    conn.executemany(lexicon.upsert_scope_sql("?"), merged)
    conn.executemany(lexicon.drop_empty_scope_sql("?"), [(row[0],) for row in merged])


def reindex(conn: sqlite3.Connection, rows: Sequence[Any]) -> None:
    """Index memories from their rows (``LEXICAL_COLUMNS``): after a change of text, an import."""
    index(conn, [_entry(r, 1) for r in rows])


def _entry(row: Any, sign: int) -> lexicon.Entry:
    scope = Scope(user_id=row["user_id"], agent_id=row["agent_id"], session_id=row["session_id"])
    return lexicon.entry(row["tenant_id"], scope, row["rowid"], row["index_text"], row["speaker"], LANGUAGE, sign=sign)


ERASED_SQL = (
    "INSERT INTO counters VALUES ('erased', ?) ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)"
)


def mark_erased(conn: sqlite3.Connection, seq: int) -> None:
    """Record that rows were erased at ``seq``: a vector snapshot taken before it holds their
    ids and vectors, so no save may publish one (``mirror.VectorMirror.save`` reads it back in
    the transaction that would record the snapshot's token). A process with no index of its own
    cannot rewrite the snapshot; this is how a save under way elsewhere learns of the erase."""
    conn.execute(ERASED_SQL, (seq,))


def remove(conn: sqlite3.Connection, seq: int, where: str, params: Sequence[Any]) -> None:
    """Delete rows and their lexical entries; each leaves a tombstone for the vector index (see ``mirror``)."""
    rows = conn.execute(f"SELECT {LEXICAL_COLUMNS} FROM memories WHERE {where}", params).fetchall()
    unindex(conn, rows)
    rowids = [r["rowid"] for r in rows]
    for start in range(0, len(rowids), CHUNK):
        chunk = rowids[start : start + CHUNK]
        marks = ", ".join("?" for _ in chunk)
        conn.execute(f"DELETE FROM memories WHERE rowid IN ({marks})", chunk)
        conn.executemany("INSERT INTO tombstones VALUES (?, ?)", [(seq, r) for r in chunk])
