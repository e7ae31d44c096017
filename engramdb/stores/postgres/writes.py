"""The PostgreSQL store's write transactions, each written once for sync and async callers.

Each function is the body of one transaction on ``conn`` (see ``tx``): ``PostgresStore``
runs it on a pooled sync connection, its ``a…`` methods await it on an async one. ``cfg``
is the text search configuration the ``tsv`` column is built with.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from ...errors import NotFoundError, StoreError, ValidationError
from ...models import AddedItem, Event, MemoryItem, Scope, Usage, content_hash, new_id, utcnow
from ..base import Change, NewJob, NewRecord, Operation, history_row
from ..portable import MEMORY_COLUMNS
from .queries import scope_sql
from .rows import item_from_row, item_params, jsonb
from .tx import Connection


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


def _row(tenant_id: str, record: NewRecord, cfg: str) -> dict[str, Any]:
    params = item_params(record.item)
    params.update(
        tenant_id=tenant_id,
        index_text=record.index_text,
        embedding=np.ascontiguousarray(record.embedding, dtype=np.float32),
        cfg=cfg,
    )
    return params


def _insert_sql(row: dict[str, Any]) -> str:
    columns = [c for c in row if c != "cfg"]
    values = ", ".join(f"%({c})s" for c in columns)
    return (
        f"INSERT INTO memories ({', '.join(columns)}, tsv) VALUES ({values}, "
        "to_tsvector(%(cfg)s::regconfig, %(index_text)s)) ON CONFLICT DO NOTHING RETURNING id"
    )


async def log(
    conn: Connection,
    tenant_id: str,
    item: MemoryItem,
    event: Event,
    *,
    old: MemoryItem | None = None,
    new: MemoryItem | None = None,
    reason: str | None = None,
) -> None:
    row = history_row(tenant_id, item, event, old=old, new=new, reason=reason, encode=jsonb, when=utcnow())
    await conn.execute("INSERT INTO history VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)


# --- adds -------------------------------------------------------------------------------------


async def add(
    conn: Connection, tenant_id: str, records: Sequence[NewRecord], job: NewJob | None, cfg: str
) -> list[tuple[str, Event]]:
    outcomes = await _add_many(conn, tenant_id, records, cfg)
    if job is not None:
        payload = {**job.payload, "episode_ids": [memory_id for memory_id, _ in outcomes]}
        now = utcnow()
        await conn.execute(
            "INSERT INTO jobs (id, tenant_id, user_id, agent_id, session_id, state, payload, created_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s)",
            (job.id, tenant_id, job.scope.user_id, job.scope.agent_id, job.scope.session_id,
             jsonb(payload), now, now),
        )  # fmt: skip
    return outcomes


def _key(item: MemoryItem) -> tuple[str, str, str, str]:
    return (item.user_id or "", item.agent_id or "", item.session_id or "", item.hash)


async def _add_many(
    conn: Connection, tenant_id: str, records: Sequence[NewRecord], cfg: str
) -> list[tuple[str, Event]]:
    """``add_one`` for a batch in a few round trips: the lookups as one query each, the
    inserts pipelined. Anything unusual (a clash with a concurrent writer, an id taken by
    another tenant) goes through ``add_one``, so the outcome is the same."""
    found = await fetchall(
        conn,
        "SELECT id, coalesce(user_id, '') AS u, coalesce(agent_id, '') AS a, coalesce(session_id, '') AS s, hash "
        "FROM memories WHERE tenant_id = %s AND hash = ANY(%s) AND state = 'active'",
        (tenant_id, [r.item.hash for r in records]),
    )
    known = {(r["u"], r["a"], r["s"], r["hash"]): r["id"] for r in found}
    ids = [r.item.id for r in records]
    taken = {r["id"] for r in await fetchall(conn, "SELECT id FROM memories WHERE id = ANY(%s)", (ids,))}
    outcomes: list[tuple[str, Event] | None] = []
    fresh: list[tuple[int, NewRecord]] = []
    for record in records:
        k = _key(record.item)
        if k in known:
            outcomes.append((known[k], Event.NOOP))
        elif record.item.id in taken:
            outcomes.append(await add_one(conn, tenant_id, record, cfg))
        else:
            known[k] = record.item.id
            taken.add(record.item.id)
            outcomes.append(None)
            fresh.append((len(outcomes) - 1, record))
    inserted = await _insert_many(conn, tenant_id, [r for _, r in fresh], cfg)
    for (position, record), ok in zip(fresh, inserted, strict=True):
        outcomes[position] = (record.item.id, Event.ADD) if ok else await add_one(conn, tenant_id, record, cfg)
    return [o for o in outcomes if o is not None]


async def _insert_many(conn: Connection, tenant_id: str, records: Sequence[NewRecord], cfg: str) -> list[bool]:
    if not records:
        return []
    rows = [_row(tenant_id, record, cfg) for record in records]
    async with conn.cursor() as cur:
        await cur.executemany(_insert_sql(rows[0]), rows, returning=True)
        done: set[str] = set()
        while True:
            done.update(r["id"] for r in await cur.fetchall())
            if not cur.nextset():
                break
        ok = [record.item.id in done for record in records]
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


async def add_one(conn: Connection, tenant_id: str, record: NewRecord, cfg: str) -> tuple[str, Event]:
    for _ in range(3):
        item = record.item
        existing = await fetchone(
            conn,
            "SELECT id FROM memories WHERE tenant_id = %s AND coalesce(user_id, '') = %s AND "
            "coalesce(agent_id, '') = %s AND coalesce(session_id, '') = %s AND hash = %s AND state = 'active'",
            (tenant_id, item.user_id or "", item.agent_id or "", item.session_id or "", item.hash),
        )
        if existing is not None:
            return existing["id"], Event.NOOP
        owner = await fetchone(conn, "SELECT tenant_id FROM memories WHERE id = %s", (item.id,))
        if owner is not None and owner["tenant_id"] == tenant_id:
            return item.id, Event.NOOP
        if owner is not None:  # another tenant's id: never reveal it exists, store under a fresh id
            record.item = item = item.model_copy(update={"id": new_id()})
        if await _insert(conn, tenant_id, record, cfg):
            return item.id, Event.ADD
        # a concurrent transaction committed the same text or id first: look again
    raise StoreError("could not add a memory: concurrent writers kept conflicting")


async def _insert(conn: Connection, tenant_id: str, record: NewRecord, cfg: str) -> bool:
    """Insert one record; False when a concurrent writer took its id or text first."""
    row = _row(tenant_id, record, cfg)
    if await fetchone(conn, _insert_sql(row), row) is None:
        return False
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO memory_sources VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [(record.item.id, s) for s in record.item.sources],
        )
    await log(conn, tenant_id, record.item, Event.ADD, new=record.item)
    return True


# --- derived memories: reconciliation ---------------------------------------------------------


async def apply(
    conn: Connection,
    tenant_id: str,
    operations: Sequence[Operation],
    job_id: str | None,
    usage: Usage | None,
    cfg: str,
) -> list[AddedItem] | None:
    if job_id is not None:
        sql = "SELECT state FROM jobs WHERE id = %s AND tenant_id = %s FOR UPDATE"
        row = await fetchone(conn, sql, (job_id, tenant_id))
        if row is None or row["state"] == "done":
            return None
    results = [await _apply_one(conn, tenant_id, op, cfg) for op in operations]
    if job_id is not None:
        result = {"results": [r.model_dump(mode="json") for r in results], "usage": (usage or Usage()).model_dump()}
        await conn.execute(
            "UPDATE jobs SET state = 'done', result = %s, error = NULL, updated_at = %s WHERE id = %s",
            (jsonb(result), utcnow(), job_id),
        )
    return results


async def _apply_one(conn: Connection, tenant_id: str, op: Operation, cfg: str) -> AddedItem:
    item = op.record.item if op.record is not None else None
    text, kind, sources = (item.memory, item.kind, item.sources) if item else ("", "fact", [])
    if op.event in (Event.ADD, Event.UPDATE) and op.record is not None:
        memory_id, event = await add_one(conn, tenant_id, op.record, cfg)
        if event is Event.ADD and op.event is Event.UPDATE and op.target_id is not None:
            when = op.record.item.valid_from or utcnow()
            await end(conn, tenant_id, op.target_id, "superseded", when, op.reason, superseded_by=memory_id)
            event = Event.UPDATE
        previous = op.target_id if event is Event.UPDATE else None
        return AddedItem(id=memory_id, memory=text, event=event, kind=kind, previous_id=previous,
                         sources=sources, reason=op.reason)  # fmt: skip
    if op.event is Event.INVALIDATE and op.target_id is not None:
        old = await get(conn, tenant_id, op.target_id)
        await end(conn, tenant_id, op.target_id, "invalidated", utcnow(), op.reason)
        return AddedItem(id=old.id, memory=old.memory, event=Event.INVALIDATE, kind=old.kind,
                         sources=sources, reason=op.reason)  # fmt: skip
    return AddedItem(id=op.target_id or "", memory=text, event=Event.NOOP, kind=kind, sources=sources,
                     reason=op.reason)  # fmt: skip


async def end(
    conn: Connection,
    tenant_id: str,
    memory_id: str,
    state: str,
    valid_to: datetime,
    reason: str | None,
    *,
    superseded_by: str | None = None,
) -> None:
    """Close a memory's validity: it leaves recall and stays in the store and its history."""
    old = await get(conn, tenant_id, memory_id, lock=True)
    if old.state.value != "active":
        return
    now = utcnow()
    await conn.execute(
        "UPDATE memories SET state = %s, valid_to = %s, invalidated_at = %s, superseded_by = %s, "
        "updated_at = %s WHERE id = %s",
        (state, valid_to, now, superseded_by, now, memory_id),
    )
    new = await get(conn, tenant_id, superseded_by) if superseded_by else None
    event = Event.UPDATE if superseded_by else Event.INVALIDATE
    await log(conn, tenant_id, old, event, old=old, new=new, reason=reason or state)


