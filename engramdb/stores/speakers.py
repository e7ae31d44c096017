"""The names of a scope's speakers, read once and kept: what ``Store.speakers`` returns.

Search asks for them before every dense query (``retrieval.speakers``), so the read must cost
next to nothing. A scope's names change only when a row is inserted or removed: a speaker is
a column of the message, never updated, and a message superseded or forgotten still said what
it said (every state counts). So a cached set stays right as long as no row came or went:

- SQLite stamps every row with the file's change sequence (``counters.seq``) and leaves a
  tombstone for each removed one (``sqlite.mirror``): a set at sequence *s* catches up with the
  speakers of the rows after *s*, or is read again if a row was removed since;
- PostgreSQL has no such sequence: a process adds the speakers of what it inserts to the sets
  it keeps, forgets them all when it removes a row, and reads a set again after
  ``TTL_SECONDS``, for what other processes wrote meanwhile.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..models import Event, Scope
from .base import NewRecord, Operation
from .sqlreads import scope_sql

__all__ = ["TTL_SECONDS", "SpeakerCache", "acached", "cached", "key_of", "said_by", "speakers_sql"]

MAX_SCOPES = 10_000  # sets kept before the cache starts afresh: a name is a few bytes, a set a handful
TTL_SECONDS = 5.0  # PostgreSQL: how long another process's new speaker may go unseen (a query keeps its name)

R = TypeVar("R")
INSERTS = (Event.ADD, Event.UPDATE)  # the events whose operation inserts its record (an UPDATE as a new version)
Key = tuple[str, "str | None", "str | None", "str | None"]  # tenant, user, agent, session


def key_of(tenant_id: str, scope: Scope) -> Key:
    return tenant_id, scope.user_id, scope.agent_id, scope.session_id


def covers(key: Key, tenant_id: str, scope: Scope) -> bool:
    """Whether a memory in ``scope`` is seen by a search in the scope ``key`` (``sqlreads.scope_sql``)."""
    have = (scope.user_id, scope.agent_id, scope.session_id)
    return key[0] == tenant_id and all(want is None or want == got for want, got in zip(key[1:], have, strict=True))


def said_by(records: Iterable[NewRecord], operations: Iterable[Operation] = ()) -> list[tuple[Scope, str | None]]:
    """The (scope, speaker) of the rows an add or an extraction inserts: its records, and the
    operations' (a NOOP's or an INVALIDATE's record is the candidate, already stored)."""
    inserted = [*records, *(op.record for op in operations if op.record is not None and op.event in INSERTS)]
    return [(r.item.scope, r.item.provenance.name) for r in inserted]


def speakers_sql(tenant_id: str, scope: Scope, mark: str, *, rows: str = "memories m") -> tuple[str, list[Any]]:
    """The distinct speakers of a scope's rows; ``rows`` may narrow what is read (SQLite: the
    rows after a sequence number)."""
    where, params = scope_sql(tenant_id, scope, mark)
    return f"SELECT DISTINCT m.speaker FROM {rows} WHERE {where} AND m.speaker IS NOT NULL", params


@dataclass(frozen=True)
class Entry:
    stamp: int  # the store's change sequence (SQLite) or this process's write generation (PostgreSQL)
    names: frozenset[str]
    read_at: float  # time.monotonic() of the last read from the database


class SpeakerCache:
    """Per tenant and scope, the speakers' names and the stamp they were read at. Thread-safe."""

    def __init__(self, ttl: float | None = None) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[Key, Entry] = {}
        self.generation = 0  # bumped by ``removed``: a set read before it may hold a name that left
        self.inserts = 0  # bumped by ``added``: a set read meanwhile may lack a name that came

    def get(self, key: Key, stamp: int) -> Entry | None:
        """The entry for ``key`` if it is still good at ``stamp`` and within the TTL, else None."""
        entry = self._entries.get(key)
        if entry is None or entry.stamp != stamp:
            return None
        if self._ttl is not None and time.monotonic() - entry.read_at > self._ttl:
            return None
        return entry

    def stale(self, key: Key) -> Entry | None:
        """The entry for ``key`` whatever its stamp: what a catch-up starts from."""
        return self._entries.get(key)

    def put(self, key: Key, stamp: int, names: Iterable[str], *, read_at: float | None = None) -> frozenset[str]:
        found = frozenset(names)
        with self._lock:
            if len(self._entries) >= MAX_SCOPES and key not in self._entries:
                self._entries.clear()
            self._entries[key] = Entry(stamp, found, time.monotonic() if read_at is None else read_at)
        return found

    def added(self, tenant_id: str, rows: Sequence[tuple[Scope, str | None]]) -> None:
        """This process inserted rows (scope, speaker): their names join the sets that see them."""
        named = [(scope, name) for scope, name in rows if name]
        if not named:
            return
        with self._lock:
            self.inserts += 1
            for key, entry in list(self._entries.items()):
                fresh = {name for scope, name in named if covers(key, tenant_id, scope)} - entry.names
                if fresh:
                    self._entries[key] = Entry(entry.stamp, entry.names | fresh, entry.read_at)

    def noted(self, tenant_id: str, rows: Sequence[tuple[Scope, str | None]], result: R) -> R:
        """``added``, then ``result``: a write's outcome passed through once it committed."""
        self.added(tenant_id, rows)
        return result

    def removed(self) -> None:
        """This process removed rows: any set may hold a name that no row has now."""
        with self._lock:
            self._entries.clear()
            self.generation += 1


def cached(cache: SpeakerCache, tenant_id: str, scope: Scope, read: Callable[[], Iterable[str]]) -> frozenset[str]:
    """PostgreSQL's read: the cached set at this process's generation, else ``read`` once.

    A set read while this process inserted a named row may lack that name: it is kept for
    this search and read again by the next (its read time is left at -inf, past any TTL)."""
    key, stamp, inserts = key_of(tenant_id, scope), cache.generation, cache.inserts
    entry = cache.get(key, stamp)
    if entry is not None:
        return entry.names
    started = time.monotonic()
    names = read()
    return cache.put(key, stamp, names, read_at=started if cache.inserts == inserts else -math.inf)


async def acached(
    cache: SpeakerCache, tenant_id: str, scope: Scope, read: Callable[[], Awaitable[list[Any]]], column: str
) -> frozenset[str]:
    """``cached`` with the read awaited (rows holding the names in ``column``); nothing is
    awaited when the set is cached, the common case."""
    key, stamp, inserts = key_of(tenant_id, scope), cache.generation, cache.inserts
    entry = cache.get(key, stamp)
    if entry is not None:
        return entry.names
    started = time.monotonic()
    names = [row[column] for row in await read()]
    return cache.put(key, stamp, names, read_at=started if cache.inserts == inserts else -math.inf)
