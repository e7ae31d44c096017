"""Consolidation and forgetting: keep a scope small, current and free of repeats.

Both work on derived memories and episodes alike, never lose provenance, and leave the
originals in history: consolidation supersedes the members of a near-duplicate group by
one survivor (``merged_from`` lists them); pruning marks memories ``forgotten`` (out of
recall, kept in history with the reason) unless a hard delete is asked for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from .embedders import Embedder
from .errors import ValidationError
from .extraction.pipeline import Merger
from .extraction.reconcile import word_overlap
from .ingest import first_error
from .models import MemoryItem, Usage, content_hash, new_id, utcnow
from .stores.base import Change, NewRecord, Store

MERGE_COSINE = 0.85
MERGE_WORDS = 0.6


class MergedGroup(BaseModel):
    survivor: str
    memory: str
    merged_from: list[str]


class ConsolidateResult(BaseModel):
    merged: list[MergedGroup] = Field(default_factory=list)
    examined: int = 0
    usage: Usage = Field(default_factory=Usage)


class PrunePolicy(BaseModel):
    """What ``prune`` forgets. Every rule is optional; the default only drops expired memories.

    retention = importance_weight·importance + recency_weight·0.5^(age/half_life)
                + access_weight·(1 − e^(−accesses/5)), each part in [0, 1]; age counts from
    the last access, or creation.
    """

    model_config = ConfigDict(extra="forbid")

    expired: bool = True
    ttl_days: float | None = Field(None, gt=0, description="forget memories created longer ago than this")
    max_memories: int | None = Field(None, ge=0, description="capacity of the scope: keep the best-retained")
    min_retention: float | None = Field(None, ge=0, le=1, description="forget memories retained less than this")
    kinds: list[str] | None = Field(None, description="only these kinds (default: all)")
    importance_weight: float = Field(0.4, ge=0)
    recency_weight: float = Field(0.4, ge=0)
    access_weight: float = Field(0.2, ge=0)
    half_life_days: float = Field(30.0, gt=0)


class PruneResult(BaseModel):
    forgotten: dict[str, str] = Field(default_factory=dict, description="memory id → reason")
    hard: bool = False


def _merged_memory(
    store: Store, embedder: Embedder, tenant_id: str, members: list[MemoryItem], text: str
) -> MemoryItem:
    """Store the LLM's merged statement as a new memory in the members' scope."""
    first = max(members, key=lambda m: m.created_at)
    now = utcnow()
    item = first.model_copy(
        update={
            "id": new_id(), "memory": text, "hash": content_hash(text), "created_at": now, "updated_at": now,
            "access_count": 0, "last_accessed_at": None, "merged_from": [], "sources": [], "valid_from": now,
            "importance": max(m.importance for m in members),
        }
    )  # fmt: skip
    vector = embedder.embed([text], kind="document")[0]
    memory_id, _ = store.add(tenant_id, [NewRecord(item, text, vector)])[0]
    return store.get(tenant_id, memory_id)


def retention(item: MemoryItem, policy: PrunePolicy, now: datetime) -> float:
    """How much a memory deserves to stay, in [0, 1] when the weights sum to 1."""
    since = item.last_accessed_at or item.created_at
    age_days = max(0.0, (now - since).total_seconds() / 86_400)
    recency = math.pow(0.5, age_days / policy.half_life_days)
    access = 1 - math.exp(-item.access_count / 5)
    return policy.importance_weight * item.importance + policy.recency_weight * recency + policy.access_weight * access


def prune_reasons(items: list[MemoryItem], policy: PrunePolicy, now: datetime) -> dict[str, str]:
    """Which memories to forget, and why (the first rule that applies)."""
    reasons: dict[str, str] = {}
    for item in items:
        if policy.expired and item.expires_at is not None and item.expires_at <= now:
            reasons[item.id] = "expired"
        elif policy.ttl_days is not None and (now - item.created_at).total_seconds() > policy.ttl_days * 86_400:
            reasons[item.id] = f"older than {policy.ttl_days:g} days"
        elif policy.min_retention is not None and retention(item, policy, now) < policy.min_retention:
            reasons[item.id] = f"retention below {policy.min_retention:g}"
    if policy.max_memories is not None:
        kept = sorted((i for i in items if i.id not in reasons), key=lambda i: (-retention(i, policy, now), i.id))
        for item in kept[policy.max_memories :]:
            reasons[item.id] = f"over capacity ({policy.max_memories})"
    return reasons


def prune_policy(policy: PrunePolicy | dict[str, Any] | None) -> PrunePolicy:
    """A policy as the caller gives it (a dict from JSON, or none for the default), validated."""
    try:
        return policy if isinstance(policy, PrunePolicy) else PrunePolicy.model_validate(policy or {})
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid prune policy: {first_error(exc)}") from exc


def prune(store: Store, tenant_id: str, items: Iterable[MemoryItem], policy: PrunePolicy, *, hard: bool) -> PruneResult:
    """Forget what ``policy`` says should go among ``items`` (a scope's memories of ``policy.kinds``).

    Only active memories are judged: one already superseded or forgotten has left recall.
    Soft: one store call per reason, so each memory's history records why it went. Hard: the
    history goes with the rows, so one call does it (each call pays a whole erasure pass).
    """
    active = [i for i in items if i.state.value == "active"]
    reasons = prune_reasons(active, policy, utcnow())
    if hard and reasons:
        store.forget(tenant_id, list(reasons), reason="pruned", hard=True)
        return PruneResult(forgotten=reasons, hard=hard)
    for reason in sorted(set(reasons.values())):
        ids = [i for i, r in reasons.items() if r == reason]
        store.forget(tenant_id, ids, reason=reason, hard=hard)
    return PruneResult(forgotten=reasons, hard=hard)


def near_duplicate_groups(items: list[MemoryItem], vectors: np.ndarray) -> list[list[int]]:
    """Groups (by index) of same-kind, same-subject memories that say the same thing.

    Embedding similarity alone would merge "lives in Paris" with "lives in Berlin"; the
    word-overlap rule keeps them apart. Union-find over the qualifying pairs.
    """
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sims = vectors @ vectors.T if len(items) else np.zeros((0, 0))
    for i in range(len(items)):
        for j in np.flatnonzero(sims[i, i + 1 :] >= MERGE_COSINE) + i + 1:
            a, b = items[i], items[int(j)]
            if a.kind == b.kind and a.subject == b.subject and word_overlap(a.memory, b.memory) >= MERGE_WORDS:
                parent[root(int(j))] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(root(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def consolidate(
    store: Store, embedder: Embedder, tenant_id: str, items: Iterable[MemoryItem], merger: Merger | None = None
) -> ConsolidateResult:
    """Merge near-duplicates: an LLM-written statement when ``merger`` is given, else the most
    complete member (longest, then newest) survives as it is."""
    pool = list(items)
    if not pool:
        return ConsolidateResult()
    vectors = embedder.embed([i.memory for i in pool], kind="document")
    result = ConsolidateResult(examined=len(pool))
    for group in near_duplicate_groups(pool, vectors):
        members = [pool[i] for i in group]
        survivor = max(members, key=lambda m: (len(m.memory), m.created_at, m.id))
        if merger is not None:
            text, spent = merger.merge([m.memory for m in members])
            result.usage = result.usage + spent
            survivor = _merged_memory(store, embedder, tenant_id, members, text)
        others = [m for m in members if m.id != survivor.id]
        merged_from = sorted({*survivor.merged_from, *(m.id for m in others)})
        sources = sorted({*survivor.sources, *(s for m in others for s in m.sources)})
        store.supersede(tenant_id, [m.id for m in others], survivor.id, reason="consolidated")
        lineage = {"merged_from": json.dumps(merged_from), "sources": json.dumps(sources)}
        store.update(tenant_id, survivor.id, Change(updates=lineage))
        result.merged.append(MergedGroup(survivor=survivor.id, memory=survivor.memory, merged_from=merged_from))
    return result
