"""The shapes that cross engramdb's boundaries (library, CLI, server, stores).

JSON output is deliberately close to mem0's so its users recognise it:
``add`` → ``{"results": [{"id", "memory", "event"}]}``,
``search`` → ``{"results": [{"id", "memory", "score", ...}]}``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from ulid import ULID

from .errors import ValidationError
from .usage import Usage as Usage

MAX_METADATA_DEPTH = 32
"""How deep metadata may nest ({"a": 1} is one level; each object or list inside adds one).

Deeper values cannot be encoded or filtered without exhausting the recursion limits of
Python's json module and SQLite's JSON functions, so they are refused before anything is written.
"""

MemoryKind = Literal["fact", "preference", "episode", "task", "procedure"]
MEMORY_KINDS: tuple[str, ...] = ("fact", "preference", "episode", "task", "procedure")
Role = Literal["user", "assistant", "system", "tool"]


class Event(str, Enum):
    """What an operation did to one memory (mem0's vocabulary, plus history events)."""

    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    NOOP = "NOOP"
    INVALIDATE = "INVALIDATE"


class MemoryState(str, Enum):
    """Lifecycle of a stored memory. Only ``active`` memories are recalled by default."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"  # replaced by a newer memory (``superseded_by``)
    INVALIDATED = "invalidated"  # no longer true, nothing replaces it (a retraction)
    FORGOTTEN = "forgotten"  # pruned: out of recall, kept in history


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to it."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def is_unicode(text: str) -> bool:
    """False for strings with lone surrogates (e.g. from a JSON "\\ud84e"), which no store can keep."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(text: str) -> bool:
    """Whether every store can keep and look up this string: Unicode, and no NUL (PostgreSQL's text holds none)."""
    return "\x00" not in text and is_unicode(text)


def check_metadata_depth(metadata: Any) -> None:
    """Refuse metadata nested deeper than ``MAX_METADATA_DEPTH``, walked without recursion.

    Raises:
        ValidationError: the value nests too deep.
    """
    pending: list[tuple[Any, int]] = [(metadata, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list, tuple)):
            if depth > MAX_METADATA_DEPTH:
                raise ValidationError(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)


M = TypeVar("M", bound=BaseModel)


def trusted(cls: type[M], data: dict[str, Any]) -> M:
    """A model from data that is already valid (a row the store validated when writing it).

    Search builds a dozen of these per query; pydantic's ``model_construct`` costs ~8 µs
    each, this ~1.5 µs. Anything but a complete set of fields goes through ``model_construct``.
    """
    if len(data) != len(cls.model_fields):
        return cls.model_construct(**data)
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", data)
    object.__setattr__(model, "__pydantic_fields_set__", set(data))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


def content_hash(text: str) -> str:
    """Hash of the stored text, used for exact-duplicate detection and the embedding cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _MonotonicUlid:
    """ULIDs that sort in creation order even within one millisecond (one process)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            value = int(ULID.from_timestamp(time.time()))
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return str(ULID.from_int(value))


new_id = _MonotonicUlid()


class Scope(BaseModel):
    """Who a memory belongs to. At least one id is required on every write."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None

    @field_validator("user_id", "agent_id", "session_id")
    @classmethod
    def _non_blank(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or len(value) > 256 or not storable(value)):
            raise ValueError("scope ids must be non-blank Unicode strings of at most 256 characters, without NUL")
        return value

    def is_empty(self) -> bool:
        return self.user_id is None and self.agent_id is None and self.session_id is None


class Provenance(BaseModel):
    """Where a memory came from: the message, its author and the session it was said in."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    name: str | None = None
    message_id: str | None = None
    session_id: str | None = None


class Message(BaseModel):
    """One OpenAI-style chat message, as accepted by ``Memory.add``."""

    model_config = ConfigDict(extra="forbid")

    role: Role = "user"
    content: str
    name: str | None = None
    timestamp: datetime | None = None
    id: str | None = None


class MemoryItem(BaseModel):
    """A stored memory, as returned by get, get_all and (with a score) search."""

    id: str
    memory: str
    kind: MemoryKind = "episode"
    hash: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=f"a JSON object nested at most {MAX_METADATA_DEPTH} levels deep"
    )
    provenance: Provenance = Field(default_factory=Provenance)
    created_at: datetime
    updated_at: datetime
    occurred_at: datetime | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    invalidated_at: datetime | None = None
    superseded_by: str | None = None
    state: MemoryState = MemoryState.ACTIVE
    importance: float = 0.5
    access_count: int = 0
    last_accessed_at: datetime | None = None
    expires_at: datetime | None = None
    subject: str | None = Field(None, description="who a derived memory is about (speaker attribution)")
    slot: str | None = Field(None, description="the attribute a fact fills, e.g. 'residence'; one value at a time")
    sources: list[str] = Field(default_factory=list, description="ids of the episodes a memory was derived from")
    merged_from: list[str] = Field(default_factory=list, description="ids of memories consolidated into this one")

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, session_id=self.session_id)


class ScoreDetail(BaseModel):
    """Why a search hit scored what it did (``explain=True``)."""

    dense_rank: int | None = None
    dense_similarity: float | None = None
    lexical_rank: int | None = None
    lexical_bm25: float | None = None
    fused: float
    recency: float | None = None
    importance: float | None = None
    speaker: float | None = Field(
        None, description="1 − speaker_weight when the query names speakers and this memory's is another, else 1"
    )
    when: float | None = Field(
        None, description="1 − when_weight when the query asks when and this memory names no time, else 1"
    )
    outdated: float | None = Field(
        None, description="1 − outdated_weight for a message whose derived memories no longer hold, else 1"
    )
    cosine: float | None = Field(
        None, description="the dense similarity relevance used (the weakest candidate's when not a dense one)"
    )
    coverage: float | None = Field(None, description="share of the query's words this memory says (relevance)")
    reach: float | None = Field(None, description="share of the query's words any candidate of the search says")
    who: float | None = Field(None, description="1 when the query names someone the scope has heard from")
    relevance: float | None = Field(None, description="σ of the four above, weighted (retrieval.relevance)")


