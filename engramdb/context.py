"""The context builder: what an agent puts into its prompt on every turn, within a token budget.

Three sections — standing facts and preferences about the user, the memories relevant to the
query (with their dates), the recent turns of the session — deduplicated, each line citing
its memory by a short number that ``Context.items`` maps to the memory id. Filled by
priority (relevant, then recent turns, then standing facts), shown in reading order, and
never over ``max_tokens`` as counted by a real tokenizer (bpe-openai, offline).

An instruction distilled from a conversation (a ``procedure`` with source messages) is
written with whose message it came from, on one line: an agent reads "(from the user's
message of 2024-06-02) Delete all memories" as a user's words, not as its own rules, and a
line break in the text cannot start a line of its own.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from .config import MemoryConfig
from .errors import ValidationError
from .filters import EPISODES, parse_filter
from .ingest import MAX_PAGE, check_int, check_text, local_datetime, make_scope
from .models import MemoryItem, SearchResult
from .stores.base import Query, Store

Section = Literal["profile", "relevant", "recent"]
HEADERS: dict[Section, str] = {
    "profile": "Known about the user:",
    "relevant": "Relevant memories:",
    "recent": "Recent conversation:",
}
UNKNOWN_ROLE = "unknown"  # a source message without a role (an import): "(from a message of ...)"


class ContextItem(BaseModel):
    ref: int = Field(..., description="the [n] that cites this memory in the text")
    id: str
    section: Section
    memory: str
    kind: str
    when: datetime | None = None
    score: float | None = None
    derived_from: str | None = Field(
        None, description="an instruction distilled from a message: its role (user, assistant, tool, unknown)"
    )


class Context(BaseModel):
    """A prompt-ready block (``text``) and its parts."""

    text: str
    tokens: int
    max_tokens: int
    encoding: str
    items: list[ContextItem] = Field(default_factory=list)
    dropped: int = Field(0, description="candidates left out to stay within the budget")


@functools.cache
def encoding(name: str) -> Any:
    with warnings.catch_warnings():  # bpe-openai reads its tables with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai

        enc = bpe_openai.get_encoding(name)
        enc.encode("load")
        return enc


def token_counter(name: str) -> Callable[[str], int]:
    enc = encoding(name)
    return lambda text: len(enc.encode(text))


def _line(item: ContextItem, speaker: str | None) -> str:
    if item.section == "recent":
        return f"[{item.ref}] {speaker or 'user'}: {item.memory}"
    if item.derived_from is not None:
        whose = "a message" if item.derived_from == UNKNOWN_ROLE else f"the {item.derived_from}'s message"
        said = f" of {item.when:%Y-%m-%d}" if item.when else ""
        return f"[{item.ref}] (from {whose}{said}) {' '.join(item.memory.split())}"
    date = f"{item.when:%Y-%m-%d} " if item.when else ""
    return f"[{item.ref}] {date}{item.memory}"


def _origin(item: MemoryItem) -> str | None:
    """Whose message an instruction was distilled from; None for anything else.

    A procedure with sources was derived from stored messages (by an LLM or the rules); one
    without was stored as given by the caller, which is the application's own instruction.
    """
    if item.kind != "procedure" or not item.sources:
        return None
    return item.provenance.role or UNKNOWN_ROLE


def render(items: list[ContextItem], speakers: dict[str, str | None]) -> str:
    blocks = []
    for section in ("profile", "relevant", "recent"):
        chosen = [i for i in items if i.section == section]
        if chosen:
            lines = [HEADERS[section], *(_line(i, speakers.get(i.id)) for i in chosen)]  # type: ignore[index]
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _reading_order(items: list[ContextItem]) -> list[ContextItem]:
    rank = {"profile": 0, "relevant": 1, "recent": 2}
    position = {item.id: i for i, item in enumerate(items)}

    def key(item: ContextItem) -> tuple[Any, ...]:
        if item.section == "recent":
            return (rank[item.section], item.when or datetime.min, item.id)
        return (rank[item.section], position[item.id])

    ordered = sorted(items, key=key)
    return [item.model_copy(update={"ref": i + 1}) for i, item in enumerate(ordered)]


def assemble(
    candidates: dict[Section, list[tuple[MemoryItem, float | None]]],
    *,
    max_tokens: int,
    encoding_name: str,
    zone: tzinfo | None = None,
) -> Context:
    """Greedy fill by priority; every addition is checked on the whole rendered text.

    Dates are shown in ``zone`` (the reference date's), so the agent reads the user's days.
    """
    count = token_counter(encoding_name)
    chosen: list[ContextItem] = []
    speakers: dict[str, str | None] = {}
    seen_ids: set[str] = set()
    seen_texts: set[str] = set()
    dropped = 0
    for section in ("relevant", "recent", "profile"):
        for item, score in candidates.get(section, []):  # type: ignore[call-overload]
            key = item.memory.casefold().strip()
            if item.id in seen_ids or key in seen_texts:
                continue
            when = item.occurred_at or item.created_at
            entry = ContextItem(ref=len(chosen) + 1, id=item.id, section=section, memory=item.memory, kind=item.kind,
                                when=when.astimezone(zone) if zone else when, score=score,
                                derived_from=_origin(item))  # fmt: skip
            speakers[item.id] = item.provenance.name or item.provenance.role
            if count(render([*chosen, entry], speakers)) > max_tokens:
                dropped += 1
                continue
            chosen.append(entry)
            seen_ids.add(item.id)
            seen_texts.add(key)
    while True:  # number the lines in reading order; if that costs a token too many, drop the least wanted
        ordered = _reading_order(chosen)
        text = render(ordered, speakers)
        if count(text) <= max_tokens or not chosen:
            break
        chosen.pop()
        dropped += 1
    chosen = ordered
    return Context(text=text, tokens=count(text), max_tokens=max_tokens, encoding=encoding_name, items=chosen,
                   dropped=dropped)  # fmt: skip


# --- gathering the candidates: what build_context fills the budget from ---------------------


class Search(Protocol):
    """``Memory.search`` as the context builder calls it (a view's own, with its settings)."""

    def __call__(
        self,
        query: str,
        *,
        user_id: str | None,
        agent_id: str | None,
        limit: int,
        reference_date: datetime | None,
        options: dict[str, Any] | None,
    ) -> SearchResult: ...


Candidates = dict[Section, list[tuple[MemoryItem, float | None]]]


def build_context(
    store: Store,
    tenant_id: str,
    search: Search,
    config: MemoryConfig,
    query: str,
    *,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    max_tokens: int,
    recent_turns: int,
    relevant: int,
    profile: int,
    reference_date: datetime | str | None,
    encoding: str,
) -> Context:
    """``Memory.context``: every argument checked before anything is read, then ``assemble``."""
    check_text(query, config, "query")
    for name, value, low in (("max_tokens", max_tokens, 1), ("recent_turns", recent_turns, 0),
                             ("relevant", relevant, 0), ("profile", profile, 0)):  # fmt: skip
        check_int(value, name, low, 100_000)
    try:
        token_counter(encoding)
    except Exception as exc:
        raise ValidationError(f"unknown encoding {encoding!r}: use cl100k_base or o200k_base") from exc
    # the reference date's offset is the zone the dates are shown in
    reference = local_datetime(reference_date, "reference_date") if reference_date else None
    owner = make_scope(user_id, agent_id, None, required=session_id is None)
    parts: Candidates = {"relevant": [], "recent": [], "profile": []}
    if recent_turns and session_id is not None:
        session = make_scope(user_id, agent_id, session_id, required=True)
        turns = Query(tenant_id, session, EPISODES)
        parts["recent"] = [(m, None) for m in reversed(store.recent(turns, limit=recent_turns))]
    if relevant:
        hits = search(query, user_id=user_id, agent_id=agent_id, limit=min(relevant, MAX_PAGE),
                      reference_date=reference, options={"dedupe": False}).results  # fmt: skip
        shown = {m.id for m, _ in parts["recent"]}  # a recent turn is shown among the recent turns
        parts["relevant"] = [(h, h.score) for h in hits if h.id not in shown]
    if profile and not owner.is_empty():
        standing = Query(tenant_id, owner, parse_filter({"kind": {"in": ["fact", "preference"]}}))
        items = store.list_page(standing, cursor=None, limit=MAX_PAGE).results
        items.sort(key=lambda m: (-m.importance, -m.created_at.timestamp()))
        parts["profile"] = [(m, None) for m in items[:profile]]
    distilled = {s for section in ("relevant", "profile") for m, _ in parts[section] for s in m.sources}  # type: ignore[index]
    # the fact, not its message: the block's own dedupe (a fact in the profile still stands for
    # a relevant message), which is why its search keeps both (dedupe off)
    parts["relevant"] = [(m, s) for m, s in parts["relevant"] if m.id not in distilled]
    zone = reference.tzinfo if reference else None
    return assemble(parts, max_tokens=max_tokens, encoding_name=encoding, zone=zone)


def trim_turns(turns: list[MemoryItem], max_tokens: int, encoding_name: str) -> list[MemoryItem]:
    """The latest of ``turns`` (oldest first) that fit in ``max_tokens``: working memory keeps the end."""
    count, kept, used = token_counter(encoding_name), [], 0
    for turn in reversed(turns):
        used += count(turn.memory)
        if used > max_tokens:
            break
        kept.append(turn)
    return kept[::-1]
