"""Sessions as episodes: their span, participants and a summary that leads back to the turns.

Extractive by default (no LLM needed): the turns closest to the session's centroid, in
order. With an LLM configured, the LLM writes it. Either way the summary is a memory of
kind ``episode`` (``metadata.summary_of`` names the session) whose ``sources`` are the turns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import NotFoundError
from .ingest import same_owner
from .models import MemoryItem, Provenance, Scope, SessionEpisode, content_hash, new_id, utcnow
from .stores.base import NewRecord

if TYPE_CHECKING:
    from .memory import Memory

SUMMARY_KEY = "summary_of"


def list_sessions(memory: Memory, owner: Scope) -> list[SessionEpisode]:
    by_session: dict[str, list[MemoryItem]] = {}
    for item in memory.iter_all(**owner.model_dump(), kind="episode", limit=1000):
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


def expand_sources(memory: Memory, item: MemoryItem) -> list[MemoryItem]:
    """The memories ``item`` came from, in order, leaving out any outside its own scope.

    Sources are confined when they are written, but a link to another user's memory (an
    unconfined import of an earlier version) must not show that memory to this one's reader.
    """
    return [source for source in memory.store.get_many(memory.tenant_id, item.sources) if same_owner(item, source)]


def _extractive(memory: Memory, turns: list[MemoryItem], sentences: int) -> str:
    """The turns nearest the session's centroid, in the order they were said."""
    vectors = memory.embedder.embed([t.memory for t in turns], kind="document")
    centroid = vectors.mean(axis=0)
    best = sorted(np.argsort(-(vectors @ centroid))[:sentences])
    return " ".join(f"{_speaker(turns[i])}: {turns[i].memory}" for i in best)


def _speaker(turn: MemoryItem) -> str:
    return turn.provenance.name or turn.provenance.role or "user"


def summarize(memory: Memory, scope: Scope, sentences: int) -> MemoryItem:
    items = list(memory.iter_all(**scope.model_dump(), kind="episode", limit=1000))  # every page: sessions run long
    turns = [i for i in items if SUMMARY_KEY not in i.metadata]
    if not turns:
        raise NotFoundError(f"no turns in session {scope.session_id!r}")
    merge = getattr(memory._runner.deriver.extractor, "merge", None)
    if merge is not None:
        text, _ = merge([f"{_speaker(t)}: {t.memory}" for t in turns])
    else:
        text = _extractive(memory, turns, max(1, sentences))
    now = utcnow()
    item = MemoryItem(
        id=new_id(), memory=text, kind="episode", hash=content_hash(text), **scope.model_dump(),
        metadata={SUMMARY_KEY: scope.session_id}, provenance=Provenance(session_id=scope.session_id),
        created_at=now, updated_at=now, occurred_at=turns[-1].occurred_at or turns[-1].created_at,
        valid_from=turns[0].occurred_at or turns[0].created_at, sources=[t.id for t in turns],
    )  # fmt: skip
    vector = memory.embedder.embed([text], kind="document")[0]
    previous = [i.id for i in items if SUMMARY_KEY in i.metadata and i.state.value == "active"]
    memory_id, _ = memory.store.add(memory.tenant_id, [NewRecord(item, text, vector)])[0]
    if previous and memory_id not in previous:
        memory.store.supersede(memory.tenant_id, previous, memory_id, reason="session summarised again")
    return memory.store.get(memory.tenant_id, memory_id)
