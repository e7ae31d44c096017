"""``AsyncMemory``: the same API as ``Memory`` for asyncio code, from the same source.

Every method delegates to the synchronous implementation on a worker thread, so there is
no second copy of any logic to drift. The SQLite store serialises access internally. On a
store with native async reads (PostgreSQL), ``search`` and ``get`` are awaited on the
store's async connections instead, holding no thread: the per-turn path of a chat.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from .config import MemoryConfig
from .embedders import Embedder
from .memory import Memory
from .models import MemoryItem, SearchResult
from .stores import Store

P = ParamSpec("P")
R = TypeVar("R")


def _threaded(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, R]]:
    @functools.wraps(method)
    async def wrapper(self: AsyncMemory, *args: P.args, **kwargs: P.kwargs) -> R:
        import asyncio  # here, not at the top: a CLI call that never awaits skips its import

        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class AsyncMemory:
    """Awaitable twin of ``Memory``; construct it the same way."""

    def __init__(
        self,
        store: str | Store | None = None,
        *,
        embedder: str | Embedder | None = None,
        config: MemoryConfig | None = None,
    ) -> None:
        self.sync = Memory(store, embedder=embedder, config=config)

    add = _threaded(Memory.add)
    _threaded_search = _threaded(Memory.search)
    _threaded_get = _threaded(Memory.get)

    @functools.wraps(Memory.search)
    async def search(self, query: str, **kwargs: Any) -> SearchResult:
        if self.sync.async_reads is not None:
            return await self.sync.asearch(query, **kwargs)
        return await self._threaded_search(query, **kwargs)

    @functools.wraps(Memory.get)
    async def get(self, memory_id: str) -> MemoryItem:
        store = self.sync.async_reads
        if store is not None:
            return await store.aget(self.sync.tenant_id, self.sync._check_id(memory_id))
        return await self._threaded_get(memory_id)

    get_all = _threaded(Memory.get_all)
    update = _threaded(Memory.update)
    delete = _threaded(Memory.delete)
    delete_all = _threaded(Memory.delete_all)
    history = _threaded(Memory.history)
    reset = _threaded(Memory.reset)
    stats = _threaded(Memory.stats)
    import_items = _threaded(Memory.import_items)
    context = _threaded(Memory.context)
    recent_turns = _threaded(Memory.recent_turns)
    sessions = _threaded(Memory.sessions)
    summarize_session = _threaded(Memory.summarize_session)
    expand = _threaded(Memory.expand)
    consolidate = _threaded(Memory.consolidate)
    prune = _threaded(Memory.prune)
    job = _threaded(Memory.job)
    process_pending = _threaded(Memory.process_pending)
    wait_for_jobs = _threaded(Memory.wait_for_jobs)
    _threaded_close = _threaded(Memory.close)

    async def close(self) -> None:
        if self.sync.async_reads is not None:
            await self.sync.async_reads.aclose()
        await self._threaded_close()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