async def supersede(conn: Connection, tenant_id: str, ids: Sequence[str], by_id: str, reason: str) -> int:
    await get(conn, tenant_id, by_id)
    for memory_id in ids:
        await conn.execute(
            "INSERT INTO memory_sources SELECT %s, source_id FROM memory_sources WHERE memory_id = %s "
            "ON CONFLICT DO NOTHING",
            (by_id, memory_id),
        )
        await end(conn, tenant_id, memory_id, "superseded", utcnow(), reason, superseded_by=by_id)
    return len(ids)


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
    assignments = ", ".join(f"{key} = %({key})s" for key in values)
    if "index_text" in values:
        assignments += ", tsv = to_tsvector(%(cfg)s::regconfig, %(index_text)s)"
    try:
        async with conn.transaction():  # a savepoint: a clash leaves the outer transaction usable
            await conn.execute(
                f"UPDATE memories SET {assignments} WHERE id = %(id)s", {**values, "id": memory_id, "cfg": cfg}
            )
    except psycopg.errors.UniqueViolation as exc:
        raise ValidationError("another memory in this scope already has exactly this text") from exc
    new = await get(conn, tenant_id, memory_id)
    await log(conn, tenant_id, new, Event.UPDATE, old=old, new=new)
    return new


async def delete(conn: Connection, tenant_id: str, memory_id: str) -> None:
    item = await get(conn, tenant_id, memory_id, lock=True)
    await conn.execute("DELETE FROM memories WHERE id = %s", (memory_id,))
    await log(conn, tenant_id, item, Event.DELETE, old=item)
    await _retract_derived(conn, tenant_id, [memory_id])


