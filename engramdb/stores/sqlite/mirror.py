"""The exact vector index (``stores.vectors``) kept at the SQLite file's change sequence, and the
snapshot of it beside the file (``<file>-vectors``).

Catching up. Every write bumps ``counters.seq`` and stamps the rows it writes with it; a
removed row leaves a tombstone ``(seq, rowid)``. An index at sequence *s* catches up by
dropping the tombstones after *s* and re-reading the rows after *s*, in one read
transaction, so other processes' writes are seen at once.

Which snapshot is ours. A snapshot carries the file's ``store_uid``, the embedder, its
sequence and a random token that the database records when the snapshot is written
(``meta.vectors_token``). A file restored from a backup has the same ``store_uid`` and soon
passes the snapshot's sequence, but it branched off before the snapshot was taken, so it
holds an older token: the snapshot is ignored and the index rebuilt. A snapshot older than
the backup carries the backup's own token and describes a prefix of its history, so it
stays valid.

Pruning tombstones with several processes on one file. A tombstone is only needed by an
index older than it, and a process cannot know how far other processes' indexes have got.
So pruning moves a horizon (``counters.tombstones_pruned``) instead of waiting for all of
them: every tombstone at or below the horizon is gone, and an index older than the horizon
(a process's, or a snapshot) never catches up from tombstones; it reloads the snapshot
(which has passed the horizon) or rebuilds from the rows. The horizon moves to a snapshot's
sequence when that snapshot is written, so new and lagging processes load it and lose
nothing; for a store too small to keep a snapshot it moves to a process's own sequence when
that process closes or has seen many deletes, and a lagging process rebuilds in milliseconds.

Erasing. A hard delete rewrites the snapshot, or removes it in a process with no index; it
also records its sequence (``counters.erased``), and a save taken before that sequence is
never published, as it would put the erased rows' ids and vectors back beside the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import StoreError
from ..snapshot_file import read_header
from ..vectors import RowBlock, VectorIndex
from .connection import retry, rollback, store_error
from .rows import from_db_time

SNAPSHOT_MIN_ROWS = 5_000  # below this the vector index rebuilds from the file in milliseconds
RESAVE_FRACTION = 10  # a snapshot is rewritten once more than this share of its rows changed
PRUNE_AFTER_TOMBSTONES = 10_000  # deletes seen before a long-running process prunes on its own
STREAM_ROWS = 4096
INDEX_COLUMNS = "rowid, id, tenant_id, user_id, agent_id, session_id, state, expires_at, embedding, kind"
POSITION_SQL = (
    "SELECT max(CASE WHEN name = 'seq' THEN value END), "
    "coalesce(max(CASE WHEN name = 'tombstones_pruned' THEN value END), 0) FROM counters"
)
OVERTAKEN_SQL = (  # a snapshot older than either is never published
    "SELECT coalesce(max(value), 0) FROM counters WHERE name IN ('tombstones_pruned', 'erased')"
)

Write = Callable[[], AbstractContextManager[tuple[sqlite3.Connection, int]]]


class VectorMirror:
    """The in-memory index of one file, its snapshot, and the pruning of its tombstones.

    ``lock`` guards the index; it is taken before the connection's lock, never after, and
    ``saves`` (one snapshot written at a time) before both.
    """

    def __init__(
        self, conn: sqlite3.Connection, conn_lock: threading.RLock, path: Path | None, write: Write,
        check_open: Callable[[], None],
    ) -> None:  # fmt: skip
        self.lock = threading.RLock()
        self._conn, self._conn_lock, self._path = conn, conn_lock, path
        self._write, self._check_open = write, check_open
        self._index: VectorIndex | None = None
        self._unsaved = 0  # index rows changed since the snapshot on disk
        self._gone_since_prune = 0
        self._saving: threading.Thread | None = None
        self.saves = threading.RLock()
        self._closed = False

    def synced(self) -> VectorIndex:
        """The index at the file's change sequence (cheap when it is current)."""
        with self.lock:
            with self._conn_lock:
                self._check_open()
                index, changed = retry(self._catch_up)
            if changed >= SNAPSHOT_MIN_ROWS and changed > len(index) // RESAVE_FRACTION:
                self._save_soon()  # a rebuild, or a long catch-up: spare the next process from repeating it
            elif self._gone_since_prune >= PRUNE_AFTER_TOMBSTONES:
                self._prune_own()
            return index

    def _save_soon(self) -> None:
        """Write the snapshot on a thread of its own: the search that rebuilt the index returns
        first, where writing a large snapshot would have doubled its wait, and the searches and
        writes after it hold the lock only while the snapshot is taken (``save``)."""
        if self._saving is not None and self._saving.is_alive():
            return

        def save() -> None:
            _yield_cpu()
            self.save(stale_only=True)

        self._saving = threading.Thread(target=save, name="engramdb-snapshot", daemon=True)
        self._saving.start()

    def _catch_up(self) -> tuple[VectorIndex, int]:
        """One read transaction: position, tombstones and rows seen as of the same moment.

        Returns the index and how many rows it re-read."""
        conn = self._conn
        try:
            index = self._index
            if index is not None:  # a search on a current index, the common case: one statement
                (seq,) = conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
                if index.seq == seq:
                    return index, 0
            conn.execute("BEGIN")
            seq, horizon = conn.execute(POSITION_SQL).fetchone()
            if index is not None and index.seq == seq:
                return index, 0
            if index is None or index.seq < horizon:  # the tombstones it would need are pruned
                index = self._index = self._load(conn, seq, horizon) or VectorIndex(_dimension(conn))
                self._unsaved = 0
            gone = [r[0] for r in conn.execute("SELECT row FROM tombstones WHERE seq > ?", (index.seq,))]
            index.remove(gone)
            changed = 0
            span = (index.seq, seq)
            if len(index) == 0:  # a rebuild: every row of the file, counted on the seq index alone
                (rows,) = conn.execute("SELECT count(*) FROM memories WHERE seq > ? AND seq <= ?", span).fetchone()
                index.reserve(rows)
            cursor = conn.execute(f"SELECT {INDEX_COLUMNS} FROM memories WHERE seq > ? AND seq <= ?", span)
            cursor.row_factory = None  # plain tuples: a fresh process reads every row of the file here
            while chunk := cursor.fetchmany(STREAM_ROWS):  # streamed: a rebuild never holds the file twice
                index.upsert_block(_block(chunk, index.dimension))
                changed += len(chunk)
            index.seq = seq
            self._unsaved += changed + len(gone)
            self._gone_since_prune += len(gone)
            return index, changed
        except sqlite3.OperationalError:
            rollback(conn)
            raise  # retried when the file is busy
        except sqlite3.DatabaseError as exc:
            rollback(conn)
            raise store_error(exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _load(self, conn: sqlite3.Connection, seq: int, horizon: int) -> VectorIndex | None:
        if self._path is None or not self._path.exists():
            return None
        return VectorIndex.load(self._path, identity=_identity(conn), max_seq=seq, min_seq=horizon)

    def save(self, *, closing: bool = False, stale_only: bool = False) -> None:
        """Write the snapshot, record its token, prune the tombstones it has passed.

        The index's lock is held only while the snapshot is taken (``VectorIndex.snapshot``);
        a million rows then take seconds to write, which searches and adds no longer wait on.
        ``saves`` keeps to one save at a time, and ``close`` waits for a save under way.
        ``stale_only``: a background save, which another may have done the work of meanwhile.

        Best effort: the snapshot is a cache, so a full disk or a read-only folder is no error.
        The file is written before the database takes its token, so a crash in between
        leaves a snapshot that no database names (ignored), never a wrong one.
        """
        with self.saves:
            with self.lock:
                index = self._index
                if self._path is None or index is None or len(index) < SNAPSHOT_MIN_ROWS:
                    return
                if self._closed and not closing:  # a save started late: the connection is gone
                    return
                if stale_only and self._unsaved == 0 and self._path.exists():
                    return  # a save that was waiting for this one found nothing left to write
                token = uuid.uuid4().hex
                with self._conn_lock:
                    identity = {**_identity(self._conn), "token": token}
                snapshot, taken = index.snapshot(identity), self._unsaved
            try:
                snapshot.write(self._path)
            except OSError:
                return
            try:
                with self._write() as (conn, _):
                    if conn.execute(OVERTAKEN_SQL).fetchone()[0] > snapshot.seq:
                        # pruned past it meanwhile (no reader would take it), or rows were erased
                        # after it was taken (``writes.mark_erased``: it holds their vectors):
                        # removed if the file is still this save's, not a newer one's
                        if _token_of(self._path) == token:
                            self._path.unlink(missing_ok=True)
                        return
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('vectors_token', ?)", (token,))
                    self._prune(conn, snapshot.seq)
            except StoreError:
                return  # the database did not take the token: the snapshot is ignored, nothing is pruned
            with self.lock:  # only now is the snapshot the file's: until then, closing tries again
                self._unsaved = max(0, self._unsaved - taken)

    def _prune(self, conn: sqlite3.Connection, upto: int) -> None:
        conn.execute("DELETE FROM tombstones WHERE seq <= ?", (upto,))
        conn.execute("UPDATE counters SET value = max(value, ?) WHERE name = 'tombstones_pruned'", (upto,))
        self._gone_since_prune = 0

    def _prune_own(self) -> None:
        """Prune up to this index: through a snapshot when the store keeps one, else directly."""
        index = self._index
        if index is None:
            return
        self._gone_since_prune = 0  # tried now; if it fails, not again on every search but after as many deletes
        if len(index) >= SNAPSHOT_MIN_ROWS and self._path is not None:
            self._save_soon()  # a search holds the lock here: the save runs beside it
            return
        try:
            with self._write() as (conn, _):
                self._prune(conn, index.seq)
        except StoreError:
            pass  # pruning is housekeeping; the next process to close tries again

    def rewrite_snapshot(self) -> None:
        """After a hard delete: the snapshot holds the rows' ids and vectors, so it goes or is redone."""
        with self.saves:
            with self.lock:
                if self._path is None or not self._path.exists():
                    return
                self._path.unlink(missing_ok=True)
                if self._index is None:
                    return
                self.synced()
            self.save()

    def close(self) -> None:
        """Save the snapshot when much changed since the last one; prune what this index has passed."""
        with self.saves:  # a save under way finishes first
            with self.lock:
                self._closed = True
                index = self._index
                if index is None:
                    return
                large = len(index) >= SNAPSHOT_MIN_ROWS
                if not large and self._has_tombstones(index.seq):
                    self._prune_own()
                resave = large and self._unsaved > max(SNAPSHOT_MIN_ROWS, len(index) // RESAVE_FRACTION)
            if resave:
                self.save(closing=True)

    def _has_tombstones(self, upto: int) -> bool:
        with self._conn_lock:
            rows = retry(lambda: self._conn.execute("SELECT 1 FROM tombstones WHERE seq <= ? LIMIT 1", (upto,)))
            return rows.fetchone() is not None


SAVER_NICENESS = 10  # the snapshot is a cache: on a machine with few cores, searches come first


def _yield_cpu() -> None:
    """Lower this thread's CPU priority (Linux schedules threads one by one; elsewhere the call
    would name a process, so it is left alone)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            me = threading.get_native_id()
            if os.getpriority(os.PRIO_PROCESS, me) < SAVER_NICENESS:  # never raised, only lowered
                os.setpriority(os.PRIO_PROCESS, me, SAVER_NICENESS)


def _token_of(path: Path) -> str | None:
    try:
        return read_header(path)[0].get("token")  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _identity(conn: sqlite3.Connection) -> dict[str, Any]:
    """What a snapshot must match to be this file's: its identity, embedder and latest token."""
    meta = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM meta")}
    return {"store_uid": meta.get("store_uid"), "embedder": meta.get("embedder"), "token": meta.get("vectors_token")}


def _dimension(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'dimension'").fetchone()
    return int(row[0]) if row else 0


def _block(rows: list[tuple[Any, ...]], dimension: int) -> RowBlock:
    """Rows of the file as one block, column by column: a fresh process converts every row of
    the file through here, so no object is made per row and the vectors are read in one go."""
    rowid, memory_id, tenant_id, user_id, agent_id, session_id, state, expires_at, embedding, kind = zip(
        *rows, strict=True
    )
    expires = [_epoch(from_db_time(e)) if e else float("inf") for e in expires_at]
    matrix = np.frombuffer(b"".join(embedding), dtype=np.float32).reshape(len(rows), dimension)
    return RowBlock(list(rowid), list(memory_id), list(tenant_id), list(user_id), list(agent_id), list(session_id),
                    [s == "active" for s in state], expires, matrix, [k == "episode" for k in kind])  # fmt: skip


def _epoch(when: datetime | None) -> float:
    return when.timestamp() if when is not None else float("inf")
