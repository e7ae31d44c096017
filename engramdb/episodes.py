"""Sessions as episodes: their span, participants and a summary that leads back to the turns.

Extractive by default (no LLM needed): the turns closest to the session's centroid, in
order. With an LLM configured, the LLM writes it. Either way the summary is a memory of
kind ``episode`` (``metadata.summary_of`` names the session) whose ``sources`` are the turns.

The functions take the store, the embedder and the tenant explicitly, and the memories to
read as an iterable (``Memory.iter_all`` over the scope's episodes), so this module needs
no ``Memory``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .embedders import Embedder
from .errors import NotFoundError
from .extraction.pipeline import Merger
from .ingest import same_owner
from .models import MemoryItem, Provenance, Scope, SessionEpisode, content_hash, new_id, utcnow
from .stores.base import NewRecord, Store

SUMMARY_KEY = "summary_of"


def list_sessions(memories: Iterable[MemoryItem]) -> list[SessionEpisode]:
    """One entry per session among an owner's episode ``memories``, oldest first.

    A session with no turns left (only summaries) has no entry: there is nothing to span.
    """
    by_session: dict[str, list[MemoryItem]] = {}
    for item in memories:
        if item.session_id is not None:
            by_session.setdefault(item.session_id, []).append(item)
    episodes = []
    for session_id, items in by_session.items():
        turns = [i for i in items if SUMMARY_KEY not in i.metadata]
        summaries = [i for i in items if SUMMARY_KEY in i.metadata]
        if not turns:
            continue
        times = [t.occurred_at or t.created_at for t in turns]
        names = sorted({t.provenance.name or t.provenance.role or "user" for t in turns})
        latest = summaries[-1] if summaries else None
        episodes.append(SessionEpisode(
            session_id=session_id, start=min(times), end=max(times), turns=len(turns), participants=names,
            summary_id=latest.id if latest else None, summary=latest.memory if latest else None,
        ))  # fmt: skip
    return sorted(episodes, key=lambda e: (e.start, e.session_id))


def expand_sources(store: Store, tenant_id: str, item: MemoryItem) -> list[MemoryItem]:
    """The memories ``item`` came from, in order, leaving out any outside its own scope.

    Sources are confined when they are written, but a link to another user's memory (an
    unconfined import of an earlier version) must not show that memory to this one's reader.
    """
    return [source for source in store.get_many(tenant_id, item.sources) if same_owner(item, source)]


def _extractive(embedder: Embedder, turns: list[MemoryItem], sentences: int) -> str:
    """The turns nearest the session's centroid, in the order they were said."""
    vectors = embedder.embed([t.memory for t in turns], kind="document")
    centroid = vectors.mean(axis=0)
    best = sorted(np.argsort(-(vectors @ centroid))[:sentences])
    return " ".join(f"{_speaker(turns[i])}: {turns[i].memory}" for i in best)


def _speaker(turn: MemoryItem) -> str:
    return turn.provenance.name or turn.provenance.role or "user"


def summarize(
    store: Store,
    embedder: Embedder,
    tenant_id: str,
    merger: Merger | None,
    scope: Scope,
    episodes: Iterable[MemoryItem],
    sentences: int,
) -> MemoryItem:
    """Store a summary of the session ``scope`` names, written by ``merger`` (an LLM) or extractive.

    ``episodes`` are every episode of the session, summaries included (every page: sessions
    run long): an earlier summary is superseded by the new one.
    """
    items = list(episodes)
    turns = [i for i in items if SUMMARY_KEY not in i.metadata]
    if not turns:
        raise NotFoundError(f"no turns in session {scope.session_id!r}")
    if merger is not None:
        text, _ = merger.merge([f"{_speaker(t)}: {t.memory}" for t in turns])
    else:
        text = _extractive(embedder, turns, max(1, sentences))
    now = utcnow()
    item = MemoryItem(
        id=new_id(), memory=text, kind="episode", hash=content_hash(text), **scope.model_dump(),
        metadata={SUMMARY_KEY: scope.session_id}, provenance=Provenance(session_id=scope.session_id),
        created_at=now, updated_at=now, occurred_at=turns[-1].occurred_at or turns[-1].created_at,
        valid_from=turns[0].occurred_at or turns[0].created_at, sources=[t.id for t in turns],
    )  # fmt: skip
    vector = embedder.embed([text], kind="document")[0]
    previous = [i.id for i in items if SUMMARY_KEY in i.metadata and i.state.value == "active"]
    memory_id, _ = store.add(tenant_id, [NewRecord(item, text, vector)])[0]
    if previous and memory_id not in previous:
        store.supersede(tenant_id, previous, memory_id, reason="session summarised again")
    return store.get(tenant_id, memory_id)
