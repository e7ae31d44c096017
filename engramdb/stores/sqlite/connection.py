"""Connections to one SQLite file: the pragmas that make writes durable and deletes final, and
the translation of SQLite's failures into engramdb's errors (``store_error``, ``driver_errors``).

Erasure: ``secure_delete`` makes SQLite overwrite the content of deleted rows and freed pages
with zeros. The lexical index holds no words, only their hashes (``stores.lexicon``), so the
memories rows are the only place a memory's words live. After a hard delete a ``TRUNCATE``
checkpoint moves the pages into the file and empties the WAL, which held the words too.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ...errors import EngramError, StoreError, ValidationError
from ..sqlreads import DISK_FULL, DUPLICATE_TEXT

BUSY_TIMEOUT_S = 30.0
MMAP_BYTES = 1 << 40  # as much of the file as SQLite maps (its build caps it, at 2 GB by default)
RETRY_PAUSE_S = 0.01

T = TypeVar("T")


def connect(path: str, *, read_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # postings joins touch many rows: map pages, skip syscalls
    if not _has_ln(conn):  # a build without SQLite's math functions: BM25 needs the natural log
        conn.create_function("ln", 1, math.log, deterministic=True)
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA secure_delete=ON")  # deleted content is zeroed, not left in free pages
    if read_only:
        conn.execute("PRAGMA query_only=1")
    return conn


def _has_ln(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT ln(1)")
    except sqlite3.OperationalError:
        return False
    return True


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


def purge_deleted(conn: sqlite3.Connection) -> None:
    """After a hard delete committed: no copy of its words left in the file or the WAL."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
