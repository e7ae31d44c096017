"""Connections to one SQLite file: the pragmas that make writes durable and deletes final, and
the translation of SQLite's failures into engramdb's errors (``store_error``, ``driver_errors``).

Erasure: ``secure_delete`` makes SQLite overwrite the content of deleted rows and freed pages
with zeros, but FTS5 keeps the words of its rows in segment pages of its own, which a plain
``DELETE`` only marks as deleted. After a hard delete the lexical index is scrubbed: with
SQLite 3.42 or later the delete itself runs in FTS5's ``secure-delete`` mode (which removes
the entries from the segments; the table's format then needs 3.42+), before that an
``optimize`` merge rewrites the index without them and the old segments are freed (so
zeroed). A ``TRUNCATE`` checkpoint then moves the pages into the file and empties the WAL,
which held the words too.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ...errors import EngramError, StoreError, ValidationError
from ..sqlreads import DISK_FULL, DUPLICATE_TEXT

BUSY_TIMEOUT_S = 30.0
MMAP_BYTES = 1 << 30
RETRY_PAUSE_S = 0.01
FTS_SECURE_DELETE = sqlite3.sqlite_version_info >= (3, 42, 0)
"""Whether this SQLite's FTS5 can remove a deleted row's words from its segments in place."""

T = TypeVar("T")


def connect(path: str, *, read_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # FTS joins touch many rows: map pages, skip syscalls
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA secure_delete=ON")  # deleted content is zeroed, not left in free pages
    if read_only:
        conn.execute("PRAGMA query_only=1")
    return conn


def store_error(exc: sqlite3.Error, *, opening: str | None = None, unique: bool = False) -> EngramError:
    """The engramdb error for a SQLite failure: the one place SQLite's exceptions are translated.

    A full disk says so (the transaction was rolled back). ``opening`` names the file while the
    store opens; ``unique`` marks a write where a uniqueness clash is the caller's duplicate text.
    """
    if unique and isinstance(exc, sqlite3.IntegrityError):
        return ValidationError(DUPLICATE_TEXT)
    if opening is not None:
        return StoreError(f"cannot open SQLite store at {opening!r}: {exc}")
    if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL:
        return StoreError(DISK_FULL)
    return StoreError(f"SQLite error: {exc}")


@contextmanager
def driver_errors(*, opening: str | None = None, unique: bool = False) -> Iterator[None]:
    """Raise SQLite's failures inside the block as ``store_error`` translates them."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise store_error(exc, opening=opening, unique=unique) from exc


def rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction, unless SQLite already has (it rolls back by itself on a full
    disk, and a ROLLBACK then fails with "no transaction is active", hiding the cause)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.DatabaseError):  # the error that made us roll back is the one to report
            conn.execute("ROLLBACK")


def retry(fn: Callable[[], T], *, patience_s: float = BUSY_TIMEOUT_S * 2) -> T:
    """Run ``fn``, again while another process holds the file locked (beyond the busy timeout)."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() > deadline:
                raise store_error(exc) from exc
            time.sleep(RETRY_PAUSE_S)


def scrub_lexical_deletes(conn: sqlite3.Connection) -> None:
    """Inside a hard delete's transaction, before its rows leave ``memories_fts``: make FTS5
    remove their words from the segments (SQLite 3.42+; ``purge_lexical`` does it otherwise)."""
    if FTS_SECURE_DELETE:
        conn.execute("INSERT INTO memories_fts (memories_fts, rank) VALUES ('secure-delete', 1)")


def purge_lexical(conn: sqlite3.Connection) -> None:
    """After a hard delete committed: no copy of its words left in the index, the file or the WAL.

    Secure-delete mode is switched off again, so ordinary deletes and updates (whose text
    history keeps anyway) stay as cheap as before.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if FTS_SECURE_DELETE:
            conn.execute("INSERT INTO memories_fts (memories_fts, rank) VALUES ('secure-delete', 0)")
        else:
            conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
