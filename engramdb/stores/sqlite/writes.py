"""The SQLite store's write steps, each run inside the caller's transaction (``SQLiteStore._write``).

Every function takes the connection and, where it writes rows the vector index mirrors, the
transaction's change sequence ``seq`` (see ``mirror``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ...errors import NotFoundError
from ...models import AddedItem, Event, MemoryItem, Scope, new_id, utcnow
from ..base import NewRecord, Operation, history_row
from ..portable import MEMORY_COLUMNS
from ..sqlreads import scope_sql
from .rows import item_from_row, item_params, to_db_time


def get(conn: sqlite3.Connection, tenant_id: str, memory_id: str) -> MemoryItem:
    row = conn.execute(
        f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ? AND +tenant_id = ?", (memory_id, tenant_id)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no memory with id {memory_id!r}")
    return item_from_row(row)


def log(
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


def insert(conn: sqlite3.Connection, tenant_id: str, seq: int, record: NewRecord) -> None:
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
    log(conn, tenant_id, record.item, Event.ADD, new=record.item)


def add_one(conn: sqlite3.Connection, tenant_id: str, seq: int, record: NewRecord) -> tuple[str, Event]:
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
    insert(conn, tenant_id, seq, record)
    return item.id, Event.ADD


def end(
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
    old = get(conn, tenant_id, memory_id)
    if old.state.value != "active":
        return
    conn.execute(
        "UPDATE memories SET state = ?, valid_to = ?, invalidated_at = ?, superseded_by = ?, updated_at = ?, "
        "seq = ? WHERE id = ?",
        (state, to_db_time(valid_to), to_db_time(utcnow()), superseded_by, to_db_time(utcnow()), seq, memory_id),
    )
    new = get(conn, tenant_id, superseded_by) if superseded_by else None
    event = Event.UPDATE if superseded_by else Event.INVALIDATE
    log(conn, tenant_id, old, event, old=old, new=new, reason=reason or state)


def apply_one(conn: sqlite3.Connection, tenant_id: str, seq: int, op: Operation) -> AddedItem:
    item = op.record.item if op.record is not None else None
    text, kind, sources = (item.memory, item.kind, item.sources) if item else ("", "fact", [])
    if op.event in (Event.ADD, Event.UPDATE) and op.record is not None:
        memory_id, event = add_one(conn, tenant_id, seq, op.record)
        if event is Event.ADD and op.event is Event.UPDATE and op.target_id is not None:
            when = op.record.item.valid_from or utcnow()
            end(conn, tenant_id, seq, op.target_id, "superseded", when, op.reason, superseded_by=memory_id)
            event = Event.UPDATE
        previous = op.target_id if event is Event.UPDATE else None
        return AddedItem(id=memory_id, memory=text, event=event, kind=kind, previous_id=previous,
                         sources=sources, reason=op.reason)  # fmt: skip
    if op.event is Event.INVALIDATE and op.target_id is not None:
        old = get(conn, tenant_id, op.target_id)
        end(conn, tenant_id, seq, op.target_id, "invalidated", utcnow(), op.reason)
        return AddedItem(id=old.id, memory=old.memory, event=Event.INVALIDATE, kind=old.kind,
                         sources=sources, reason=op.reason)  # fmt: skip
    return AddedItem(id=op.target_id or "", memory=text, event=Event.NOOP, kind=kind, sources=sources,
                     reason=op.reason)  # fmt: skip


def retract_derived(conn: sqlite3.Connection, tenant_id: str, seq: int, gone: Sequence[str]) -> None:
    """Invalidate memories derived only from deleted sources: retraction propagates."""
    for source_id in gone:
        derived = [r[0] for r in conn.execute("SELECT memory_id FROM memory_sources WHERE source_id = ?", (source_id,))]
        for memory_id in derived:
            alive = conn.execute(
                "SELECT 1 FROM memory_sources s JOIN memories m ON m.id = s.source_id WHERE s.memory_id = ? LIMIT 1",
                (memory_id,),
            ).fetchone()
            exists = conn.execute("SELECT 1 FROM memories WHERE id = ? AND tenant_id = ?", (memory_id, tenant_id))
            if alive is None and exists.fetchone():
                end(conn, tenant_id, seq, memory_id, "invalidated", utcnow(), "its source was deleted")


def erase_traces(conn: sqlite3.Connection, tenant_id: str, scope: Scope, ids: Sequence[str]) -> None:
    """History, sources and jobs of a scope: what a hard delete removes besides the rows."""
    where, params = scope_sql(tenant_id, scope, "?")
    plain = where.replace("m.", "")
    conn.execute(f"DELETE FROM history WHERE {plain}", params)
    conn.execute(f"DELETE FROM jobs WHERE {plain}", params)
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        conn.execute(f"DELETE FROM history WHERE memory_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM memory_sources WHERE memory_id IN ({marks}) OR source_id IN ({marks})", chunk * 2)


def remove(conn: sqlite3.Connection, seq: int, where: str, params: Sequence[Any]) -> None:
    """Delete rows and their FTS5 entries; each leaves a tombstone for the vector index (see ``mirror``)."""
    rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM memories WHERE {where}", params)]
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        conn.execute(f"DELETE FROM memories_fts WHERE rowid IN ({marks})", chunk)
        conn.execute(f"DELETE FROM memories WHERE rowid IN ({marks})", chunk)
        conn.executemany("INSERT INTO tombstones VALUES (?, ?)", [(seq, r) for r in chunk])
