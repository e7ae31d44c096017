"""LangGraph: a ``BaseStore`` on engramdb, so agents and memory tools built on it keep working.

``pip install "engramdb[langgraph]"``. An item (namespace, key, value) is a set of memories:

- one memory per text it is found by (``index`` on put, else the store's ``fields``, else the
  whole value read as text: ``langgraph_values``), each with its own vector, so a query
  matching any one field finds the item, scored by its best (LangGraph's max over fields);
  the first is the item's *head* and also holds its value; ``index=False`` (or no text at the
  paths) keeps the item out of query searches, still found by ``get`` and filters;
- the namespace, key and a filter index of the value live in metadata, so namespace prefixes
  and value filters are conditions of the store's own query, applied before scoring;
- every item is in the agent scope ``name`` and, with ``user_level=i``, the namespace's i-th
  level is its ``user_id``: a user's LangGraph memories are a real engramdb scope
  (``Memory.search(user_id=...)``, ``delete_all(user_id=..., hard=True)``);
- each item is its own session scope (a hash of namespace and key), so equal values under
  two keys stay two memories, and an item's memories are read in one scoped lookup;
- a TTL (minutes) becomes ``expires_at`` on its memories: expired items are never returned
  (``omit_expired`` always holds), ``refresh_ttl`` pushes the expiry on, ``sweep_ttl``
  deletes them.

A query search ranks by vector similarity, and ``SearchItem.score`` is the cosine similarity
of the query and the item's best text, in [-1, 1], higher being more similar: what
LangGraph's own stores return. engramdb's hybrid recall is ``Memory.search``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, TypedDict

import pydantic
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigurationError, EngramError, ValidationError
from ..filters import format_datetime
from ..ingest import MAX_PAGE, first_error
from ..memory import Memory
from ..models import MemoryItem, utcnow
from ..planner import plan_change
from ..stores.base import Change
from .embeddings import EngramEmbeddings, embedder_for, open_memory
from .langgraph_values import INDEX, filter_index, item_texts, value_filter, value_text
from .nearest import nearest, query_vector

log = logging.getLogger("engramdb.langgraph")
_PART, _KEY, _DEPTH, _VALUE, _TTL, _INDEXED = "lg_part", "lg_key", "lg_depth", "lg_value", "lg_ttl", "lg_indexed"
_HEADS = {"NOT": {f"metadata.{_PART}": {"gte": 1}}}  # the head of each item holds its value
_FOUND = {f"metadata.{_INDEXED}": {"ne": False}}  # what a query may find: not index=False


class _Scope(TypedDict):
    """An item's memories: its session scope within the store's agent (and the user, by ``user_level``)."""

    user_id: str | None
    agent_id: str | None
    session_id: str | None


class IndexSettings(BaseModel):
    """LangGraph's ``index`` store config, checked: an unknown key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    embed: Any = Field(None, description="LangChain Embeddings, a function, or 'provider:model'")
    dims: int | None = Field(None, gt=0)
    fields: list[str] | None = None
    distance_type: Literal["cosine"] = "cosine"


class TTLSettings(BaseModel):
    """LangGraph's ``ttl`` store config. Expired items are never returned, whatever ``omit_expired``."""

    model_config = ConfigDict(extra="forbid")

    refresh_on_read: bool = True
    default_ttl: float | None = Field(None, gt=0)
    sweep_interval_minutes: float | None = Field(None, gt=0)
    omit_expired: bool = True


