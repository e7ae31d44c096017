"""What a key may see and do: its users, and memories answered as not found when they are another user's."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool

from ..errors import Forbidden, NotFoundError
from ..memory import Memory
from ..models import ApiKey, MemoryItem


def check_user(key: ApiKey, user_id: str | None) -> None:
    """A key limited to some users must name one of them."""
    if key.user_ids is not None and user_id not in key.user_ids:
        raise Forbidden("this API key may only act for users " + ", ".join(key.user_ids))


def owned(m: Memory, key: ApiKey, memory_id: str) -> MemoryItem:
    """The memory, if this key may see it; another user's memory is answered as not found."""
    return _visible(key, m.get(memory_id))


async def aowned(m: Memory, key: ApiKey, memory_id: str) -> MemoryItem:
    """``owned``, awaited on a store with native async reads (else on a worker thread)."""
    if m.async_reads is None:
        return await run_in_threadpool(owned, m, key, memory_id)
    return _visible(key, await m.async_reads.aget(m.tenant_id, m._check_id(memory_id)))


def _visible(key: ApiKey, item: MemoryItem) -> MemoryItem:
    if key.user_ids is not None and item.user_id not in key.user_ids:
        raise NotFoundError(f"no memory with id {item.id!r}")
    return item
