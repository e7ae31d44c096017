"""The write path's steps around the store: validate an add or an update and embed it, then derive.

``Memory`` and ``AsyncMemory`` run the same steps and differ only in how they wait for the
store: the sync API calls it, the native async path awaits it, with embedding (CPU) on a
worker thread. So the steps take what they need explicitly — the config, the tenant, the
embedder, the extraction runner — and never write to the store themselves: each caller
writes it its own way (``derive_first`` reads it, for the neighbours of what it derives).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import MemoryConfig
from .embedders import Embedder
from .errors import ValidationError
from .extraction.runner import ExtractionRunner
from .filters import EPISODES
from .ingest import (
    MessagesInput,
    build_item,
    check_datetime,
    check_id,
    check_importance,
    check_kind,
    check_metadata,
    check_text,
    index_text,
    index_texts,
    make_scope,
    normalize_messages,
)
from .models import AddedItem, AddResult, Event, ExtractionStatus, JobPayload, MemoryItem, Scope, new_id
from .stores.base import Change, Derived, NewJob, NewRecord, Query

log = logging.getLogger("engramdb.extraction")


@dataclass(frozen=True)
class AddPlan:
    """A validated add: its scope, the items to write, and the extraction job's payload if any."""

    scope: Scope
    items: list[MemoryItem]
    payload: JobPayload
    derive: bool


def plan_add(
    config: MemoryConfig,
    messages: MessagesInput,
    *,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    metadata: dict[str, Any] | None,
    kind: str,
    occurred_at: datetime | str | None,
    importance: float,
    expires_at: datetime | str | None,
    infer: bool | None,
) -> AddPlan:
    """Validate an add and build its items; nothing is written, nothing is embedded."""
    scope = make_scope(user_id, agent_id, session_id, required=True)
    kind = check_kind(kind)
    derive = (config.infer if infer is None else infer) and kind in ("episode", "procedure")
    options = dict(
        kind="episode" if kind == "procedure" and derive else kind,
        metadata=check_metadata(metadata, config),
        occurred_at=check_datetime(occurred_at, "occurred_at"),
        importance=check_importance(importance),
        expires_at=check_datetime(expires_at, "expires_at"),
    )
    parsed = normalize_messages(messages, config.max_batch)
    for i, message in enumerate(parsed):
        check_text(message.content, config, f"message {i} content")
    items = [build_item(m, scope, **options) for m in parsed if m.role != "system"]  # type: ignore[arg-type]
    payload = JobPayload(kind=kind, metadata=options["metadata"] or {}, importance=options["importance"])
    return AddPlan(scope, items, payload, derive)


def context_query(config: MemoryConfig, tenant_id: str, plan: AddPlan) -> Query | None:
    """The session's latest turns to index the first new ones with (``context_turns``), if any apply.

    The preceding turns come from the same add, then from the store: a chat that adds one
    message at a time is indexed as one that adds a whole session at once.
    """
    if not config.context_turns or plan.scope.session_id is None or plan.items[0].kind != "episode":
        return None
    return Query(tenant_id, plan.scope, EPISODES)


def embed_records(
    config: MemoryConfig, embedder: Embedder, plan: AddPlan, before: list[str]
) -> tuple[list[NewRecord], NewJob | None]:
    """Embed the plan's items: what the store writes, and the extraction job to write with them.

    ``before`` is the text of the session's turns that ``context_query`` found.
    """
    texts = [item.memory for item in plan.items]
    index = index_texts(before + texts, config.context_turns, config.context_words)[len(before) :]
    # the vector is of the message alone, the BM25 entry carries its context: the two
    # retrievers then disagree usefully (LoCoMo dev R@1 0.24 -> 0.32, docs/benchmarks.md)
    vectors = embedder.embed(texts, kind="document")
    records = [NewRecord(item, t, v) for item, t, v in zip(plan.items, index, vectors, strict=True)]
    return records, NewJob(new_id(), plan.scope, plan.payload) if plan.derive else None


def derive_first(
    runner: ExtractionRunner, tenant_id: str, plan: AddPlan, records: list[NewRecord], job: NewJob | None
) -> Derived | None:
    """What the messages derive, computed before they are written, for an extractor that does
    not block (the rules): the messages and what they say then commit together, one durable
    commit per add instead of two. An LLM keeps its two steps (messages first, durable before
    the call). A failure here is left to the job, run after the write, which records it."""
    if job is None or runner.blocking:
        return None
    payload = plan.payload.model_copy(update={"episode_ids": [r.item.id for r in records]})
    try:
        operations, usage = runner.deriver.derive(tenant_id, plan.scope, payload, [r.item for r in records])
    except Exception:  # the job runs it again after the write, where a failure is recorded on it
        log.debug("deriving before the write failed; the job runs after it", exc_info=True)
        return None
    return Derived(operations, usage)


def finish_add(
    runner: ExtractionRunner,
    config: MemoryConfig,
    tenant_id: str,
    plan: AddPlan,
    outcomes: list[tuple[str, Event]],
    job: NewJob | None,
    wait: bool | None,
    first: Derived | None = None,
    applied: list[AddedItem] | None = None,
) -> AddResult:
    """The add's result once its records are written: then derive memories from them.

    ``applied`` is what ``first`` (``derive_first``) wrote in the add's own transaction
    (``Store.add_derived``; None if it could not). Otherwise a blocking extractor's job (an
    LLM's) is queued for the runner's worker when the caller does not wait (``wait``, else
    ``background``); the rules, or an LLM waited for, run now.
    """
    results = added_items(outcomes, plan.items)
    if job is None:
        return AddResult(results=results, extraction=ExtractionStatus(extractor="none", state="skipped"))
    if first is not None and applied is not None:
        status = ExtractionStatus(extractor=runner.extractor_name, state="done", job_id=job.id, usage=first.usage)
        return AddResult(results=results + applied, extraction=status)
    payload = plan.payload.model_copy(update={"episode_ids": [memory_id for memory_id, _ in outcomes]})
    if runner.blocking and (config.background if wait is None else not wait):
        runner.submit(tenant_id, job.id, plan.scope, payload)
        status = ExtractionStatus(extractor=runner.extractor_name, state="pending", job_id=job.id)
        return AddResult(results=results, extraction=status)
    status, derived = runner.run(tenant_id, job.id, plan.scope, payload)
    return AddResult(results=results + derived, extraction=status)


def added_items(outcomes: list[tuple[str, Event]], items: list[MemoryItem]) -> list[AddedItem]:
    """What the store did with each item (ADD, or NOOP with the id it already had), in order."""
    return [
        AddedItem(id=memory_id, memory=item.memory, event=event, kind=item.kind)
        for (memory_id, event), item in zip(outcomes, items, strict=True)
    ]


def plan_change(
    config: MemoryConfig, embedder: Embedder, memory_id: str, text: str | None, metadata: dict[str, Any] | None
) -> tuple[str, Change]:
    """Validate an update and embed its new text: the memory's id and the change to write."""
    if text is None and metadata is None:
        raise ValidationError("update needs new text, new metadata, or both")
    change = Change(metadata=check_metadata(metadata, config) if metadata is not None else None)
    memory_id = check_id(memory_id)
    if text is not None:
        change.text = check_text(text, config)
        change.index_text = index_text(text)
        change.embedding = embedder.embed([change.index_text], kind="document")[0]
    return memory_id, change
