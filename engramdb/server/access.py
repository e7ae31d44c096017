"""What a key may see and do: its users, and memories answered as not found when they are another user's."""

from __future__ import annotations

from ..aio import AsyncMemory
from ..errors import Forbidden, NotFoundError
from ..models import ApiKey, MemoryItem


def check_user(key: ApiKey, user_id: str | None) -> None:
    """A key limited to some users must name one of them."""
    if key.user_ids is not None and user_id not in key.user_ids:
        raise Forbidden("this API key may only act for users " + ", ".join(key.user_ids))


async def owned(m: AsyncMemory, key: ApiKey, memory_id: str) -> MemoryItem:
    """The memory, if this key may see it; another user's memory is answered as not found."""
    item = await m.get(memory_id)
    if key.user_ids is not None and item.user_id not in key.user_ids:
        raise NotFoundError(f"no memory with id {item.id!r}")
    return item
