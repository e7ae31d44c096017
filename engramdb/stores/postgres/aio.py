"""Async connections for the PostgreSQL store's native async reads and writes.

An async pool belongs to one event loop, and a program may run several in turn (each
``asyncio.run``), so there is one pool per running loop, opened on first use; pools of
loops that have closed are dropped.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ..base import StoreHit
from .errors import driver_errors
from .queries import Plan
from .tx import Connection

R = TypeVar("R")


async def _configure(conn: psycopg.AsyncConnection[Any], *, synchronous_commit: str = "on") -> None:
    from pgvector.psycopg import register_vector_async

    await register_vector_async(conn)
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.execute(f"SET synchronous_commit = {synchronous_commit}")


class AsyncConnections:
    def __init__(self, conninfo: str, *, pool_size: int, synchronous_commit: str = "on") -> None:
        self._conninfo, self._size, self._commit = conninfo, pool_size, synchronous_commit
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}

    async def _pool(self) -> AsyncConnectionPool[Any]:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            self._pools = {lp: p for lp, p in self._pools.items() if not lp.is_closed()}
            pool = AsyncConnectionPool(
                self._conninfo, min_size=1, max_size=self._size, open=False,
                configure=functools.partial(_configure, synchronous_commit=self._commit),
                kwargs={"autocommit": True, "row_factory": dict_row},
            )  # fmt: skip
            await pool.open()
            self._pools[loop] = pool
        return pool

    async def rows(self, plan: Plan) -> list[dict[str, Any]]:
        with driver_errors():
            async with (await self._pool()).connection() as conn:
                if not plan.settings:
                    return await (await conn.execute(plan.sql, plan.params)).fetchall()  # type: ignore[no-any-return]
                async with conn.transaction():
                    for setting in plan.settings:
                        await conn.execute(setting)
                    return await (await conn.execute(plan.sql, plan.params)).fetchall()  # type: ignore[no-any-return]

    async def transaction(self, body: Callable[[Connection], Coroutine[Any, Any, R]]) -> R:
        """Await a write body (``writes``) in one transaction; database errors become StoreError."""
        with driver_errors():
            async with (await self._pool()).connection() as conn, conn.transaction():
                return await body(conn)

    async def outside_transaction(self, sql: str) -> None:
        """Run a statement that must not be in a transaction block (VACUUM)."""
        with driver_errors():
            async with (await self._pool()).connection() as conn:
                await conn.execute(sql)

    async def hits(self, plan: Plan) -> list[StoreHit]:
        return [StoreHit(r["id"], float(r["s"])) for r in await self.rows(plan)]

    async def close(self) -> None:
        """Close the pool of the running loop (the others belong to loops that must close their own)."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()
