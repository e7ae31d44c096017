"""The Store protocols: what every backend (SQLite, PostgreSQL) must do, with the same semantics.

``Store`` is the union of four narrow parts, so a third-party store sees what each is for:
``MemoryStore`` (memories), ``JobStore`` (extraction jobs), ``KeyStore`` (API keys) and
``PortableStore`` (copies and export); ``AsyncReads`` and ``AsyncWrites`` are optional.

Scope and filters are applied inside the backend's own query; results never leave the store
unscoped. Every method that writes is one transaction. Scores returned by the two search
methods are only used for ranking: ``dense_search`` returns cosine similarity (higher is
closer, in [-1, 1]); ``lexical_search`` returns a BM25 score (higher is better, >= 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..filters import Node
from ..models import (
    AddedItem,
    ApiKey,
    Event,
    HistoryEntry,
    Job,
    JobPayload,
    MemoryItem,
    Page,
    Scope,
    ScopeCount,
    StoreStats,
    Usage,
    new_id,
)


def history_row(
    tenant_id: str,
    item: MemoryItem,
    event: Event,
    *,
    old: MemoryItem | None,
    new: MemoryItem | None,
    reason: str | None,
    encode: Callable[[dict[str, Any]], Any],
    when: Any,
) -> tuple[Any, ...]:
    """The ``history`` row for an event on ``item``, in the column order both stores declare.

    ``encode`` turns metadata into the driver's JSON value and ``when`` is the time in the
    driver's form: the only two things that differ between the stores.
    """
    return (
        new_id(), item.id, tenant_id, item.user_id, item.agent_id, item.session_id, event.value,
        old.memory if old else None, new.memory if new else None,
        encode(old.metadata) if old else None, encode(new.metadata) if new else None,
        reason, when,
    )  # fmt: skip


@dataclass(frozen=True)
class StoreHit:
    id: str
    score: float


@dataclass
class NewRecord:
    """A memory ready to be written: validated, embedded, with every field decided."""

    item: MemoryItem
    index_text: str
    embedding: np.ndarray


@dataclass(frozen=True)
class Query:
    """Which memories an operation may see: tenant, scope, filter, state and time."""

    tenant_id: str
    scope: Scope
    where: Node | None = None
    include_inactive: bool = False
    now: datetime | None = None


@dataclass
class Change:
    """An update to one memory; ``None`` fields are left as they are.

    ``updates`` are column values in the driver's form; ``times`` are time columns
    (``expires_at``, ``updated_at``...) as datetimes (or None to clear one), which each store
    writes in its own time encoding, so the same change means the same on every backend.
    """

    text: str | None = None
    index_text: str | None = None
    embedding: np.ndarray | None = None
    metadata: dict[str, Any] | None = None
    updates: dict[str, Any] = field(default_factory=dict)
    times: dict[str, datetime | None] = field(default_factory=dict)


@dataclass
class Operation:
    """One validated change from extraction, applied with the others in one transaction."""

    event: Event
    record: NewRecord | None = None  # ADD and UPDATE write this; on NOOP and INVALIDATE, the candidate
    target_id: str | None = None  # UPDATE supersedes it, INVALIDATE retracts it, NOOP names it
    reason: str | None = None


@dataclass
class NewJob:
    """An extraction to run after the messages are stored; written in the same transaction."""

    id: str
    scope: Scope
    payload: JobPayload


@dataclass(frozen=True)
class Derived:
    """What an add's messages derive, computed before they are written (by an extractor that
    does not block: the rules), so that the messages and it commit together (``add_derived``)."""

    operations: Sequence[Operation]
    usage: Usage


@dataclass
class PendingJob:
    job: Job
    tenant_id: str
    scope: Scope
    payload: JobPayload


@runtime_checkable
class AsyncReads(Protocol):
    """Native async reads for the search path, offered by stores reached over a network.

    AsyncMemory and the server await these instead of holding a thread per search. Same
    semantics as the synchronous methods of the same names.
    """

    language: str  # as ``MemoryStore.language``

    async def adense_search(self, query: Query, vector: np.ndarray, k: int) -> list[StoreHit]: ...

    async def alexical_search(self, query: Query, terms: Sequence[str], k: int) -> list[StoreHit]: ...

    async def aget_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]: ...

    async def aspeakers(self, tenant_id: str, scope: Scope) -> frozenset[str]: ...

    async def aget(self, tenant_id: str, memory_id: str) -> MemoryItem: ...

    async def aoutdated(self, tenant_id: str, ids: Sequence[str]) -> set[str]: ...

    async def atouch(self, tenant_id: str, ids: Sequence[str]) -> None:
        """``touch``, with the buffer's periodic flush awaited instead of blocking the event loop."""

    async def aclose(self) -> None:
        """Close the connections opened for the running event loop."""


