"""mem0's vocabulary on engramdb: its filters translated to ours, our results in its dict shapes.

Shared by the drop-in (``compat.mem0``) and the server's mem0 routes, so a mem0 call means the
same thing in a script and over HTTP.

mem0's filters (its v2 language) name entities and fields that engramdb spells differently::

    {"user_id": "alice"}                                    # plain, mem0 1.x and 2.x
    {"AND": [{"user_id": "alice"}, {"run_id": "*"}, {"created_at": {"gte": "2024-07-01"}}]}
    {"OR": [{"agent_id": {"in": ["a", "b"]}}, {"metadata": {"topic": "food"}}]}

An entity equal to a string at the top level (alone or as a clause of the top-level ``AND``)
becomes the search's scope (``run_id`` is engramdb's ``session_id``); ``"*"`` there (mem0's
"any value") confines nothing: a user's scope already spans all of its sessions. Everything
else becomes an engramdb filter. mem0's own fields keep their meaning (``run_id`` →
``session_id``, ``actor_id`` → ``speaker``, ``role``, ``hash``, ``created_at``,
``updated_at``); any other key is a metadata key, as in mem0's library, where metadata sits
beside the ids (``{"topic": "food"}``), and so is each key of ``{"metadata": {k: v}}`` (its
platform's spelling). ``NOT`` over a list is ``NOT`` over their ``AND``; mem0's operators
(``eq``, ``ne``, ``in``, ``nin``, ``gt``, ``gte``, ``lt``, ``lte``, ``contains``) are engramdb's
too. What has no counterpart (``app_id``, ``categories``, ``icontains``, ``"*"`` under ``OR`` or
``NOT``) is refused by name, never dropped: a narrower or wider result than asked for would be
silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import ValidationError
from ..models import AddResult, HistoryEntry, MemoryItem, ScopeCount, SearchHit

ENTITIES = {"user_id": "user_id", "agent_id": "agent_id", "run_id": "session_id"}
# mem0's own fields, by engramdb's names; any other key of a filter is a metadata key
FIELDS = {**ENTITIES, "actor_id": "speaker", "role": "role", "hash": "hash", "created_at": "created_at",
          "updated_at": "updated_at"}  # fmt: skip
WILDCARD = "*"
_UNSUPPORTED_FIELDS = {
    "app_id": "engramdb scopes memories by user_id, agent_id and run_id only (put an app in metadata)",
    "categories": "engramdb does not categorise memories (filter on metadata instead)",
}
_UNSUPPORTED_OPERATORS = {"icontains": "use contains, which is case-sensitive"}


@dataclass(frozen=True)
class Mem0Query:
    """What a mem0 call's entity ids and filters mean here: a scope and an engramdb filter."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    filters: dict[str, Any] | None = field(default=None)

    def scope(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id}


def translate(filters: dict[str, Any] | None, **ids: str | None) -> Mem0Query:
    """mem0's entity ids (``user_id``, ``agent_id``, ``run_id`` as arguments) and filters, as ours.

    Raises:
        ValidationError: a filter that is not an object, two values for one entity, or what
            engramdb cannot honour (see the module docstring).
    """
    if filters is not None and not isinstance(filters, dict):
        raise ValidationError(f"filters must be an object, got {type(filters).__name__}")
    scope = {ENTITIES[k]: v for k, v in ids.items() if v is not None}
    rest: list[dict[str, Any]] = []
    for clause in _top_clauses(filters or {}):
        entity = _entity(clause)
        if entity is None:
            rest.append(_node(clause))
        elif entity[1] != WILDCARD:
            name, value = entity
            if scope.get(name, value) != value:
                raise ValidationError(f"two values for {_mem0_name(name)}: {scope[name]!r} and {value!r}")
            scope[name] = value
    where = rest[0] if len(rest) == 1 else ({"AND": rest} if rest else None)
    return Mem0Query(**scope, filters=where)