async def _retract_derived(conn: Connection, tenant_id: str, gone: Sequence[str]) -> None:
    """Invalidate memories derived only from deleted sources: retraction propagates."""
    if not gone:
        return
    derived = await fetchall(
        conn,
        "SELECT DISTINCT s.memory_id FROM memory_sources s JOIN memories m ON m.id = s.memory_id "
        "WHERE s.source_id = ANY(%s) AND m.tenant_id = %s ORDER BY s.memory_id",
        (list(gone), tenant_id),
    )
    for row in derived:
        alive = await fetchone(
            conn,
            "SELECT 1 FROM memory_sources s JOIN memories m ON m.id = s.source_id WHERE s.memory_id = %s LIMIT 1",
            (row["memory_id"],),
        )
        if alive is None:
            await end(conn, tenant_id, row["memory_id"], "invalidated", utcnow(), "its source was deleted")


async def delete_scope(conn: Connection, tenant_id: str, scope: Scope, hard: bool) -> int:
    where, params = scope_sql(tenant_id, scope)
    rows = await fetchall(conn, f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {where} ORDER BY id FOR UPDATE", params)
    ids = [r["id"] for r in rows]
    if hard:
        await _erase_traces(conn, tenant_id, scope, ids)
    else:
        for row in rows:
            item = item_from_row(row)
            await log(conn, tenant_id, item, Event.DELETE, old=item, reason="delete_all")
    await conn.execute(f"DELETE FROM memories m WHERE {where}", params)
    if not hard:
        await _retract_derived(conn, tenant_id, ids)
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


async def forget(conn: Connection, tenant_id: str, ids: Sequence[str], reason: str, hard: bool) -> int:
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
        await conn.execute("DELETE FROM memories WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, found))
    else:
        await conn.execute(
            "UPDATE memories SET state = 'forgotten', updated_at = %s WHERE tenant_id = %s AND id = ANY(%s)",
            (utcnow(), tenant_id, found),
        )
        for item in items:
            await log(conn, tenant_id, item, Event.DELETE, old=item, reason=reason)
    return len(items)


async def reset(conn: Connection, tenant_id: str) -> None:
    await conn.execute("DELETE FROM memories WHERE tenant_id = %s", (tenant_id,))
    await conn.execute("DELETE FROM history WHERE tenant_id = %s", (tenant_id,))