@runtime_checkable
class AsyncWrites(Protocol):
    """Native async writes of the memory path (add, update, delete), from the same stores.

    Same semantics, in one transaction each, as the synchronous methods of the same names.
    """

    async def aadd(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob | None = None
    ) -> list[tuple[str, Event]]: ...

    async def aadd_derived(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob, derived: Derived
    ) -> tuple[list[tuple[str, Event]], list[AddedItem] | None]: ...

    async def aupdate(self, tenant_id: str, memory_id: str, change: Change) -> MemoryItem: ...

    async def adelete(self, tenant_id: str, memory_id: str) -> None: ...

    async def adelete_scope(self, tenant_id: str, scope: Scope, *, hard: bool = False) -> int: ...

    async def arecent(self, query: Query, *, limit: int) -> list[MemoryItem]: ...


class MemoryStore(Protocol):
    """Memories: write, read, search and forget them, each call one transaction, always in scope.

    The part every store has. ``add`` may store an extraction job with its messages and
    ``apply`` marks one done with its results, in the same transaction (see ``JobStore``).
    """

    location: str
    language: str  # the stemmer of the lexical index (``lexicon``): search's relevance stems the same way

    def bind_embedder(self, name: str, dimension: int) -> None:
        """Record the embedder on first use; raise ConfigurationError if another one made the vectors."""

    def add(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob | None = None
    ) -> list[tuple[str, Event]]:
        """Insert records in one transaction; an exact duplicate in scope is NOOP with the existing id.

        With ``job``, the job is stored in the same transaction, its payload given the ids of
        the records as ``episode_ids`` (existing ids for NOOPs): a crash cannot separate them.
        """

    def add_derived(
        self, tenant_id: str, records: Sequence[NewRecord], *, job: NewJob, derived: Derived
    ) -> tuple[list[tuple[str, Event]], list[AddedItem] | None]:
        """``add`` with ``job``, then ``derived`` applied for that job, in one transaction: one
        durable commit for a message and what it says.

        The derived part is applied only if every record was added under its own id (they are
        its sources); otherwise it is None and the job stays pending, for the caller to run.
        """

    def apply(
        self, tenant_id: str, operations: Sequence[Operation], *, job_id: str | None = None, usage: Usage | None = None
    ) -> list[AddedItem] | None:
        """Apply extraction results in one transaction; with ``job_id``, mark that job done.

        Returns what happened per operation (also kept as the job's result, with ``usage``),
        or None when the job was already done: a retry after a crash applies nothing twice.
        """

    def supersede(self, tenant_id: str, ids: Sequence[str], by_id: str, *, reason: str) -> int:
        """Mark memories superseded by ``by_id`` (which inherits their sources); history keeps them."""

    def forget(self, tenant_id: str, ids: Sequence[str], *, reason: str, hard: bool) -> int:
        """Soft: state forgotten, out of recall, in history with the reason. Hard: gone with its history."""

    def get(self, tenant_id: str, memory_id: str) -> MemoryItem: ...

    def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[MemoryItem]:
        """The memories with these ids that exist, in the order asked."""

    def outdated(self, tenant_id: str, ids: Sequence[str]) -> set[str]:
        """Of these ids, those whose derived memories all stopped holding (superseded,
        invalidated, forgotten): messages that tell of something no longer true."""

    def list_page(self, query: Query, *, cursor: str | None, limit: int) -> Page: ...

    def recent(self, query: Query, *, limit: int) -> list[MemoryItem]:
        """The ``limit`` newest memories matching ``query``, oldest first (working memory)."""

    def scope_counts(self, query: Query) -> list[ScopeCount]:
        """Every scope holding memories that ``query`` sees, with their count; NULL ids first, then by id."""

    def update(self, tenant_id: str, memory_id: str, change: Change) -> MemoryItem: ...

    def delete(self, tenant_id: str, memory_id: str) -> None: ...

    def delete_scope(self, tenant_id: str, scope: Scope, *, hard: bool = False) -> int:
        """Delete a scope's memories; ``hard`` also removes their history, jobs and sources."""

    def history(self, tenant_id: str, memory_id: str) -> list[HistoryEntry]: ...

    def dense_search(self, query: Query, vector: np.ndarray, k: int) -> list[StoreHit]: ...

    def lexical_search(self, query: Query, terms: Sequence[str], k: int) -> list[StoreHit]: ...

    def speakers(self, tenant_id: str, scope: Scope) -> frozenset[str]:
        """The names of the speakers of the memories ``scope`` sees, in any state: asked before
        every dense query (``retrieval.speakers``), so kept by the store (``stores.speakers``)."""

    def touch(self, tenant_id: str, ids: Sequence[str]) -> None:
        """Count an access to these memories (may be buffered briefly)."""

    def stats(self, tenant_id: str) -> StoreStats: ...

    def reset(self, tenant_id: str) -> None: ...

    def close(self) -> None: ...


