"""One body per write transaction, for the sync API and the native async one.

Every write of the PostgreSQL store is an ``async def`` over a connection with psycopg's
async surface (``await conn.execute(...)``, ``await cur.fetchall()``). ``AsyncMemory`` and
the server await it on an ``AsyncConnection``. ``Memory`` runs the very same coroutine on a
sync connection dressed as an async one: none of its awaits ever suspends, so
``semantics.run`` drives it to its end in one step, with no event loop. The SQL of each write exists once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import psycopg


class Cursor(Protocol):
    """What the write bodies use of a cursor (psycopg's AsyncCursor has it)."""

    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the write bodies use of a connection (psycopg's AsyncConnection has it)."""

    async def execute(self, query: Any, params: Any = None) -> Any: ...

    def cursor(self) -> Any: ...

    def transaction(self) -> Any: ...


class SyncCursor:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def executemany(self, query: Any, params_seq: Sequence[Any], *, returning: bool = False) -> None:
        self._cursor.executemany(query, params_seq, returning=returning)

    def nextset(self) -> bool | None:
        return self._cursor.nextset()

    async def __aenter__(self) -> SyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()


class SyncConnection:
    """A sync psycopg connection behind the async surface of ``Connection``."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    async def execute(self, query: Any, params: Any = None) -> SyncCursor:
        return SyncCursor(self._conn.execute(query, params))

    def cursor(self) -> SyncCursor:
        return SyncCursor(self._conn.cursor())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        with self._conn.transaction():
            yield
