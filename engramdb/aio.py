"""``AsyncMemory``: the same API as ``Memory`` for asyncio code, from the same source.

It is the one async dispatch of the project: the REST server and the chat proxy hold one
(``for_tenant`` views included) and await it, so a rule below holds for every async caller.

Every method delegates to the synchronous implementation on a worker thread, so there is
no second copy of any logic to drift. The SQLite store serialises access internally. On a
store with native async access (PostgreSQL), the per-turn path of a chat — ``search``,
``get``, ``add``, ``update``, ``delete``, ``delete_all`` — awaits the store's async
connections instead: the validation and planning steps ``Memory`` runs (``planner``,
``retrieval.recall``) run inline, embedding (CPU) on a worker thread, and the store's
transactions are the same bodies the sync API runs (``stores.postgres.tx``). Deriving facts
after an add (rules, or an LLM's reply) runs on a worker thread, as before; the messages are
written, durable and searchable first.

``search`` picks by what the embedder declares (``Embedder.blocking``): one that blocks
(network I/O, a large model) always runs on a worker thread; otherwise the query's
embedding is a fraction of a millisecond of CPU, so a search on SQLite runs inline (a
thread hop would cost more than the search) and one on PostgreSQL awaits its reads.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from .config import MemoryConfig
from .embedders import Embedder
from .errors import ConfigurationError
from .ingest import MessagesInput, make_scope
from .memory import Memory
from .models import AddResult, DeleteResult, MemoryItem, SearchResult
from .planner import context_query, derive_first, embed_records, finish_add, plan_add, plan_change
from .stores import Store
from .stores.base import AsyncWrites

_BATCH = 500  # memories read per worker-thread hop by the async iterators
P = ParamSpec("P")
R = TypeVar("R")
# Memory.add's keyword defaults, for its steps (which take every option explicitly)
_ADD_DEFAULTS: dict[str, Any] = {
    name: p.default
    for name, p in inspect.signature(Memory.add).parameters.items()
    if p.kind is p.KEYWORD_ONLY and name != "wait"
}


def _mirrors(
    method: Callable[Concatenate[Memory, P], R],
) -> Callable[[Callable[..., Coroutine[Any, Any, R]]], Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, R]]]:
    """Give a hand-dispatched coroutine ``Memory``'s signature and docs, as a coroutine.

    ``functools.wraps`` alone would tell a type checker the method returns ``Memory``'s
    result directly; this keeps the parameters and makes the result awaitable.
    """

    def mirror(
        impl: Callable[..., Coroutine[Any, Any, R]],
    ) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, R]]:
        return functools.update_wrapper(impl, method)

    return mirror


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

    @classmethod
    def wrap(cls, memory: Memory) -> AsyncMemory:
        """The awaitable face of an open ``Memory`` (same store, embedder and tenant)."""
        view = object.__new__(cls)
        view.sync = memory
        return view

    def for_tenant(self, tenant_id: str) -> AsyncMemory:
        """A view of the same store and embedder confined to another tenant (used by the server)."""
        return AsyncMemory.wrap(self.sync.for_tenant(tenant_id))

    @property
    def tenant_id(self) -> str:
        return self.sync.tenant_id

    _threaded_add = _threaded(Memory.add)
    _threaded_update = _threaded(Memory.update)
    _threaded_delete = _threaded(Memory.delete)
    _threaded_delete_all = _threaded(Memory.delete_all)
    _threaded_search = _threaded(Memory.search)
    _threaded_get = _threaded(Memory.get)

    @_mirrors(Memory.search)
    async def search(self, query: str, **kwargs: Any) -> SearchResult:
        if self.sync.embedder.blocking:
            return await self._threaded_search(query, **kwargs)
        if self.sync.async_reads is not None:
            return await self.sync.asearch(query, **kwargs)
        return self.sync.search(query, **kwargs)  # a few ms of CPU: less than a thread hop

    @_mirrors(Memory.get)
    async def get(self, memory_id: str) -> MemoryItem:
        store = self.sync.async_reads
        if store is not None:
            return await store.aget(self.sync.tenant_id, self.sync._check_id(memory_id))
        return await self._threaded_get(memory_id)

    @_mirrors(Memory.add)
    async def add(self, messages: MessagesInput, **kwargs: Any) -> AddResult:
        if self.sync.async_writes is None:
            return await self._threaded_add(messages, **kwargs)
        return await _native_add(self.sync, messages, **kwargs)

    @_mirrors(Memory.update)
    async def update(
        self, memory_id: str, text: str | None = None, *, metadata: dict[str, Any] | None = None
    ) -> MemoryItem:
        if self.sync.async_writes is None:
            return await self._threaded_update(memory_id, text, metadata=metadata)
        return await _native_update(self.sync, memory_id, text, metadata=metadata)

    @_mirrors(Memory.delete)
    async def delete(self, memory_id: str) -> DeleteResult:
        if self.sync.async_writes is None:
            return await self._threaded_delete(memory_id)
        return await _native_delete(self.sync, memory_id)

    @_mirrors(Memory.delete_all)
    async def delete_all(self, **kwargs: Any) -> DeleteResult:
        if self.sync.async_writes is None:
            return await self._threaded_delete_all(**kwargs)
        return await _native_delete_all(self.sync, **kwargs)

    get_all = _threaded(Memory.get_all)
    history = _threaded(Memory.history)
    reset = _threaded(Memory.reset)
    stats = _threaded(Memory.stats)
    scopes = _threaded(Memory.scopes)
    import_items = _threaded(Memory.import_items)
    context = _threaded(Memory.context)
    recent_turns = _threaded(Memory.recent_turns)
    sessions = _threaded(Memory.sessions)
    summarize_session = _threaded(Memory.summarize_session)
    expand = _threaded(Memory.expand)
    consolidate = _threaded(Memory.consolidate)
    prune = _threaded(Memory.prune)
    job = _threaded(Memory.job)
    jobs = _threaded(Memory.jobs)
    retry_job = _threaded(Memory.retry_job)
    process_pending = _threaded(Memory.process_pending)
    wait_for_jobs = _threaded(Memory.wait_for_jobs)
    _threaded_close = _threaded(Memory.close)

    async def export(self) -> AsyncIterator[MemoryItem]:
        """``Memory.export`` as an async iterator: the store is read a batch at a time on a worker thread."""
        async for item in _batched(self.sync.export()):
            yield item

    async def iter_all(self, **kwargs: Any) -> AsyncIterator[MemoryItem]:
        """``Memory.iter_all`` as an async iterator (a page at a time on a worker thread)."""
        async for item in _batched(self.sync.iter_all(**kwargs)):
            yield item

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


async def _batched(items: Iterator[MemoryItem]) -> AsyncIterator[MemoryItem]:
    import asyncio

    while batch := await asyncio.to_thread(list, itertools.islice(items, _BATCH)):
        for item in batch:
            yield item


# --- native async writes: Memory's own steps, with the store's transactions awaited ---------------


def _writes(m: Memory) -> AsyncWrites:
    if m.async_writes is None:
        raise ConfigurationError("this store has no native async writes; use AsyncMemory")
    return m.async_writes


async def _native_add(m: Memory, messages: MessagesInput, *, wait: bool | None = None, **kwargs: Any) -> AddResult:
    """``Memory.add`` on a store with native async writes (see the module's docstring)."""
    import asyncio

    store = _writes(m)
    plan = plan_add(m.config, messages, **{**_ADD_DEFAULTS, **kwargs})
    if not plan.items:
        return AddResult(results=[])
    context = context_query(m.config, m.tenant_id, plan)
    before = [t.memory for t in await store.arecent(context, limit=m.config.context_turns)] if context else []
    records, job = await asyncio.to_thread(embed_records, m.config, m.embedder, plan, before)
    derived = await asyncio.to_thread(derive_first, m._runner, m.tenant_id, plan, records, job) if job else None
    if derived is None or job is None:
        outcomes, applied = await store.aadd(m.tenant_id, records, job=job), None
    else:  # one transaction: the messages and what they say
        outcomes, applied = await store.aadd_derived(m.tenant_id, records, job=job, derived=derived)
    finish = (m._runner, m.config, m.tenant_id, plan, outcomes, job, wait, derived, applied)
    if job is None or applied is not None:
        return finish_add(*finish)
    return await asyncio.to_thread(finish_add, *finish)


async def _native_update(
    m: Memory, memory_id: str, text: str | None = None, *, metadata: dict[str, Any] | None = None
) -> MemoryItem:
    import asyncio

    store = _writes(m)
    memory_id, change = await asyncio.to_thread(plan_change, m.config, m.embedder, memory_id, text, metadata)
    return await store.aupdate(m.tenant_id, memory_id, change)


async def _native_delete(m: Memory, memory_id: str) -> DeleteResult:
    await _writes(m).adelete(m.tenant_id, m._check_id(memory_id))
    return DeleteResult(deleted=1, message="memory deleted")


async def _native_delete_all(
    m: Memory,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    hard: bool = False,
) -> DeleteResult:
    scope = make_scope(user_id, agent_id, session_id, required=True)
    count = await _writes(m).adelete_scope(m.tenant_id, scope, hard=hard)
    return DeleteResult(deleted=count, message=f"{count} memories deleted")