class JobStore(Protocol):
    """Extraction jobs: the worker's queue, durable so that a crash between the write and the
    extraction is completed on restart. Jobs are created by ``add(job=...)`` and finished by
    ``apply(job_id=...)``; these methods find and fail them."""

    def pending_jobs(self, tenant_id: str | None, *, limit: int) -> list[PendingJob]: ...

    def list_jobs(
        self, tenant_id: str, *, state: str | None, user_ids: Sequence[str] | None, cursor: str | None, limit: int
    ) -> tuple[list[PendingJob], str | None]:
        """A page of a tenant's jobs, oldest first, and the next page's cursor (None on the last)."""

    def get_job(self, tenant_id: str, job_id: str) -> Job: ...

    def job_task(self, tenant_id: str, job_id: str) -> PendingJob:
        """A job with what running it needs: its scope and payload."""

    def reopen_job(self, tenant_id: str, job_id: str) -> Job:
        """A failed job back to pending (to be run again), its attempts kept; others unchanged."""

    def fail_job(self, tenant_id: str, job_id: str, error: str, *, max_attempts: int) -> Job:
        """Count a failed attempt; the job fails for good after ``max_attempts``."""


class KeyStore(Protocol):
    """API keys of the server: only their hashes are stored, and a revoked key stays listed."""

    def save_key(self, key: ApiKey, key_hash: str) -> None: ...

    def find_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, if it exists and is not revoked."""

    def list_keys(self, tenant_id: str | None) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str) -> ApiKey: ...


class PortableStore(Protocol):
    """Whole-store copies (``engramdb migrate``) and a tenant's export, in the portable row form
    of ``stores.portable``. Reading a live store as of one moment is a further, declared
    ability: ``portable.Snapshots``, which ``migrate`` requires of its source."""

    def binding(self) -> tuple[str, int] | None:
        """The embedder name and dimension the vectors were made with, if any yet."""

    def export(self, tenant_id: str) -> Iterator[MemoryItem]: ...

    def count_rows(self, table: str) -> int:
        """Rows in one of ``portable.TABLES`` across all tenants (for migration checks)."""

    def iter_rows(self, table: str, *, batch: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every row of a ``portable.TABLES`` table in key order, in batches, as portable dicts."""

    def write_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert portable rows as they are (ids, tenants, history, vectors) in one transaction."""


class Store(MemoryStore, JobStore, KeyStore, PortableStore, Protocol):
    """Everything engramdb asks of a backend: the union of the narrow protocols above, which
    ``Memory``, the worker, the server and ``migrate`` each use a part of."""
