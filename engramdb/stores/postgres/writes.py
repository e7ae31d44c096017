"""The PostgreSQL store's write transactions, each written once for sync and async callers.

Each function is the body of one transaction on ``conn`` (see ``tx``): ``PostgresStore``
runs it on a pooled sync connection, its ``a…`` methods await it on an async one. ``cfg``
is the language the lexical index stems with (``stores.lexicon``). What the steps mean is
written once for both stores in ``stores.semantics``; ``Tx`` is how PostgreSQL says it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ...errors import NotFoundError
from ...models import AddedItem, Event, MemoryItem, Scope, content_hash, new_id, utcnow
from .. import lexicon, semantics
from ..base import Change, Derived, NewJob, NewRecord
from ..portable import MEMORY_COLUMNS
from .errors import driver_errors
from .queries import scope_sql
from .rows import item_from_row, item_params, jsonb
from .tx import Connection


class Tx:
    """One transaction as a ``semantics.Dialect``. Concurrent transactions are real here: rows
    a step reads before changing are locked, and an insert may lose a race (``_insert``)."""

    mark, nullsafe, row_lock = "%s", "coalesce", " FOR UPDATE"
    max_list = sys.maxsize  # one array parameter, of any length

    def __init__(self, conn: Connection, cfg: str | None = None) -> None:
        self.conn, self.cfg = conn, cfg

    @property
    def stamp(self) -> dict[str, Any]:
        return {}  # no column besides a write's own

    def time(self, value: datetime) -> datetime:
        return value

    def json(self, value: Any) -> Any:
        return jsonb(value)

    @staticmethod
    def ignore_conflicts(insert_sql: str) -> str:
        return insert_sql + " ON CONFLICT DO NOTHING"

    async def execute(self, sql: str, params: Sequence[Any]) -> None:
        await self.conn.execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        return await fetchone(self.conn, sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await fetchall(self.conn, sql, params)

    @staticmethod
    def any_of(column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(values)]

    async def get(self, tenant_id: str, memory_id: str, *, lock: bool = False) -> MemoryItem:
        return await get(self.conn, tenant_id, memory_id, lock=lock)

    async def insert(self, tenant_id: str, record: NewRecord) -> bool:
        if self.cfg is None:
            raise RuntimeError("an insert needs the text search configuration")
        return await _insert(self.conn, tenant_id, record, self.cfg)

    async def insert_many(self, tenant_id: str, records: Sequence[NewRecord]) -> list[bool]:
        if self.cfg is None:
            raise RuntimeError("an insert needs the text search configuration")
        return await _insert_many(self.conn, tenant_id, records, self.cfg)


async def fetchone(conn: Connection, sql: str, params: Any = None) -> Any:
    return await (await conn.execute(sql, params)).fetchone()


async def fetchall(conn: Connection, sql: str, params: Any = None) -> list[Any]:
    return await (await conn.execute(sql, params)).fetchall()  # type: ignore[no-any-return]


async def get(conn: Connection, tenant_id: str, memory_id: str, *, lock: bool = False) -> MemoryItem:
    sql = f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = %s AND tenant_id = %s" + (" FOR UPDATE" if lock else "")
    row = await fetchone(conn, sql, (memory_id, tenant_id))
    if row is None:
        raise NotFoundError(f"no memory with id {memory_id!r}")
    return item_from_row(row)


def _row(tenant_id: str, record: NewRecord) -> dict[str, Any]:
    params = item_params(record.item)
    params.update(
        tenant_id=tenant_id,
        index_text=record.index_text,
        embedding=np.ascontiguousarray(record.embedding, dtype=np.float32),
    )
    return params


def _insert_sql(row: dict[str, Any]) -> str:
    values = ", ".join(f"%({c})s" for c in row)
    return f"INSERT INTO memories ({', '.join(row)}) VALUES ({values}) ON CONFLICT DO NOTHING RETURNING id"


# --- the lexical index (``stores.lexicon``) -----------------------------------------------------

LEXICAL_COLUMNS = "id, tenant_id, user_id, agent_id, session_id, index_text, speaker"


def lexical_entry(row: Any, cfg: str) -> lexicon.Entry:
    """Index a memory from its row (``LEXICAL_COLUMNS``)."""
    return _entry(row, cfg, 1)


def _entry(row: Any, cfg: str, sign: int) -> lexicon.Entry:
    scope = Scope(user_id=row["user_id"], agent_id=row["agent_id"], session_id=row["session_id"])
    return lexicon.entry(row["tenant_id"], scope, row["id"], row["index_text"], row["speaker"], cfg, sign=sign)


def _record_entry(tenant_id: str, record: NewRecord, cfg: str) -> lexicon.Entry:
    item = record.item
    scope = Scope(user_id=item.user_id, agent_id=item.agent_id, session_id=item.session_id)
    return lexicon.entry(tenant_id, scope, item.id, record.index_text, item.provenance.name, cfg)


async def index(conn: Connection, entries: Sequence[lexicon.Entry]) -> None:
    """Add memories to the lexical index. Scopes first, in key order: concurrent writers to
    the same scopes lock their counts in one order, so they queue instead of deadlocking."""
    if not entries:
        return
    async with conn.cursor() as cur:
        await cur.executemany(lexicon.upsert_scope_sql("%s"), lexicon.merged(entries))
        await cur.executemany(lexicon.insert_postings_sql("%s"), [r for e in entries for r in e.posting_rows])


async def unindex(conn: Connection, where: str, params: Sequence[Any], cfg: str) -> None:
    """Take the memories matching ``where`` (on ``memories m``) out of the lexical index."""
    rows = await fetchall(conn, f"SELECT {LEXICAL_COLUMNS} FROM memories m WHERE {where}", params)
    entries = [_entry(r, cfg, -1) for r in rows]
    if not entries:
        return
    merged = lexicon.merged(entries)
    async with conn.cursor() as cur:
        await cur.executemany(lexicon.upsert_scope_sql("%s"), merged)
        await cur.executemany(lexicon.delete_postings_sql("%s"), lexicon.posting_keys(entries))
        await cur.executemany(lexicon.drop_empty_scope_sql("%s"), [(row[0],) for row in merged])


async def reindex(conn: Connection, where: str, params: Sequence[Any], cfg: str) -> None:
    """Index the memories matching ``where`` from their rows (after a change of text, a copy)."""
    rows = await fetchall(conn, f"SELECT {LEXICAL_COLUMNS} FROM memories m WHERE {where}", params)
    await index(conn, [_entry(r, cfg, 1) for r in rows])


# --- adds -------------------------------------------------------------------------------------


async def add(
    conn: Connection, tenant_id: str, records: Sequence[NewRecord], job: NewJob | None, cfg: str
) -> list[tuple[str, Event]]:
    outcomes = await semantics.add_many(Tx(conn, cfg), tenant_id, records)
    if job is not None:
        await semantics.insert_job(Tx(conn), tenant_id, job, [memory_id for memory_id, _ in outcomes])
    return outcomes


async def add_derived(
    conn: Connection, tenant_id: str, records: Sequence[NewRecord], job: NewJob, derived: Derived, cfg: str
) -> tuple[list[tuple[str, Event]], list[AddedItem] | None]:
    outcomes = await add(conn, tenant_id, records, None, cfg)  # the job: written with its result
    return outcomes, await semantics.apply_derived(Tx(conn, cfg), tenant_id, records, outcomes, job, derived)


async def _insert_many(conn: Connection, tenant_id: str, records: Sequence[NewRecord], cfg: str) -> list[bool]:
    if not records:
        return []
    rows = [_row(tenant_id, record) for record in records]
    async with conn.cursor() as cur:
        await cur.executemany(_insert_sql(rows[0]), rows, returning=True)
        done: set[str] = set()
        while True:
            done.update(r["id"] for r in await cur.fetchall())
            if not cur.nextset():
                break
        ok = [record.item.id in done for record in records]
        await index(conn, [_record_entry(tenant_id, r, cfg) for r, good in zip(records, ok, strict=True) if good])
        await cur.executemany(
            "INSERT INTO memory_sources VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [(r.item.id, s) for r, good in zip(records, ok, strict=True) if good for s in r.item.sources],
        )
        now = utcnow()
        await cur.executemany(
            "INSERT INTO history VALUES (%s, %s, %s, %s, %s, %s, 'ADD', NULL, %s, NULL, %s, NULL, %s)",
            [(new_id(), r.item.id, tenant_id, r.item.user_id, r.item.agent_id, r.item.session_id, r.item.memory,
              jsonb(r.item.metadata), now) for r, good in zip(records, ok, strict=True) if good],
        )  # fmt: skip
    return ok


async def _insert(conn: Connection, tenant_id: str, record: NewRecord, cfg: str) -> bool:
    """Insert one record; False when a concurrent writer took its id or text first."""
    row = _row(tenant_id, record)
    if await fetchone(conn, _insert_sql(row), row) is None:
        return False
    await index(conn, [_record_entry(tenant_id, record, cfg)])
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO memory_sources VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [(record.item.id, s) for s in record.item.sources],
        )
    await semantics.log(Tx(conn), tenant_id, record.item, Event.ADD, new=record.item)
    return True


# --- updates and deletes ----------------------------------------------------------------------


async def update(conn: Connection, tenant_id: str, memory_id: str, change: Change, cfg: str) -> MemoryItem:
    old = await get(conn, tenant_id, memory_id, lock=True)
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
    values.update(change.times)
    assignments = ", ".join(f"{key} = %({key})s" for key in values)
    with driver_errors(unique=True):
        async with conn.transaction():  # a savepoint: a clash leaves the outer transaction usable
            if "index_text" in values:
                await unindex(conn, "m.id = %s", (memory_id,), cfg)
            await conn.execute(f"UPDATE memories SET {assignments} WHERE id = %(id)s", {**values, "id": memory_id})
            if "index_text" in values:
                await reindex(conn, "m.id = %s", (memory_id,), cfg)
    new = await get(conn, tenant_id, memory_id)
    await semantics.log(Tx(conn), tenant_id, new, Event.UPDATE, old=old, new=new)
    return new


async def delete(conn: Connection, tenant_id: str, memory_id: str, cfg: str) -> None:
    item = await get(conn, tenant_id, memory_id, lock=True)
    await unindex(conn, "m.id = %s", (memory_id,), cfg)
    await conn.execute("DELETE FROM memories WHERE id = %s", (memory_id,))
    await semantics.log(Tx(conn), tenant_id, item, Event.DELETE, old=item)
    await semantics.retract_derived(Tx(conn), tenant_id, [memory_id])


async def delete_scope(conn: Connection, tenant_id: str, scope: Scope, hard: bool, cfg: str) -> int:
    where, params = scope_sql(tenant_id, scope)
    rows = await fetchall(conn, f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY id FOR UPDATE", params)
    ids = [r["id"] for r in rows]
    if hard:
        await _erase_traces(conn, tenant_id, scope, ids)
    else:
        for row in rows:
            item = item_from_row(row)
            await semantics.log(Tx(conn), tenant_id, item, Event.DELETE, old=item, reason="delete_all")
    await unindex(conn, where, params, cfg)
    await conn.execute(f"DELETE FROM memories m WHERE {where}", params)
    if not hard:
        await semantics.retract_derived(Tx(conn), tenant_id, ids)
    return len(rows)


async def _erase_traces(conn: Connection, tenant_id: str, scope: Scope, ids: Sequence[str]) -> None:
    """History, sources and jobs of a scope: what a hard delete removes besides the rows."""
    where, params = scope_sql(tenant_id, scope)
    await conn.execute(f"DELETE FROM history m WHERE {where}", params)
    await conn.execute(f"DELETE FROM jobs m WHERE {where}", params)
    await conn.execute("DELETE FROM history WHERE tenant_id = %s AND memory_id = ANY(%s)", (tenant_id, list(ids)))
    await conn.execute(
        "DELETE FROM memory_sources WHERE memory_id = ANY(%s) OR source_id = ANY(%s)", (list(ids), list(ids))
    )


async def forget(conn: Connection, tenant_id: str, ids: Sequence[str], reason: str, hard: bool, cfg: str) -> int:
    rows = await fetchall(
        conn,
        f"SELECT {MEMORY_COLUMNS} FROM memories WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
        (tenant_id, list(ids)),
    )
    items = [item_from_row(r) for r in rows]
    found = [item.id for item in items]
    if hard:
        await conn.execute("DELETE FROM history WHERE tenant_id = %s AND memory_id = ANY(%s)", (tenant_id, found))
        await conn.execute("DELETE FROM memory_sources WHERE memory_id = ANY(%s)", (found,))
        await unindex(conn, "m.tenant_id = %s AND m.id = ANY(%s)", (tenant_id, found), cfg)
        await conn.execute("DELETE FROM memories WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, found))
    else:
        await conn.execute(
            "UPDATE memories SET state = 'forgotten', updated_at = %s WHERE tenant_id = %s AND id = ANY(%s)",
            (utcnow(), tenant_id, found),
        )
        for item in items:
            await semantics.log(Tx(conn), tenant_id, item, Event.DELETE, old=item, reason=reason)
    return len(items)


async def reset(conn: Connection, tenant_id: str) -> None:
    await conn.execute("DELETE FROM lex_postings WHERE tenant = %s", (lexicon.tenant_key(tenant_id),))
    await conn.execute("DELETE FROM lex_scopes WHERE tenant_id = %s", (tenant_id,))
    await conn.execute("DELETE FROM memories WHERE tenant_id = %s", (tenant_id,))
    await conn.execute("DELETE FROM history WHERE tenant_id = %s", (tenant_id,))


async def touch(conn: Connection, pending: Sequence[tuple[int, Any, str]]) -> None:
    """Write buffered access counts (``semantics.TouchBuffer.take``)."""
    async with conn.cursor() as cur:
        await cur.executemany(semantics.touch_sql("%s"), pending)
