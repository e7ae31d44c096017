"""The write semantics both SQL stores share, written once over a small per-backend ``Dialect``.

What a write *means* (when an add is a NOOP, how an update supersedes, what closing a memory's
validity records, when a job is done or failed) lives here; each backend supplies only how
its driver says it: the placeholder, the time and JSON encodings, how a row is locked and
inserted. The bodies are ``async def`` so that PostgreSQL's native async API awaits them;
every sync caller (SQLite, and PostgreSQL's sync API, see ``postgres.tx``) drives the same
coroutine with ``run``, where no await ever suspends. Each body runs inside the caller's
transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ..errors import ConfigurationError, StoreError
from ..models import AddedItem, ApiKey, Event, MemoryItem, Usage, new_id, utcnow
from .base import Derived, NewJob, NewRecord, Operation, history_row

R = TypeVar("R")
ADD_ATTEMPTS = 3  # lookups before an add gives up on writers that keep committing the same text first
ERROR_CHARS = 2000  # how much of a failed attempt's error a job keeps
RETRACTED = "its source was deleted"  # the reason a derived memory is invalidated with
TOUCH_FLUSH_S = 5.0  # how long access counts may wait in memory (see ``TouchBuffer``)


class Dialect(Protocol):
    """One open transaction on one backend, as the shared bodies use it."""

    mark: str  # the driver's placeholder: "?" or "%s"
    nullsafe: str  # the function the dedupe index folds NULL scope columns with ("ifnull", "coalesce")
    row_lock: str  # appended to a SELECT that must lock the rows it reads (" FOR UPDATE", or "")

    @property
    def stamp(self) -> dict[str, Any]:
        """Columns every write to a memories row sets besides its own (SQLite: ``seq``)."""

    def time(self, value: datetime) -> Any:
        """A time as the driver stores it."""

    def json(self, value: Any) -> Any:
        """A JSON value as the driver stores it."""

    def ignore_conflicts(self, insert_sql: str) -> str:
        """``INSERT INTO ...`` made to skip rows that clash with an existing key."""

    async def execute(self, sql: str, params: Sequence[Any]) -> None: ...

    async def fetchone(self, sql: str, params: Sequence[Any]) -> Any: ...

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    max_list: int  # how many values one ``any_of`` may hold

    def any_of(self, column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
        """A condition that ``column`` is one of ``values``, and its parameters."""

    async def get(self, tenant_id: str, memory_id: str, *, lock: bool = False) -> MemoryItem:
        """The memory, or NotFoundError; ``lock`` holds its row until the transaction ends."""

    async def insert(self, tenant_id: str, record: NewRecord) -> bool:
        """Write a new memory (row, text index, sources, history); False when a concurrent
        writer took its id or text first."""

    async def insert_many(self, tenant_id: str, records: Sequence[NewRecord]) -> list[bool]:
        """``insert`` for many records in a few statements, one answer each."""


def run(body: Coroutine[Any, Any, R]) -> R:
    """The result of a body on a synchronous connection, where nothing suspends."""
    try:
        body.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    body.close()
    raise RuntimeError("a write body suspended on a synchronous connection")


def marks(d: Dialect, count: int) -> str:
    return ", ".join(d.mark for _ in range(count))


async def log(
    d: Dialect,
    tenant_id: str,
    item: MemoryItem,
    event: Event,
    *,
    old: MemoryItem | None = None,
    new: MemoryItem | None = None,
    reason: str | None = None,
) -> None:
    row = history_row(tenant_id, item, event, old=old, new=new, reason=reason, encode=d.json, when=d.time(utcnow()))
    await d.execute(f"INSERT INTO history VALUES ({marks(d, len(row))})", row)


# --- memories ---------------------------------------------------------------------------------


async def add_one(d: Dialect, tenant_id: str, record: NewRecord) -> tuple[str, Event]:
    """Add one record; an exact duplicate in its scope is a NOOP with the existing id."""
    m, f = d.mark, d.nullsafe
    for _ in range(ADD_ATTEMPTS):
        item = record.item
        existing = await d.fetchone(
            f"SELECT id FROM memories WHERE tenant_id = {m} AND {f}(user_id, '') = {m} AND "
            f"{f}(agent_id, '') = {m} AND {f}(session_id, '') = {m} AND hash = {m} AND state = 'active'",
            (tenant_id, item.user_id or "", item.agent_id or "", item.session_id or "", item.hash),
        )
        if existing is not None:
            return existing["id"], Event.NOOP
        owner = await d.fetchone(f"SELECT tenant_id FROM memories WHERE id = {m}", (item.id,))
        if owner is not None and owner["tenant_id"] == tenant_id:
            return item.id, Event.NOOP
        if owner is not None:  # another tenant's id: never reveal it exists, store under a fresh id
            record.item = item = item.model_copy(update={"id": new_id()})
        if await d.insert(tenant_id, record):
            return item.id, Event.ADD
        # a concurrent transaction committed the same text or id first: look again
    raise StoreError("could not add a memory: concurrent writers kept conflicting")


async def add_many(d: Dialect, tenant_id: str, records: Sequence[NewRecord]) -> list[tuple[str, Event]]:
    """``add_one`` for a batch in a few statements: the lookups as one query per scope (the
    dedupe index's own key), the inserts together. Anything unusual (an id already taken, a
    clash with a concurrent writer) goes through ``add_one``, so the outcome is the same."""
    known = await _known_texts(d, tenant_id, records)
    taken = await _taken_ids(d, [r.item.id for r in records])
    outcomes: list[tuple[str, Event] | None] = []
    fresh: list[tuple[int, NewRecord]] = []
    for record in records:
        key = _text_key(record.item)
        if key in known:
            outcomes.append((known[key], Event.NOOP))
        elif record.item.id in taken:
            outcomes.append(await add_one(d, tenant_id, record))
        else:
            known[key] = record.item.id  # a later copy in the batch is a NOOP with this id
            taken.add(record.item.id)
            outcomes.append(None)
            fresh.append((len(outcomes) - 1, record))
    inserted = await d.insert_many(tenant_id, [r for _, r in fresh]) if fresh else []
    for (position, record), ok in zip(fresh, inserted, strict=True):
        outcomes[position] = (record.item.id, Event.ADD) if ok else await add_one(d, tenant_id, record)
    return [o for o in outcomes if o is not None]


def _text_key(item: MemoryItem) -> tuple[str, str, str, str]:
    return (item.user_id or "", item.agent_id or "", item.session_id or "", item.hash)


async def _known_texts(d: Dialect, tenant_id: str, records: Sequence[NewRecord]) -> dict[tuple[str, ...], str]:
    """The active memories with a batch's texts in their scopes, by ``_text_key``."""
    m, f = d.mark, d.nullsafe
    by_scope: dict[tuple[str, str, str], list[str]] = {}
    for record in records:
        user, agent, session, text_hash = _text_key(record.item)
        by_scope.setdefault((user, agent, session), []).append(text_hash)
    known: dict[tuple[str, ...], str] = {}
    for scope, hashes in by_scope.items():
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), d.max_list):
            condition, params = d.any_of("hash", unique[start : start + d.max_list])
            rows = await d.fetchall(
                f"SELECT id, hash FROM memories WHERE tenant_id = {m} AND {f}(user_id, '') = {m} AND "
                f"{f}(agent_id, '') = {m} AND {f}(session_id, '') = {m} AND {condition} AND state = 'active'",
                (tenant_id, *scope, *params),
            )
            known.update({(*scope, row["hash"]): row["id"] for row in rows})
    return known