def _top_clauses(filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The clauses ANDed at the top: each key of the object, and each clause of its ``AND``."""
    clauses: list[dict[str, Any]] = []
    for key, value in filters.items():
        if key == "AND" and isinstance(value, list) and all(isinstance(c, dict) for c in value):
            clauses.extend(value)
        else:
            clauses.append({key: value})
    return clauses


def _entity(clause: dict[str, Any]) -> tuple[str, str] | None:
    """``(engramdb name, value)`` when the clause is one entity equal to a string (or ``"*"``)."""
    if len(clause) != 1:
        return None
    [(key, value)] = clause.items()
    if isinstance(value, dict) and set(value) == {"eq"}:
        value = value["eq"]
    return (ENTITIES[key], value) if key in ENTITIES and isinstance(value, str) else None


def _node(spec: Any) -> dict[str, Any]:
    """One mem0 filter object as an engramdb one (below the top level, where ``"*"`` is refused)."""
    if not isinstance(spec, dict) or not spec:
        raise ValidationError("each filter clause must be a non-empty object")
    parts: list[dict[str, Any]] = []
    for key, value in spec.items():
        if key in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise ValidationError(f"{key} takes a non-empty list of clauses")
            parts.append({key: [_node(v) for v in value]})
        elif key == "NOT":
            children = value if isinstance(value, list) else [value]
            if not children:
                raise ValidationError("NOT takes a clause or a non-empty list of clauses")
            parts.append({"NOT": _node(children[0]) if len(children) == 1 else {"AND": [_node(c) for c in children]}})
        elif key == "metadata":
            if not isinstance(value, dict) or not value:
                raise ValidationError("a metadata filter takes a non-empty object of keys and values")
            parts.extend({f"metadata.{k}": _condition(f"metadata.{k}", v)} for k, v in value.items())
        else:
            parts.append({_field(key): _condition(key, value)})
    return parts[0] if len(parts) == 1 else {"AND": parts}


def _field(name: str) -> str:
    if name in _UNSUPPORTED_FIELDS:
        raise ValidationError(f"mem0's {name!r} filter has no counterpart: {_UNSUPPORTED_FIELDS[name]}")
    return FIELDS.get(name) or (name if name.startswith("metadata.") else f"metadata.{name}")


def _condition(name: str, value: Any) -> Any:
    if value == WILDCARD:
        raise ValidationError(f"'*' on {name!r} is supported at the top level or inside AND, not under OR or NOT")
    if isinstance(value, dict):
        for op in value:
            if op in _UNSUPPORTED_OPERATORS:
                raise ValidationError(f"mem0's {op!r} operator has no counterpart: {_UNSUPPORTED_OPERATORS[op]}")
    return value


def _mem0_name(name: str) -> str:
    return "run_id" if name == "session_id" else name


# --- results in mem0's shapes ---------------------------------------------------------------


class Mem0Memory(BaseModel):
    """A memory as mem0 returns it (get, get_all, search): every key present, ``None`` when unset."""

    id: str
    memory: str
    hash: str
    metadata: dict[str, Any] | None = None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = Field(None, description="engramdb's session_id")
    categories: list[str] | None = Field(None, description="always null: engramdb does not categorise")
    created_at: datetime
    updated_at: datetime
    expiration_date: date | None = Field(None, description="the last day the memory is recalled")
    role: str | None = None
    actor_id: str | None = Field(None, description="the speaker's name")
    score: float | None = Field(None, description="search only: relevance in [0, 1], higher is better")


class Mem0Change(BaseModel):
    """What an add did to one memory."""

    id: str
    memory: str
    event: Literal["ADD", "UPDATE", "DELETE"]


class Mem0HistoryEntry(BaseModel):
    id: str
    memory_id: str
    old_memory: str | None = None
    new_memory: str | None = None
    event: Literal["ADD", "UPDATE", "DELETE"]
    metadata: dict[str, Any] | None = None
    user_id: str | None = None
    created_at: datetime
    updated_at: datetime | None = None
    is_deleted: bool = False
    actor_id: str | None = None
    role: str | None = None


class Mem0Entity(BaseModel):
    """A user, agent or run (session) that holds memories, as mem0's ``users`` lists them."""

    id: str = Field(description="type:name")
    name: str
    type: Literal["user", "agent", "run"]
    total_memories: int
    owner: str = Field(description="the tenant")
    metadata: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def event_name(event: str) -> Literal["ADD", "UPDATE", "DELETE"]:
    """engramdb's events in mem0's closed set: a retraction is mem0's DELETE."""
    return "UPDATE" if event == "UPDATE" else "ADD" if event == "ADD" else "DELETE"


def memory(item: MemoryItem | SearchHit) -> Mem0Memory:
    last_day = (item.expires_at - timedelta(microseconds=1)).date() if item.expires_at else None
    return Mem0Memory(
        id=item.id, memory=item.memory, hash=item.hash, metadata=item.metadata or None, user_id=item.user_id,
        agent_id=item.agent_id, run_id=item.session_id, created_at=item.created_at, updated_at=item.updated_at,
        expiration_date=last_day, role=item.provenance.role, actor_id=item.provenance.name,
        score=item.score if isinstance(item, SearchHit) else None,
    )  # fmt: skip


def expires_after(day: date) -> datetime:
    """mem0's ``expiration_date`` as engramdb's ``expires_at``: recalled through that day (UTC)."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc)


def history(entry: HistoryEntry, item: MemoryItem | None = None) -> Mem0HistoryEntry:
    """One history entry; ``item`` (the memory, when known) gives its owner."""
    return Mem0HistoryEntry(
        id=entry.id, memory_id=entry.memory_id, old_memory=entry.old_memory, new_memory=entry.new_memory,
        event=event_name(entry.event.value), metadata=entry.new_metadata, user_id=item.user_id if item else None,
        created_at=entry.created_at, is_deleted=entry.event.value == "DELETE",
    )  # fmt: skip


def added(result: AddResult) -> list[Mem0Change]:
    """What an add reports, as mem0 does: the memories it changed. When memories are derived
    (``infer``), mem0 reports only those (the messages are engramdb's episodes, stored and
    searchable as well); a duplicate (NOOP) is not reported."""
    inferred = result.extraction is not None and result.extraction.state != "skipped"
    shown = [r for r in result.results if r.event.value != "NOOP" and not (inferred and r.kind == "episode")]
    return [Mem0Change(id=r.id, memory=r.memory, event=event_name(r.event.value)) for r in shown]


def entities(counts: list[ScopeCount], owner: str) -> list[Mem0Entity]:
    """Scopes as mem0's entities: each user, agent and run with the memories it holds, in that order."""
    totals: dict[tuple[str, str], int] = {}
    for count in counts:
        for kind, name in (("user", count.user_id), ("agent", count.agent_id), ("run", count.session_id)):
            if name is not None:
                totals[kind, name] = totals.get((kind, name), 0) + count.memories
    order = {"user": 0, "agent": 1, "run": 2}
    return [
        Mem0Entity(id=f"{kind}:{name}", name=name, type=kind, total_memories=n, owner=owner)  # type: ignore[arg-type]
        for (kind, name), n in sorted(totals.items(), key=lambda e: (order[e[0][0]], e[0][1]))
    ]


__all__ = [
    "ENTITIES", "FIELDS", "Mem0Change", "Mem0Entity", "Mem0HistoryEntry", "Mem0Memory", "Mem0Query", "added",
    "entities", "event_name", "expires_after", "history", "memory", "translate",
]  # fmt: skip
