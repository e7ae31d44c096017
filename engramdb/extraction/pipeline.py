"""From stored episodes to derived memories: extract, compare, validate, apply — one job.

The episodes are already durable when this runs (written with the job in one transaction),
so a failure here loses nothing: the job stays pending and is retried. ``Store.apply``
marks the job done in the transaction that writes its memories, so a retry after a crash
never writes them twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import numpy as np

from ..config import MemoryConfig
from ..embedders import Embedder
from ..filters import NOT_EPISODES, parse_filter
from ..ingest import owner_scope
from ..models import (
    AddedItem,
    Event,
    JobPayload,
    MemoryItem,
    Message,
    Provenance,
    Scope,
    Usage,
    content_hash,
    new_id,
    utcnow,
)
from ..stores.base import NewRecord, Operation, Query, Store
from .models import Candidate, Decision
from .reconcile import validate

NEIGHBOURS = 5


class Reconciler(Protocol):
    """Decides how candidates relate to the stored memories near them (ADD, UPDATE, NOOP, ...)."""

    def reconcile(
        self, candidates: list[Candidate], neighbours: list[list[tuple[MemoryItem, float]]]
    ) -> tuple[dict[int, Decision], Usage]: ...


class Merger(Protocol):
    """Writes one statement for a group of near-duplicates (consolidation, session summaries)."""

    def merge(self, texts: list[str]) -> tuple[str, Usage]: ...


class Extractor(Protocol):
    """Reads candidates out of messages, and declares what else it can do.

    ``reconciler`` and ``merger`` are ``None`` when the extractor cannot (the rules: then
    ``extraction.reconcile`` decides, and consolidation keeps the most complete member).
    ``blocking`` says a call waits on an outside service, so ``add(wait=False)`` runs it
    on a worker thread; a local extractor is quicker to run than to hand off.
    """

    name: str
    blocking: bool

    @property
    def reconciler(self) -> Reconciler | None: ...

    @property
    def merger(self) -> Merger | None: ...

    def extract(
        self, messages: list[Message], *, reference: datetime, procedure: bool = False
    ) -> tuple[list[Candidate], Usage]: ...


def episode_message(item: MemoryItem) -> Message:
    role = item.provenance.role if item.provenance.role in ("user", "assistant", "tool") else "user"
    return Message(role=role, content=item.memory, name=item.provenance.name, timestamp=item.occurred_at, id=item.id)


class Deriver:
    def __init__(self, store: Store, embedder: Embedder, extractor: Extractor, config: MemoryConfig) -> None:
        self.store = store
        self.embedder = embedder
        self.extractor = extractor
        self.config = config

    def run(
        self, tenant_id: str, scope: Scope, payload: JobPayload, job_id: str | None
    ) -> tuple[list[AddedItem] | None, Usage]:
        """Derive memories from the payload's episodes and apply them; raises ProviderError on LLM failure."""
        episodes = self.store.get_many(tenant_id, payload.episode_ids)
        operations, usage = self.derive(tenant_id, scope, payload, episodes)
        return self.store.apply(tenant_id, operations, job_id=job_id, usage=usage), usage

    def derive(
        self, tenant_id: str, scope: Scope, payload: JobPayload, episodes: list[MemoryItem]
    ) -> tuple[list[Operation], Usage]:
        """What the episodes derive, as operations to apply, and what that cost; nothing is written.

        The neighbours compared with are derived memories, never episodes, so this may run
        before the episodes themselves are written (``planner.write_add``).
        """
        session = scope.session_id
        scope = owner_scope(scope)
        messages = [episode_message(e) for e in episodes]
        reference = max((e.occurred_at or e.created_at for e in episodes), default=utcnow())
        procedure = payload.kind == "procedure"
        candidates, usage = self.extractor.extract(messages, reference=reference, procedure=procedure)
        operations: list[Operation] = []
        if candidates:
            vectors = self.embedder.embed([c.text for c in candidates], kind="document")
            hoods = [self._neighbours(tenant_id, scope, c, v) for c, v in zip(candidates, vectors, strict=True)]
            decisions: dict[int, Decision] = {}
            reconciler = self.extractor.reconciler
            if reconciler is not None and any(hoods):
                decisions, spent = reconciler.reconcile(candidates, hoods)
                usage = usage + spent
            operations = self._operations(candidates, vectors, hoods, decisions, episodes, scope, payload)
            for op in operations:
                if op.record is not None:
                    op.record.item.provenance.session_id = session
        return operations, usage

    def _neighbours(
        self, tenant_id: str, scope: Scope, candidate: Candidate, vector: np.ndarray
    ) -> list[tuple[MemoryItem, float]]:
        """The most similar derived memories in scope, plus those filling the candidate's slot."""
        query = Query(tenant_id=tenant_id, scope=scope, where=NOT_EPISODES)
        hits = self.store.dense_search(query, vector, NEIGHBOURS)
        similar = dict(zip([h.id for h in hits], [h.score for h in hits], strict=True))
        items = {m.id: m for m in self.store.get_many(tenant_id, list(similar))}
        if candidate.slot:
            where: dict[str, Any] = {"slot": candidate.slot}
            if candidate.subject:
                where["subject"] = candidate.subject
            # the latest that hold it (``recent``: a page would also count them all, 0.5 ms in a large scope)
            holders = self.store.recent(
                Query(tenant_id=tenant_id, scope=scope, where=parse_filter(where)), limit=NEIGHBOURS
            )
            for item in holders:
                items.setdefault(item.id, item)
        return [(item, similar.get(item.id, 0.0)) for item in items.values()]

    def _operations(
        self,
        candidates: list[Candidate],
        vectors: np.ndarray,
        hoods: list[list[tuple[MemoryItem, float]]],
        decisions: dict[int, Decision],
        episodes: list[MemoryItem],
        scope: Scope,
        payload: JobPayload,
    ) -> list[Operation]:
        """Validated operations in order; a later candidate also sees the ones planned before it."""
        operations: list[Operation] = []
        planned: list[tuple[MemoryItem, np.ndarray]] = []
        for index, (candidate, vector) in enumerate(zip(candidates, vectors, strict=True)):
            hood = hoods[index] + [(item, float(v @ vector)) for item, v in planned]
            decision = validate(index, candidate, decisions.get(index), hood)
            record = self._record(candidate, vector, episodes, scope, payload)
            if decision.action == "NOOP" and decision.target_id is None:
                continue  # a retraction of nothing, or an empty candidate: nothing to report
            event = Event(decision.action)
            operations.append(Operation(event, record, decision.target_id, decision.reason))
            if event in (Event.ADD, Event.UPDATE):
                planned.append((record.item, vector))
        return operations

    def _record(
        self,
        candidate: Candidate,
        vector: np.ndarray,
        episodes: list[MemoryItem],
        scope: Scope,
        payload: JobPayload,
    ) -> NewRecord:
        sources = [episodes[i] for i in candidate.sources if 0 <= i < len(episodes)] or episodes
        first = sources[0] if sources else None
        # an instruction is no event: its time is the message's, which the context shows it with
        told = None if candidate.kind == "procedure" else candidate.occurred_at
        when = told or (first.occurred_at if first else None)
        now = utcnow()
        item = MemoryItem(
            id=new_id(), memory=candidate.text, kind=candidate.kind, hash=content_hash(candidate.text),
            user_id=scope.user_id, agent_id=scope.agent_id, session_id=scope.session_id,
            metadata=dict(payload.metadata),
            provenance=Provenance(
                role=first.provenance.role if first else None, name=first.provenance.name if first else None,
                message_id=first.provenance.message_id if first else None, session_id=scope.session_id,
            ),
            created_at=now, updated_at=now, occurred_at=when, valid_from=when or now,
            importance=payload.importance, subject=candidate.subject, slot=candidate.slot,
            sources=[e.id for e in sources],
        )  # fmt: skip
        return NewRecord(item, candidate.text, vector)
