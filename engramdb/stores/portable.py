"""Whole-store copies between backends: the tables, their keys, and a canonical row form.

``engramdb migrate`` streams every table out of one store and into another. Rows travel as
plain dicts of Python values (datetimes, JSON objects, float32 vectors); each store converts
them from and to its own column types. The canonical form gives both sides the same checksum
for the same data, whatever the backend.

A live store is copied from one snapshot (``Snapshots``): every table as of the same moment,
so history never names a memory the copy lacks, however busy the writers are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..filters import format_datetime


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]  # the primary key: rows stream in its byte order
    columns: tuple[str, ...]
    datetimes: tuple[str, ...] = ()
    json: tuple[str, ...] = ()


ITEM_COLUMNS = (
    "id", "kind", "text", "hash", "user_id", "agent_id", "session_id", "metadata", "role", "speaker",
    "source_message_id", "source_session_id", "created_at", "updated_at", "occurred_at", "valid_from", "valid_to",
    "invalidated_at", "superseded_by", "state", "importance", "access_count", "last_accessed_at", "expires_at",
    "subject", "slot", "sources", "merged_from",
)  # fmt: skip
"""The columns of a memories row that make a MemoryItem, in both stores."""
ITEM_TIMES = (
    "created_at", "updated_at", "occurred_at", "valid_from", "valid_to", "invalidated_at", "last_accessed_at",
    "expires_at",
)  # fmt: skip
MEMORY_COLUMNS = ", ".join(ITEM_COLUMNS)  # for SELECT lists
_MEMORY = ("tenant_id", *ITEM_COLUMNS, "index_text", "embedding")

TABLES = (
    Table("memories", ("id",), _MEMORY, ITEM_TIMES, ("metadata", "sources", "merged_from")),
    Table("memory_sources", ("source_id", "memory_id"), ("memory_id", "source_id")),
    Table(
        "history", ("id",),
        ("id", "memory_id", "tenant_id", "user_id", "agent_id", "session_id", "event", "old_memory", "new_memory",
         "old_metadata", "new_metadata", "reason", "created_at"),
        ("created_at",), ("old_metadata", "new_metadata"),
    ),
    Table(
        "jobs", ("id",),
        ("id", "tenant_id", "user_id", "agent_id", "session_id", "state", "payload", "attempts", "error", "result",
         "created_at", "updated_at"),
        ("created_at", "updated_at"), ("payload", "result"),
    ),
    Table(
        "api_keys", ("id",),
        ("id", "hash", "tenant_id", "name", "user_ids", "admin", "created_at", "revoked_at"),
        ("created_at", "revoked_at"), ("user_ids",),
    ),
)  # fmt: skip
BY_NAME = {table.name: table for table in TABLES}


def page_sql(spec: Table, mark: str, *, after: bool) -> str:
    """The next page of a table in key order (keyset pagination), with the driver's parameter
    ``mark`` ("?" or "%s"): the key values of the last row seen (``after``), then the page size."""
    key = ", ".join(spec.key)
    where = f"WHERE ({key}) > ({', '.join(mark for _ in spec.key)})" if after else ""
    return f"SELECT {', '.join(spec.columns)} FROM {spec.name} {where} ORDER BY {key} LIMIT {mark}"


Fetch = Callable[[str, Sequence[Any]], list[Any]]  # SQL and parameters → rows indexed by column name
Convert = Callable[[Table, Any], dict[str, Any]]  # a driver's row → a portable dict


class TableReader:
    """Row counts and key-ordered pages of the portable tables, over one ``fetch`` function: the
    store's own reads, or one connection held in a single snapshot for a whole copy."""

    def __init__(self, fetch: Fetch, mark: str, convert: Convert) -> None:
        self._fetch, self._mark, self._convert = fetch, mark, convert

    def count_rows(self, table: str) -> int:
        return int(self._fetch(f"SELECT count(*) AS n FROM {BY_NAME[table].name}", [])[0]["n"])

    def iter_rows(self, table: str, *, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        spec = BY_NAME[table]
        last: tuple[Any, ...] | None = None
        while True:
            rows = self._fetch(page_sql(spec, self._mark, after=last is not None), [*(last or ()), batch])
            if not rows:
                return
            last = tuple(rows[-1][k] for k in spec.key)
            yield [self._convert(spec, row) for row in rows]


@runtime_checkable
class Snapshots(Protocol):
    """A store that can be read whole as of one moment while others write to it."""

    def snapshot(self) -> AbstractContextManager[TableReader]:
        """Every table as it was when the context opened (SQLite: a WAL read transaction;
        PostgreSQL: a REPEATABLE READ transaction), until it closes."""


def canonical(value: Any) -> Any:
    """One representation per value, whichever store it came from."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(value, dtype=np.float32).tobytes()).hexdigest()
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Checksum:
    """Count and SHA-256 of a table's rows in key order."""

    def __init__(self) -> None:
        self.count = 0
        self._hash = hashlib.sha256()

    def update(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            values = [canonical(row[c]) for c in table.columns]
            self._hash.update(json.dumps(values, sort_keys=True, separators=(",", ":")).encode())
            self._hash.update(b"\n")
            self.count += 1

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()