async def _taken_ids(d: Dialect, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that a row of any tenant holds."""
    taken: set[str] = set()
    for start in range(0, len(ids), d.max_list):
        condition, params = d.any_of("id", ids[start : start + d.max_list])
        taken.update(row["id"] for row in await d.fetchall(f"SELECT id FROM memories WHERE {condition}", params))
    return taken


async def end(
    d: Dialect,
    tenant_id: str,
    memory_id: str,
    state: str,
    valid_to: datetime,
    reason: str | None,
    *,
    superseded_by: str | None = None,
) -> None:
    """Close a memory's validity: it leaves recall and stays in the store and its history."""
    old = await d.get(tenant_id, memory_id, lock=True)
    if old.state.value != "active":
        return
    now = d.time(utcnow())
    values = {"state": state, "valid_to": d.time(valid_to), "invalidated_at": now, "superseded_by": superseded_by,
              "updated_at": now, **d.stamp}  # fmt: skip
    assignments = ", ".join(f"{column} = {d.mark}" for column in values)
    await d.execute(f"UPDATE memories SET {assignments} WHERE id = {d.mark}", (*values.values(), memory_id))
    new = await d.get(tenant_id, superseded_by) if superseded_by else None
    event = Event.UPDATE if superseded_by else Event.INVALIDATE
    await log(d, tenant_id, old, event, old=old, new=new, reason=reason or state)


async def supersede(d: Dialect, tenant_id: str, ids: Sequence[str], by_id: str, reason: str) -> int:
    await d.get(tenant_id, by_id)
    inherit = d.ignore_conflicts(
        f"INSERT INTO memory_sources SELECT {d.mark}, source_id FROM memory_sources WHERE memory_id = {d.mark}"
    )
    for memory_id in ids:
        await d.execute(inherit, (by_id, memory_id))
        await end(d, tenant_id, memory_id, "superseded", utcnow(), reason, superseded_by=by_id)
    return len(ids)


async def retract_derived(d: Dialect, tenant_id: str, gone: Sequence[str]) -> None:
    """Invalidate memories derived only from deleted sources: retraction propagates."""
    p = d.mark
    for start in range(0, len(gone), d.max_list):
        among, params = d.any_of("s.source_id", gone[start : start + d.max_list])
        derived = await d.fetchall(
            "SELECT DISTINCT s.memory_id FROM memory_sources s JOIN memories m ON m.id = s.memory_id "
            f"WHERE {among} AND m.tenant_id = {p} ORDER BY s.memory_id",
            [*params, tenant_id],
        )
        for row in derived:
            alive = await d.fetchone(
                f"SELECT 1 FROM memory_sources s JOIN memories m ON m.id = s.source_id WHERE s.memory_id = {p} LIMIT 1",
                (row["memory_id"],),
            )
            if alive is None:
                await end(d, tenant_id, row["memory_id"], "invalidated", utcnow(), RETRACTED)


async def apply(
    d: Dialect, tenant_id: str, operations: Sequence[Operation], job_id: str | None, usage: Usage | None
) -> list[AddedItem] | None:
    """Extraction results in the caller's transaction; None when the job is gone or done already."""
    m = d.mark
    if job_id is not None:
        sql = f"SELECT state FROM jobs WHERE id = {m} AND tenant_id = {m}{d.row_lock}"
        row = await d.fetchone(sql, (job_id, tenant_id))
        if row is None or row["state"] == "done":
            return None
    results = [await apply_one(d, tenant_id, op) for op in operations]
    if job_id is not None:
        await d.execute(
            f"UPDATE jobs SET state = 'done', result = {m}, error = NULL, updated_at = {m} WHERE id = {m}",
            (d.json(job_result(results, usage)), d.time(utcnow()), job_id),
        )
    return results


def job_result(results: Sequence[AddedItem], usage: Usage | None) -> dict[str, Any]:
    """What a done job records: the memories it wrote or changed, and what deriving them cost."""
    return {"results": [r.model_dump(mode="json") for r in results], "usage": (usage or Usage()).model_dump()}


async def apply_derived(
    d: Dialect,
    tenant_id: str,
    records: Sequence[NewRecord],
    outcomes: Sequence[tuple[str, Event]],
    job: NewJob,
    derived: Derived,
) -> list[AddedItem] | None:
    """``derived`` for ``job``, after its records in the same transaction (``Store.add_derived``),
    which writes the job here, done with its result: one row written once, where a job inserted
    pending and then marked done took three statements on every add with the rules.

    Derived memories cite the records by the ids they were planned with: a record that turned
    out a duplicate (NOOP, the existing id) leaves the job pending, to run from the stored ids.
    """
    ids = [memory_id for memory_id, _ in outcomes]
    if list(outcomes) != [(r.item.id, Event.ADD) for r in records]:
        await insert_job(d, tenant_id, job, ids)
        return None
    results = [await apply_one(d, tenant_id, op) for op in derived.operations]
    await insert_job(d, tenant_id, job, ids, result=job_result(results, derived.usage))
    return results


async def apply_one(d: Dialect, tenant_id: str, op: Operation) -> AddedItem:
    item = op.record.item if op.record is not None else None
    text, kind, sources = (item.memory, item.kind, item.sources) if item else ("", "fact", [])
    if op.event in (Event.ADD, Event.UPDATE) and op.record is not None:
        memory_id, event = await add_one(d, tenant_id, op.record)
        if event is Event.ADD and op.event is Event.UPDATE and op.target_id is not None:
            when = op.record.item.valid_from or utcnow()
            await end(d, tenant_id, op.target_id, "superseded", when, op.reason, superseded_by=memory_id)
            event = Event.UPDATE
        previous = op.target_id if event is Event.UPDATE else None
        return AddedItem(id=memory_id, memory=text, event=event, kind=kind, previous_id=previous,
                         sources=sources, reason=op.reason)  # fmt: skip
    if op.event is Event.INVALIDATE and op.target_id is not None:
        old = await d.get(tenant_id, op.target_id)
        await end(d, tenant_id, op.target_id, "invalidated", utcnow(), op.reason)
        return AddedItem(id=old.id, memory=old.memory, event=Event.INVALIDATE, kind=old.kind,
                         sources=sources, reason=op.reason)  # fmt: skip
    return AddedItem(id=op.target_id or "", memory=text, event=Event.NOOP, kind=kind, sources=sources,
                     reason=op.reason)  # fmt: skip


# --- jobs, keys and the embedder binding ------------------------------------------------------


async def insert_job(
    d: Dialect, tenant_id: str, job: NewJob, episode_ids: Sequence[str], *, result: dict[str, Any] | None = None
) -> None:
    """Store a job with the ids of the messages it reads (written in their transaction):
    pending, or done with ``result`` when what it derives was applied in that transaction."""
    payload = job.payload.model_copy(update={"episode_ids": list(episode_ids)}).model_dump(mode="json")
    now = d.time(utcnow())
    state, done = ("pending", None) if result is None else ("done", d.json(result))
    await d.execute(
        "INSERT INTO jobs (id, tenant_id, user_id, agent_id, session_id, state, payload, result, created_at, "
        f"updated_at) VALUES ({marks(d, 10)})",
        (job.id, tenant_id, job.scope.user_id, job.scope.agent_id, job.scope.session_id, state,
         d.json(payload), done, now, now),
    )  # fmt: skip


async def fail_job(d: Dialect, tenant_id: str, job_id: str, error: str, max_attempts: int) -> None:
    """Count a failed attempt; the job fails for good after ``max_attempts``."""
    m = d.mark
    await d.execute(
        f"UPDATE jobs SET attempts = attempts + 1, error = {m}, updated_at = {m}, "
        f"state = CASE WHEN attempts + 1 >= {m} THEN 'failed' ELSE state END "
        f"WHERE id = {m} AND tenant_id = {m} AND state = 'pending'",
        (error[:ERROR_CHARS], d.time(utcnow()), max_attempts, job_id, tenant_id),
    )


async def reopen_job(d: Dialect, tenant_id: str, job_id: str) -> None:
    """A failed job back to pending, its attempts kept: one more failure fails it again at once."""
    m = d.mark
    await d.execute(
        f"UPDATE jobs SET state = 'pending', updated_at = {m} WHERE id = {m} AND tenant_id = {m} AND state = 'failed'",
        (d.time(utcnow()), job_id, tenant_id),
    )


async def save_key(d: Dialect, key: ApiKey, key_hash: str) -> None:
    await d.execute(
        f"INSERT INTO api_keys VALUES ({marks(d, 7)}, NULL)",
        (key.id, key_hash, key.tenant_id, key.name, d.json(key.user_ids) if key.user_ids is not None else None,
         key.admin, d.time(key.created_at)),
    )  # fmt: skip


async def revoke_key(d: Dialect, key_id: str) -> None:
    m = d.mark
    await d.execute(
        f"UPDATE api_keys SET revoked_at = {m} WHERE id = {m} AND revoked_at IS NULL", (d.time(utcnow()), key_id)
    )


def check_binding(meta: dict[str, str], name: str, dimension: int) -> bool:
    """Whether the store is bound to this embedder already (False: not bound to any yet).

    Raises:
        ConfigurationError: another embedder made the store's vectors.
    """
    if "embedder" not in meta:
        return False
    if meta["embedder"] != name or int(meta["dimension"]) != dimension:
        raise ConfigurationError(
            f"this store holds vectors from embedder {meta['embedder']!r} "
            f"({meta['dimension']} dims), not {name!r} ({dimension} dims); open it with "
            f"embedder={meta['embedder']!r} or re-embed it"
        )
    return True


# --- access counts ----------------------------------------------------------------------------


def touch_sql(mark: str) -> str:
    """The statement ``TouchBuffer.take`` rows are written with (executemany)."""
    return f"UPDATE memories SET access_count = access_count + {mark}, last_accessed_at = {mark} WHERE id = {mark}"


class TouchBuffer:
    """Access counts waiting to be written, flushed at most every ``TOUCH_FLUSH_S`` seconds.

    Counting accesses on every search would turn each read into a durable write; access
    counts are a retention hint, so up to that long of them may be lost in a crash (or while
    the disk is full: a read never fails for them).
    """

    def __init__(self, lock: threading.Lock | threading.RLock) -> None:
        self._lock = lock
        self._pending: dict[str, tuple[int, Any]] = {}
        self._last_flush = time.monotonic()

    def add(self, ids: Sequence[str], now: Any) -> bool:
        """Count one access to each id at ``now`` (the driver's time); True when a flush is due."""
        with self._lock:
            for memory_id in ids:
                count, _ = self._pending.get(memory_id, (0, now))
                self._pending[memory_id] = (count + 1, now)
            return time.monotonic() - self._last_flush >= TOUCH_FLUSH_S

    def take(self) -> list[tuple[int, Any, str]]:
        """Empty the buffer: ``touch_sql`` parameters (count, time, id) in id order."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        return [(count, at, memory_id) for memory_id, (count, at) in sorted(pending.items())]
