"""Opaque pagination cursors, the same for every store: the last id of the page, base64 JSON."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

from ..errors import ValidationError
from ..models import MemoryItem, Page


def encode_cursor(memory_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": memory_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except Exception as exc:
        raise ValidationError(f"invalid pagination cursor {cursor!r}") from exc


def every_page(fetch: Callable[[str | None], Page]) -> Iterator[MemoryItem]:
    """Every memory of the pages ``fetch(cursor)`` gives, read one page at a time."""
    page = fetch(None)
    yield from page.results
    while page.next_cursor is not None:
        page = fetch(page.next_cursor)
        yield from page.results