class SearchHit(MemoryItem):
    """A memory with its rank score and its relevance, both in [0, 1].

    ``score`` orders the hits of one search (fused ranks times the factors); ``relevance`` is
    absolute, the same scale in every search and scope (``retrieval.relevance``): a search whose
    best hit's relevance is below the threshold returns nothing.
    """

    score: float
    relevance: float | None = None
    explain: ScoreDetail | None = None


class ResolvedTime(BaseModel):
    """The event-time range a search was confined to or favoured, [start, end) in UTC (either
    side open): read from the query's words ("last Friday", against ``reference_date``), or
    given as ``time_range``. Shown with ``explain`` so a person can see what a phrase meant."""

    start: datetime | None
    end: datetime | None
    expression: str = Field("", description="the words of the query it was read from (empty when given)")
    source: Literal["query", "time_range"]


class SearchResult(BaseModel):
    results: list[SearchHit]
    time_range: ResolvedTime | None = Field(
        None, description="with explain: the time range the search resolved to, if any"
    )
    dense_query: str | None = Field(
        None,
        description="with explain: the text the dense retriever embedded when it is not the query "
        "(the scope's speakers' names removed: SearchOptions.dense_without_speakers)",
    )


class AddedItem(BaseModel):
    """What add did to one memory.

    ADD: stored; NOOP: an (exact or near) duplicate already holds it, ``id`` is the existing
    one; UPDATE: stored as the new version of ``previous_id``, which is superseded;
    INVALIDATE: ``id`` was retracted by what the user said.
    """

    id: str
    memory: str
    event: Event
    kind: MemoryKind = "episode"
    previous_id: str | None = None
    sources: list[str] = Field(default_factory=list)
    reason: str | None = None


JobState = Literal["pending", "done", "failed"]


class ExtractionStatus(BaseModel):
    """How the memories derived from an add came about.

    ``state``: ``done`` (results include them), ``pending`` (the raw messages are stored and
    searchable; extraction runs in the background or will be retried: see ``Memory.job``),
    ``failed`` (gave up after ``attempts``), ``skipped`` (``infer=False`` or nothing to read).
    """

    extractor: Literal["rules", "llm", "none"]
    state: Literal["done", "pending", "failed", "skipped"]
    job_id: str | None = None
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)


class AddResult(BaseModel):
    results: list[AddedItem]
    extraction: ExtractionStatus | None = None


class Job(BaseModel):
    """A deferred extraction: durable with the messages it reads, so a crash cannot lose it.

    The scope and ``episode_ids`` say whose messages it reads, so a failed job can be traced
    to them (and confined to the users a key may reach) before it is retried."""

    id: str
    state: JobState
    attempts: int = 0
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    results: list[AddedItem] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    episode_ids: list[str] = Field(default_factory=list, description="the stored messages it extracts from")


class JobPage(BaseModel):
    """One page of ``Memory.jobs``, oldest first; ``next_cursor`` is None on the last page."""

    results: list[Job]
    next_cursor: str | None = None


class JobPayload(BaseModel):
    """What an extraction job derives from: the add's options and, once written, its messages' ids.

    Stored with the job (the ``payload`` column) and read back through this model, so a
    store, the runner and the pipeline agree on its fields instead of on dictionary keys.
    """

    model_config = ConfigDict(frozen=True)

    kind: str = "episode"
    metadata: dict[str, Any] = Field(default_factory=dict)
    importance: float = 0.5
    episode_ids: list[str] = Field(default_factory=list)


class Page(BaseModel):
    """One page of get_all: ``next_cursor`` is None on the last page; ``total`` counts all matches."""

    results: list[MemoryItem]
    total: int
    next_cursor: str | None = None


class HistoryEntry(BaseModel):
    """One change to a memory, oldest first in ``Memory.history``."""

    id: str
    memory_id: str
    event: Event
    old_memory: str | None = None
    new_memory: str | None = None
    old_metadata: dict[str, Any] | None = None
    new_metadata: dict[str, Any] | None = None
    reason: str | None = None
    created_at: datetime


class DeleteResult(BaseModel):
    deleted: int
    message: str = "ok"


class ScopeCount(BaseModel):
    """One scope (user, agent, session) that holds memories, and how many of them are in recall."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    memories: int
    inactive: int | None = Field(
        None, description="asked with include_inactive: its memories out of recall (superseded, invalidated, "
        "forgotten, expired), so a scope holding only those is listed too; None when not counted",
    )  # fmt: skip


class StoreStats(BaseModel):
    memories: int
    by_kind: dict[str, int]
    scopes: int
    history_rows: int
    embedder: str | None
    dimension: int | None
    schema_version: int
    location: str


class SessionEpisode(BaseModel):
    """One session seen as an episode: when, who, how many turns, and its summary once made."""

    session_id: str
    start: datetime
    end: datetime
    turns: int
    participants: list[str] = Field(default_factory=list)
    summary_id: str | None = None
    summary: str | None = None


class ApiKey(BaseModel):
    """A server API key as stored: only its hash is kept; the secret is shown once at creation."""

    id: str
    tenant_id: str
    name: str | None = None
    user_ids: list[str] | None = Field(None, description="None: every user of the tenant")
    admin: bool = False
    created_at: datetime
    revoked_at: datetime | None = None
