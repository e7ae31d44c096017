"""``SQLiteStore.speakers``: a scope's speakers kept at the file's change sequence (``stores.speakers``).

The common search reads one row (``counters.seq``); after writes, the speakers of the rows
written since, through the ``seq`` index; after a removal (a tombstone since, or pruned past
the set's sequence), the scope's rows again. Other processes' writes are seen at once, as
the vector index sees them (``mirror``).
"""

from __future__ import annotations

import sqlite3

from ...models import Scope
from ..speakers import SpeakerCache, key_of, speakers_sql
from .connection import rollback
from .mirror import POSITION_SQL

__all__ = ["read_speakers"]

REMOVED_SINCE = "SELECT 1 FROM tombstones WHERE seq > ? LIMIT 1"
WRITTEN_SINCE = "(SELECT * FROM memories INDEXED BY memories_seq WHERE seq > ?) m"  # the new rows, not the scope's


def read_speakers(conn: sqlite3.Connection, cache: SpeakerCache, tenant_id: str, scope: Scope) -> frozenset[str]:
    """The scope's speakers at the file's current sequence; the caller holds the connection's lock."""
    key = key_of(tenant_id, scope)
    (seq,) = conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
    entry = cache.get(key, seq)
    if entry is not None:
        return entry.names
    try:
        conn.execute("BEGIN")  # position, tombstones and rows as of one moment
        seq, horizon = conn.execute(POSITION_SQL).fetchone()
        old = cache.stale(key)
        caught_up = old is not None and horizon <= old.stamp <= seq
        if old is not None and caught_up and conn.execute(REMOVED_SINCE, (old.stamp,)).fetchone() is None:
            sql, params = speakers_sql(tenant_id, scope, "?", rows=WRITTEN_SINCE)  # only rows came: add theirs
            return cache.put(key, seq, old.names | {r[0] for r in conn.execute(sql, [old.stamp, *params])})
        sql, params = speakers_sql(tenant_id, scope, "?")
        return cache.put(key, seq, (r[0] for r in conn.execute(sql, params)))
    except sqlite3.OperationalError:
        rollback(conn)
        raise  # retried by the caller when the file is busy
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
