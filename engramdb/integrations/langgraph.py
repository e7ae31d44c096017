"""LangGraph: a ``BaseStore`` on engramdb, so agents and memory tools built on it keep working.

``pip install "engramdb[langgraph]"``. An item (namespace, key, value) is one memory:

- its text is the value's indexed fields (``index=[...]`` on put, else the store's
  ``fields``, else the whole value as JSON), embedded and full-text indexed, so ``search``
  with a query is engramdb's hybrid recall;
- the value, key and namespace levels live in its metadata, so ``get``, namespace prefixes
  and value filters are engramdb filters;
- the namespace maps to a scope: every item is in the agent scope ``agent_id`` (the store's
  name) and, with ``user_level=i``, the namespace's i-th level is its ``user_id``, so a
  user's LangGraph memories are a real engramdb scope (``Memory.search(user_id=...)``,
  ``delete_all(user_id=..., hard=True)``);
- each item is its own session scope (a hash of namespace and key), so equal values under
  two keys stay two memories;
- a TTL (minutes) becomes ``expires_at``; ``refresh_ttl`` pushes it forward on read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from ..memory import Memory
from ..models import MemoryItem, utcnow
from ..stores.base import Change

_OPS = {"$eq": "eq", "$ne": "ne", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
_PAGE = 1000


class EngramStore(BaseStore):
    """A LangGraph store whose items are engramdb memories.

    Example::

        store = EngramStore(Memory(), user_level=1)
        store.put(("memories", "alice"), "diet", {"text": "Alice is vegetarian"})
        store.search(("memories", "alice"), query="what can she eat?")
        graph = builder.compile(store=store)
    """

    supports_ttl = True

    def __init__(
        self,
        memory: Memory,
        *,
        name: str = "langgraph",
        user_level: int | None = None,
        fields: list[str] | None = None,
    ) -> None:
        self.memory, self.name, self.user_level, self.fields = memory, name, user_level, fields

    # --- BaseStore ------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return [self._run(op) for op in ops]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await asyncio.to_thread(self.batch, list(ops))

    def _run(self, op: Op) -> Result:
        if isinstance(op, GetOp):
            found = self._find(op.namespace, op.key)
            if found is not None and op.refresh_ttl:
                self._refresh(found)
            return _item(found) if found is not None else None
        if isinstance(op, PutOp):
            self._put(op)
            return None
        if isinstance(op, SearchOp):
            return self._search(op)
        if isinstance(op, ListNamespacesOp):
            return self._namespaces(op)
        raise TypeError(f"unknown operation {op!r}")

    # --- operations -----------------------------------------------------------------------

    def _user(self, namespace: tuple[str, ...]) -> str | None:
        if self.user_level is not None and len(namespace) > self.user_level:
            return namespace[self.user_level]
        return None

    def _where(self, prefix: tuple[str, ...], *, exact: bool, key: str | None = None) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = [{f"metadata.lg_ns{i}": level} for i, level in enumerate(prefix)]
        if exact:
            clauses.append({"metadata.lg_depth": len(prefix)})
        if key is not None:
            clauses.append({"metadata.lg_key": key})
        return {"AND": clauses} if clauses else {}

    def _find(self, namespace: tuple[str, ...], key: str) -> MemoryItem | None:
        page = self.memory.get_all(
            user_id=self._user(namespace), agent_id=self.name, filters=self._where(namespace, exact=True, key=key)
        )
        return page.results[0] if page.results else None

    def _put(self, op: PutOp) -> None:
        existing = self._find(op.namespace, op.key)
        if op.value is None:
            if existing is not None:
                self.memory.delete(existing.id)
            return
        text = self._text(op.value, op.index)
        metadata: dict[str, Any] = {f"lg_ns{i}": level for i, level in enumerate(op.namespace)}
        metadata.update(lg_depth=len(op.namespace), lg_key=op.key, lg_value=op.value)
        expires = utcnow() + timedelta(minutes=op.ttl) if op.ttl is not None else None
        if op.ttl is not None:
            metadata["lg_ttl"] = op.ttl
        if existing is None:
            self.memory.add(text, user_id=self._user(op.namespace), agent_id=self.name, kind="fact",
                            session_id=_item_scope(op.namespace, op.key), metadata=metadata, expires_at=expires,
                            infer=False)  # fmt: skip
            return
        self.memory.update(existing.id, text if text != existing.memory else None, metadata=metadata)
        self.memory.store.update(self.memory.tenant_id, existing.id, Change(updates={"expires_at": expires}))

    def _text(self, value: Mapping[str, Any], index: Any) -> str:
        fields = index if isinstance(index, list) else self.fields
        if fields:
            parts = [str(value[f]) for f in fields if value.get(f) not in (None, "")]
            if parts:
                return "\n".join(parts)
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def _refresh(self, item: MemoryItem) -> None:
        ttl = item.metadata.get("lg_ttl")
        if isinstance(ttl, (int, float)):
            when = utcnow() + timedelta(minutes=ttl)
            self.memory.store.update(self.memory.tenant_id, item.id, Change(updates={"expires_at": when}))

    def _search(self, op: SearchOp) -> list[SearchItem]:
        where = self._where(op.namespace_prefix, exact=False)
        for field, condition in (op.filter or {}).items():
            conditions = condition if isinstance(condition, dict) else {"$eq": condition}
            for operator, value in conditions.items():
                leaf = {f"metadata.lg_value.{field}": {_OPS.get(operator, operator): value}}
                where = {"AND": [where, leaf]} if where else leaf
        user = self._user(op.namespace_prefix)
        wanted = op.limit + op.offset
        if op.query:
            hits = self.memory.search(
                op.query, user_id=user, agent_id=self.name, filters=where or None, limit=min(wanted, _PAGE)
            ).results
            chosen: list[tuple[MemoryItem, float | None]] = [(h, h.score) for h in hits]
        else:
            page = self.memory.get_all(
                user_id=user, agent_id=self.name, filters=where or None, limit=min(wanted, _PAGE)
            )
            chosen = [(i, None) for i in page.results]
        chosen = chosen[op.offset : op.offset + op.limit]
        if op.refresh_ttl:
            for item, _ in chosen:
                self._refresh(item)
        return [_search_item(item, score) for item, score in chosen]

    def _namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        seen: set[tuple[str, ...]] = set()
        cursor = None
        while True:
            page = self.memory.get_all(agent_id=self.name, limit=_PAGE, cursor=cursor)
            seen.update(_namespace(item) for item in page.results)
            cursor = page.next_cursor
            if cursor is None:
                break
        found = {ns[: op.max_depth] if op.max_depth is not None else ns for ns in seen}
        matched = sorted(
            ns for ns in found if all(_matches(ns, c.match_type, c.path) for c in op.match_conditions or ())
        )
        return matched[op.offset : op.offset + op.limit]


def _item_scope(namespace: tuple[str, ...], key: str) -> str:
    """Each item its own session scope: two keys holding the same value stay two memories."""
    return "lg:" + hashlib.sha256(json.dumps([namespace, key]).encode()).hexdigest()[:32]


def _namespace(item: MemoryItem) -> tuple[str, ...]:
    return tuple(str(item.metadata[f"lg_ns{i}"]) for i in range(int(item.metadata.get("lg_depth", 0))))


def _item(item: MemoryItem) -> Item:
    return Item(value=item.metadata["lg_value"], key=item.metadata["lg_key"], namespace=_namespace(item),
                created_at=item.created_at, updated_at=item.updated_at)  # fmt: skip


def _search_item(item: MemoryItem, score: float | None) -> SearchItem:
    return SearchItem(namespace=_namespace(item), key=item.metadata["lg_key"], value=item.metadata["lg_value"],
                      created_at=item.created_at, updated_at=item.updated_at, score=score)  # fmt: skip


def _matches(namespace: tuple[str, ...], kind: str, path: tuple[str, ...]) -> bool:
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if kind == "prefix" else namespace[len(namespace) - len(path) :]
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))


__all__ = ["EngramStore"]