class EngramStore(BaseStore):
    """A LangGraph store whose items are engramdb memories.

    Args:
        memory: a ``Memory``, or a store URL (``":memory:"``, ``"sqlite:///path.db"``, ...) for
            the store to open (and close) itself, with the index's embeddings.
        index: LangGraph's index config: ``embed`` (a LangChain ``Embeddings``, a function, or a
            ``"provider:model"`` engramdb can load), ``dims``, ``fields`` (default ``["$"]``).
        ttl: LangGraph's TTL config (``default_ttl``, ``refresh_on_read``, ``sweep_interval_minutes``).
        name: the agent scope of every item.
        user_level: the namespace level that is the ``user_id``.
        fields: shorthand for ``index={"fields": fields}``.

    Raises:
        ConfigurationError: an unknown config key, embeddings engramdb cannot load, or
            embeddings other than those of the ``Memory`` given.

    Example::

        store = EngramStore(Memory(), user_level=1, index={"fields": ["text"]})
        store.put(("memories", "alice"), "diet", {"text": "Alice is vegetarian"})
        store.search(("memories", "alice"), query="what can she eat?")   # score: cosine similarity
        graph = builder.compile(store=store)
    """

    supports_ttl = True

    def __init__(
        self,
        memory: Memory | str | None = None,
        *,
        index: IndexConfig | Mapping[str, Any] | None = None,
        ttl: TTLConfig | Mapping[str, Any] | None = None,
        name: str = "langgraph",
        user_level: int | None = None,
        fields: list[str] | None = None,
    ) -> None:
        settings = _settings(IndexSettings, {**({"fields": fields} if fields else {}), **(index or {})}, "index")
        ttl_settings = _settings(TTLSettings, ttl or {}, "ttl")
        self.memory, self._owned = _open(memory, settings)
        self.name, self.user_level, self.fields = name, user_level, settings.fields or ["$"]
        self.index_config = {"dims": self.memory.embedder.dimension, "embed": settings.embed, "fields": self.fields}
        self.ttl_config: TTLConfig | None = dict(ttl) if ttl else None  # type: ignore[assignment]
        self._lock = threading.RLock()  # one writer per item in this process: a put reads, then writes
        self._stop = threading.Event()
        if ttl_settings.sweep_interval_minutes:
            threading.Thread(target=self._sweeper, args=(ttl_settings.sweep_interval_minutes * 60,), daemon=True,
                             name="engramdb-ttl-sweeper").start()  # fmt: skip

    @property
    def embeddings(self) -> EngramEmbeddings:
        """The store's embeddings as LangChain's ``Embeddings`` (LangGraph stores expose theirs)."""
        return EngramEmbeddings(self.memory.embedder)

    def close(self) -> None:
        """Stop the TTL sweeper; close the Memory if this store opened it."""
        self._stop.set()
        if self._owned:
            self.memory.close()

    def __enter__(self) -> EngramStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- BaseStore ------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Each operation in order: a put is seen by the operations after it."""
        return [self._run(op) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    def _run(self, op: Op) -> Result:
        validate_op_namespace(op)
        if isinstance(op, GetOp):
            head = self._head(op.namespace, op.key)
            if head is not None and op.refresh_ttl:
                self._refresh(head)
            return _item(head) if head is not None else None
        if isinstance(op, PutOp):
            with self._lock:
                self._put(op)
            return None
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._namespaces(op)
        raise ValidationError(f"unknown LangGraph operation {type(op).__name__}")

    # --- items ----------------------------------------------------------------------------

    def _user(self, namespace: tuple[str, ...]) -> str | None:
        if self.user_level is not None and len(namespace) > self.user_level:
            return namespace[self.user_level]
        return None

    def _scope(self, namespace: tuple[str, ...], key: str) -> _Scope:
        return _Scope(user_id=self._user(namespace), agent_id=self.name, session_id=_item_scope(namespace, key))

    def _rows(self, scope: _Scope) -> list[MemoryItem]:
        """An item's memories, its head first."""
        rows = self.memory.get_all(**scope, limit=MAX_PAGE).results
        return sorted(rows, key=lambda row: (row.metadata.get(_PART, 0), row.id))

    def _head(self, namespace: tuple[str, ...], key: str) -> MemoryItem | None:
        found = self.memory.get_all(**self._scope(namespace, key), filters=_HEADS, limit=1).results
        return found[0] if found else None

    def _put(self, op: PutOp) -> None:
        scope = self._scope(op.namespace, op.key)
        rows = self._rows(scope)
        if op.value is None:
            if rows:
                self.memory.delete_all(**scope)
            return
        value = _checked(op.value)
        paths = op.index if isinstance(op.index, list) else self.fields
        texts = item_texts(value, paths) if op.index is not False else []
        if len(texts) > MAX_PAGE:
            raise ValidationError(f"an item is found by at most {MAX_PAGE} texts; its index paths give {len(texts)}")
        common: dict[str, Any] = {f"lg_ns{i}": level for i, level in enumerate(op.namespace)}
        common.update({_DEPTH: len(op.namespace), _KEY: op.key, _INDEXED: bool(texts), INDEX: filter_index(value)})
        texts = texts or [value_text(value) or op.key]
        head_meta = {**common, _PART: 0, _VALUE: value, **({_TTL: op.ttl} if op.ttl is not None else {})}
        expires = utcnow() + timedelta(minutes=op.ttl) if op.ttl is not None else None
        head = rows[0] if rows and rows[0].metadata.get(_PART, 0) == 0 else None
        wanted = {text: i for i, text in enumerate(texts) if i > 0}
        kept: dict[str, MemoryItem] = {}
        for row in rows[1:] if head else rows:  # a row whose text stays keeps its vector; the others go
            if row.memory in wanted and row.memory not in kept:
                kept[row.memory] = row
            else:
                self.memory.delete(row.id)
        if head is None:
            self._add(texts[0], scope, head_meta, expires)
        else:
            self._change(head, texts[0], head_meta, expires)
        for text, part in wanted.items():
            meta = {**common, _PART: part}
            if text in kept:
                self._change(kept[text], None, meta, expires)
            else:
                self._add(text, scope, meta, expires)

    def _add(self, text: str, scope: _Scope, metadata: dict[str, Any], expires: Any) -> None:
        self.memory.add(text, **scope, metadata=metadata, kind="fact", expires_at=expires, infer=False)

    def _change(self, row: MemoryItem, text: str | None, metadata: dict[str, Any], expires: Any) -> None:
        """One write: new text (re-embedded) if it changed, the metadata, the expiry."""
        new_text = text if text is not None and text != row.memory else None
        memory_id, change = plan_change(self.memory.config, self.memory.embedder, row.id, new_text, metadata)
        change.times["expires_at"] = expires
        self.memory.store.update(self.memory.tenant_id, memory_id, change)

    def _refresh(self, head: MemoryItem) -> None:
        """A read pushes a TTL item's expiry on, on all its memories."""
        ttl = head.metadata.get(_TTL)
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool):
            return
        when = utcnow() + timedelta(minutes=ttl)
        scope = _Scope(user_id=head.user_id, agent_id=head.agent_id, session_id=head.session_id)
        with self._lock:
            for row in self._rows(scope):  # a read is no update: updated_at stays
                change = Change(times={"expires_at": when, "updated_at": row.updated_at})
                self.memory.store.update(self.memory.tenant_id, row.id, change)

    # --- search ---------------------------------------------------------------------------

    def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.limit < 0 or op.offset < 0:
            raise ValidationError("limit and offset must not be negative")
        where = _prefix(op.namespace_prefix) + value_filter(op.filter or {})
        user, wanted = self._user(op.namespace_prefix), op.offset + op.limit
        query = op.query.strip() if isinstance(op.query, str) else ""
        if query:
            found = self._similar(query, where, user, wanted)
        else:
            found = [(head, None) for head in self._heads(where, user, wanted)]
        chosen = found[op.offset : wanted]
        if op.refresh_ttl:
            for head, _ in chosen:
                self._refresh(head)
        return [_search_item(head, score) for head, score in chosen]

    def _similar(
        self, query: str, where: list[dict[str, Any]], user: str | None, wanted: int
    ) -> list[tuple[MemoryItem, float | None]]:
        """The items whose best text is nearest the query, best first (more memories than items
        are read when items have several texts)."""
        vector, k = query_vector(self.memory, query), max(2 * wanted, 10)
        while True:
            hits = nearest(self.memory, vector, k=k, user_id=user, agent_id=self.name,
                           filters={"AND": [*where, _FOUND]})  # fmt: skip
            best: dict[str | None, tuple[MemoryItem, float]] = {}
            for row, score in hits:
                best.setdefault(row.session_id, (row, score))
            if len(best) >= wanted or len(hits) < k:
                break
            k *= 4
        heads = self._heads_of([s for s, (row, _) in best.items() if row.metadata.get(_PART, 0) != 0], user)
        out: list[tuple[MemoryItem, float | None]] = []
        for session, (row, score) in best.items():
            head = row if row.metadata.get(_PART, 0) == 0 else heads.get(session)
            if head is not None:
                out.append((head, score))
        return out[:wanted]

    def _heads(self, where: list[dict[str, Any]], user: str | None, wanted: int) -> list[MemoryItem]:
        """The heads matching ``where``, in creation order, up to ``wanted``."""
        heads: list[MemoryItem] = []
        cursor = None
        while len(heads) < wanted:
            page = self.memory.get_all(user_id=user, agent_id=self.name, filters={"AND": [*where, _HEADS]},
                                       limit=min(wanted - len(heads), MAX_PAGE), cursor=cursor)  # fmt: skip
            heads.extend(page.results)
            cursor = page.next_cursor
            if cursor is None:
                break
        return heads

    def _heads_of(self, sessions: list[str | None], user: str | None) -> dict[str | None, MemoryItem]:
        found: dict[str | None, MemoryItem] = {}
        for start in range(0, len(sessions), MAX_PAGE):
            chunk = sessions[start : start + MAX_PAGE]
            where: list[dict[str, Any]] = [{"session_id": {"in": chunk}}, _HEADS]
            found.update((h.session_id, h) for h in self._heads(where, user, len(chunk)))
        return found

    def _namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        conditions = op.match_conditions or ()
        where = [c for m in conditions if m.match_type == "prefix" for c in _prefix(m.path)]  # the store narrows
        seen: set[tuple[str, ...]] = set()
        cursor = None
        while True:
            page = self.memory.get_all(agent_id=self.name, filters={"AND": [*where, _HEADS]}, limit=MAX_PAGE,
                                       cursor=cursor)  # fmt: skip
            seen.update(_namespace(item) for item in page.results)
            if (cursor := page.next_cursor) is None:
                break
        matched = {ns for ns in seen if all(_matches(ns, c.match_type, c.path) for c in conditions)}
        found = sorted({ns[: op.max_depth] for ns in matched} if op.max_depth is not None else matched)
        return found[op.offset : op.offset + op.limit]

    # --- TTL ------------------------------------------------------------------------------

    def sweep_ttl(self) -> int:
        """Delete the items whose TTL has run out (they are already never returned); how many."""
        expired = {(m.user_id, m.session_id) for m in self.memory.iter_all(
            agent_id=self.name, include_inactive=True, filters={"expires_at": {"lte": format_datetime(utcnow())}}
        )}  # fmt: skip
        with self._lock:
            for user, session in expired:
                self.memory.delete_all(user_id=user, agent_id=self.name, session_id=session)
        return len(expired)

    def _sweeper(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                self.sweep_ttl()
            except EngramError as exc:  # the next sweep tries again
                log.warning("TTL sweep failed: %s", exc)


def _settings(model: type[pydantic.BaseModel], values: Mapping[str, Any], what: str) -> Any:
    try:
        return model.model_validate(dict(values))
    except pydantic.ValidationError as exc:
        raise ConfigurationError(f"EngramStore {what}: {first_error(exc)}") from None


def _open(memory: Memory | str | None, settings: IndexSettings) -> tuple[Memory, bool]:
    """The Memory to keep items in, and whether the store opened it (and so closes it)."""
    embedder = embedder_for(settings.embed, dimension=settings.dims) if settings.embed is not None else None
    opened, owned = open_memory(memory, embedder)
    if settings.dims is not None and settings.dims != opened.embedder.dimension:
        raise ConfigurationError(
            f"index dims is {settings.dims}; the Memory's embedder has {opened.embedder.dimension} dimensions"
        )
    return opened, owned


def _checked(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"an item's value must be an object with string keys, not {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"an item's value must be JSON (finite numbers): {exc}") from None
    return dict(value)


def _prefix(prefix: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{f"metadata.lg_ns{i}": level} for i, level in enumerate(prefix) if level != "*"]


def _item_scope(namespace: tuple[str, ...], key: str) -> str:
    """Each item its own session scope: two keys holding the same value stay two memories."""
    return "lg:" + hashlib.sha256(json.dumps([namespace, key]).encode()).hexdigest()[:32]


def _namespace(item: MemoryItem) -> tuple[str, ...]:
    return tuple(str(item.metadata[f"lg_ns{i}"]) for i in range(int(item.metadata.get(_DEPTH, 0))))


def _item(head: MemoryItem) -> Item:
    return Item(value=head.metadata[_VALUE], key=head.metadata[_KEY], namespace=_namespace(head),
                created_at=head.created_at, updated_at=head.updated_at)  # fmt: skip


def _search_item(head: MemoryItem, score: float | None) -> SearchItem:
    return SearchItem(namespace=_namespace(head), key=head.metadata[_KEY], value=head.metadata[_VALUE],
                      created_at=head.created_at, updated_at=head.updated_at, score=score)  # fmt: skip


def _matches(namespace: tuple[str, ...], kind: str, path: tuple[str, ...]) -> bool:
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if kind == "prefix" else namespace[len(namespace) - len(path) :]
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))


__all__ = ["EngramStore", "IndexSettings", "TTLSettings"]
