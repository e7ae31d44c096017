"""Whole-store copies (``engramdb migrate``) on the SQLite side: portable rows in and out, and
a read of every table from one snapshot.

The snapshot is a read transaction on a connection of its own: in WAL mode it sees the file
as of its first read while writers go on committing, so a copy of a live store is the store
at one moment.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..portable import BY_NAME, Table, TableReader
from .connection import connect, driver_errors, retry, rollback
from .rows import from_db_time, to_db_time
from .writes import LEXICAL_COLUMNS, reindex


def portable_row(spec: Table, row: sqlite3.Row) -> dict[str, Any]:
    out: dict[str, Any] = {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite3.Row)
    for column in spec.datetimes:
        out[column] = from_db_time(out[column])
    for column in spec.json:
        out[column] = json.loads(out[column]) if out[column] is not None else None
    if "embedding" in out:
        out["embedding"] = np.frombuffer(out["embedding"], dtype=np.float32)
    if "admin" in out:
        out["admin"] = bool(out["admin"])
    return out


def db_row(spec: Table, row: dict[str, Any]) -> dict[str, Any]:
    out = {column: row[column] for column in spec.columns}
    for column in spec.datetimes:
        out[column] = to_db_time(out[column])
    for column in spec.json:
        out[column] = json.dumps(out[column]) if out[column] is not None else None
    if "embedding" in out:
        out["embedding"] = np.ascontiguousarray(out["embedding"], dtype=np.float32).tobytes()
    if "admin" in out:
        out["admin"] = int(out["admin"])
    return out


def write_rows(conn: sqlite3.Connection, seq: int, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert portable rows in the caller's transaction; memories are also indexed (``lexicon``)."""
    spec = BY_NAME[table]
    marks = ", ".join(f":{c}" for c in spec.columns)
    for row in rows:
        params = db_row(spec, row)
        if spec.name != "memories":
            conn.execute(f"INSERT INTO {spec.name} ({', '.join(spec.columns)}) VALUES ({marks})", params)
            continue
        rowid = conn.execute(
            f"INSERT INTO memories ({', '.join(spec.columns)}, seq) VALUES ({marks}, :seq)", {**params, "seq": seq}
        ).lastrowid
        reindex(conn, conn.execute(f"SELECT {LEXICAL_COLUMNS} FROM memories WHERE rowid = ?", (rowid,)).fetchall())


def fetch(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    with driver_errors():
        return retry(lambda: conn.execute(sql, params).fetchall())


@contextmanager
def snapshot_of(path: str) -> Iterator[TableReader]:
    """Every table of the file at ``path`` as of the moment this opens, until it closes."""
    with driver_errors():
        conn = connect(path, read_only=True)
    try:
        conn.execute("BEGIN")
        fetch(conn, "SELECT count(*) FROM meta", [])  # a deferred transaction takes its snapshot at the first read
        yield TableReader(lambda sql, params: fetch(conn, sql, params), "?", portable_row)
    finally:
        rollback(conn)
        conn.close()
