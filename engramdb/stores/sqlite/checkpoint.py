"""WAL checkpoints beside the writer instead of inside its commits.

In WAL mode a commit appends pages to the ``-wal`` file, and a checkpoint copies them back
into the database file (syncing both). SQLite's own checkpoint runs inside the commit that
crosses its threshold, so one add in every few dozen waited for a thousand pages to be
copied and synced: a third of a one-message add's time on average, and its p99. Here the
writer only counts what it changed, and a thread with its own connection runs a ``PASSIVE``
checkpoint (which waits for no reader or writer) once enough has changed. The writer keeps a
higher threshold of its own, ``FALLBACK_PAGES``, for when that thread falls behind, so the
WAL stays bounded either way.

Durability is unchanged: a commit is as durable as ``synchronous`` makes it whether or not
its pages have been checkpointed; a checkpoint only moves them.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading

from .connection import connect

CHECKPOINT_ROWS = 2_000  # rows changed (postings included) between checkpoints: ~1,000 WAL pages of adds
FALLBACK_PAGES = 8_000  # the writer checkpoints itself beyond this WAL size (~32 MB): the thread fell behind
JOIN_S = 30.0  # a checkpoint in progress at close is left to finish this long


class Checkpointer:
    """Runs ``PASSIVE`` checkpoints of one file on a thread of its own, started on first need."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = 0
        self._seen = 0

    def committed(self, total_changes: int) -> None:
        """After a commit: ``total_changes`` is the writer connection's running count of rows changed."""
        self._changed += total_changes - self._seen
        self._seen = total_changes
        if self._changed < CHECKPOINT_ROWS:
            return
        self._changed = 0
        with self._lock:
            if self._stopping.is_set():
                return
            if self._thread is None or not self._thread.is_alive():  # a forked child inherits a dead thread
                self._thread = threading.Thread(target=self._run, name="engramdb-checkpoint", daemon=True)
                self._thread.start()
        self._due.set()

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while True:
                self._due.wait()
                if self._stopping.is_set():
                    return
                self._due.clear()
                with contextlib.suppress(sqlite3.Error):  # busy or failing: the writer's fallback still bounds the WAL
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._stopping.set()
            thread = self._thread
        self._due.set()
        if thread is not None:
            thread.join(JOIN_S)
