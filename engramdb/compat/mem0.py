"""mem0's Python API on engramdb: change one import, keep the code.

    from engramdb.compat.mem0 import Memory      # was: from mem0 import Memory
    m = Memory.from_config({"vector_store": {"provider": "qdrant", "config": {"path": "/data/mem0"}},
                            "llm": {"provider": "ollama", "config": {"model": "llama3.1"}}})
    m.add("I'm vegetarian", user_id="alice")
    m.search("what can I cook?", filters={"user_id": "alice"}, top_k=5)   # mem0 2.x
    m.search("what can I cook?", user_id="alice", limit=5)                # mem0 1.x

    from engramdb.compat.mem0 import AsyncMemory  # was: from mem0 import AsyncMemory
    await AsyncMemory.from_config(config).search("what can I cook?", filters={"user_id": "alice"})

Results are mem0-shaped dicts (``{"results": [{"id", "memory", "score", ...}]}``), filters
mem0's language (``compat.mem0_wire``). mem0's configuration dict is mapped by
``compat.mem0_config``: the paths it names are where the SQLite file goes (``vector_store``'s
``path``, else ``history_db_path``), pgvector is the PostgreSQL store, ``embedder`` and ``llm``
the same models through engramdb's providers (none: the bundled offline model and the rule
extractor). A configuration key or a call argument engramdb does not honour is named in a
``Mem0CompatWarning`` and ignored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Coroutine
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from ..aio import AsyncMemory as EngramAsyncMemory
from ..config import MemoryConfig
from ..errors import NotFoundError, ValidationError
from ..memory import Memory as EngramMemory
from ..models import new_id, utcnow
from . import mem0_wire as wire
from .mem0_config import Mem0CompatWarning, map_config, unsupported

T = TypeVar("T")
P = ParamSpec("P")
_UNSET: Any = object()


@dataclass
class _Call(Generic[T]):
    """One mem0 method as engramdb's ``Memory`` runs it, and its answer in mem0's shape."""

    method: str
    shape: Callable[[Any], T]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    missing_is_none: bool = False  # mem0's get answers None for an unknown id


def _ignored(method: str, extra: dict[str, Any], why: str = "mem0 2.x has no such argument either") -> None:
    for name in extra:
        unsupported(f"{method}({name}=...)", why)


def _scoped(method: str, filters: dict[str, Any] | None, ids: dict[str, Any]) -> wire.Mem0Query:
    """mem0 2.x's filters, or 1.x's entity ids as arguments; anything else is warned about."""
    entities = {k: ids.pop(k) for k in list(ids) if k in wire.ENTITIES}
    _ignored(method, ids)
    return wire.translate(filters, **entities)


def _changes(result: Any) -> dict[str, Any]:
    return {"results": [change.model_dump() for change in wire.added(result)]}


def _memories(items: Any) -> dict[str, Any]:
    return {"results": [wire.memory(i).model_dump(mode="json") for i in items.results]}


def _unix_or_iso(value: Any, name: str) -> datetime | str | None:
    if value is None or isinstance(value, (datetime, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValidationError(f"{name} is not a Unix time engramdb can represent: {value!r}") from exc
    raise ValidationError(f"{name} takes a Unix time, a datetime or an ISO 8601 string, got {type(value).__name__}")


def _last_day(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(f"expiration_date takes YYYY-MM-DD, got {value!r}") from exc
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return wire.expires_after(value)
    raise ValidationError(f"expiration_date takes YYYY-MM-DD or a date, got {type(value).__name__}")


class _calls:
    """One builder per mem0 method, shared by ``Memory`` and ``AsyncMemory`` so they cannot drift."""

    @staticmethod
    def add(messages: Any, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
            metadata: dict[str, Any] | None = None, timestamp: Any = None, expiration_date: Any = None,
            infer: bool = True, memory_type: str | None = None, prompt: str | None = None,
            **extra: Any) -> _Call[dict[str, Any]]:  # fmt: skip
        """Store messages; with ``infer`` the results are the derived memories, as in mem0."""
        _ignored("add", extra)
        if prompt is not None:
            unsupported("add(prompt=...)", "extraction follows engramdb's prompts (override them in llm.prompts)")
        kwargs = {"user_id": user_id, "agent_id": agent_id, "session_id": run_id, "metadata": metadata,
                  "infer": infer, "kind": "procedure" if memory_type == "procedural_memory" else "episode",
                  "occurred_at": _unix_or_iso(timestamp, "timestamp"),
                  "expires_at": _last_day(expiration_date)}  # fmt: skip
        return _Call("add", _changes, (messages,), kwargs)

    @staticmethod
    def search(query: str, *, filters: dict[str, Any] | None = None, top_k: int | None = None,
               limit: int | None = None, threshold: float | None = None, rerank: bool = False,
               explain: bool = False, reference_date: Any = None, show_expired: bool = False,
               **ids: Any) -> _Call[dict[str, Any]]:  # fmt: skip
        if rerank:
            unsupported("search(rerank=True)", "results are ranked by fusing vector and full-text search")
        if explain:
            unsupported("search(explain=True)", "ask engramdb for its scores: .engram.search(..., explain=True)")
        q = _scoped("search", filters, ids)
        kwargs = {**q.scope(), "filters": q.filters, "limit": next((n for n in (top_k, limit) if n is not None), 20),
                  "threshold": 0 if threshold is None else threshold, "include_invalid": show_expired,
                  "reference_date": _unix_or_iso(reference_date, "reference_date")}  # fmt: skip
        return _Call("search", _memories, (query,), kwargs)  # threshold: mem0 cuts nothing unless asked

    @staticmethod
    def get(memory_id: str) -> _Call[dict[str, Any] | None]:
        """The memory, or None if there is none with this id (as mem0 answers)."""
        return _Call("get", lambda item: wire.memory(item).model_dump(mode="json"), (memory_id,), missing_is_none=True)

    @staticmethod
    def get_all(*, filters: dict[str, Any] | None = None, top_k: int | None = None, limit: int | None = None,
                show_expired: bool = False, **ids: Any) -> _Call[dict[str, Any]]:  # fmt: skip
        q = _scoped("get_all", filters, ids)
        kwargs = {**q.scope(), "filters": q.filters, "include_inactive": show_expired,
                  "limit": next((n for n in (top_k, limit) if n is not None), 20)}  # fmt: skip
        return _Call("get_all", _memories, kwargs=kwargs)

    @staticmethod
    def update(memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None,
               expiration_date: Any = _UNSET, data: str | None = None) -> _Call[dict[str, str]]:  # fmt: skip
        """``text`` (or mem0's older ``data``) and/or ``metadata``; the old version stays in history."""
        if expiration_date is not _UNSET:
            unsupported("update(expiration_date=...)", "an update changes a memory's text and metadata")
        return _Call("update", lambda _: {"message": "Memory updated successfully!"},
                     (memory_id, text if text is not None else data), {"metadata": metadata})  # fmt: skip

    @staticmethod
    def delete(memory_id: str) -> _Call[dict[str, str]]:
        return _Call("delete", lambda _: {"message": "Memory deleted successfully!"}, (memory_id,))

    @staticmethod
    def delete_all(user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> _Call[dict[str, str]]:  # fmt: skip
        return _Call("delete_all", lambda _: {"message": "Memories deleted successfully!"},
                     kwargs={"user_id": user_id, "agent_id": agent_id, "session_id": run_id})  # fmt: skip

    @staticmethod
    def history(memory_id: str) -> _Call[list[dict[str, Any]]]:
        return _Call("history", lambda entries: [wire.history(e).model_dump(mode="json") for e in entries],
                     (memory_id,))  # fmt: skip

    @staticmethod
    def reset() -> _Call[None]:
        """Every memory and all history of this Memory's tenant."""
        return _Call("reset", lambda _: None)


def _sync(build: Callable[P, _Call[T]]) -> Callable[Concatenate[Memory, P], T]:
    """A ``Memory`` method from its builder: the signature a type checker sees is the builder's."""

    def method(self: Memory, /, *args: P.args, **kwargs: P.kwargs) -> T:
        call = build(*args, **kwargs)
        try:
            result = getattr(self._memory, call.method)(*call.args, **call.kwargs)
        except NotFoundError:
            if call.missing_is_none:
                return None  # type: ignore[return-value]
            raise
        return call.shape(result)

    method.__name__ = method.__qualname__ = build.__name__
    method.__doc__ = build.__doc__ or f"mem0's ``Memory.{build.__name__}``."
    return method


def _async(build: Callable[P, _Call[T]]) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, T]]:
    """An ``AsyncMemory`` coroutine from the same builder as ``Memory``'s method."""

    async def method(self: AsyncMemory, /, *args: P.args, **kwargs: P.kwargs) -> T:
        call = build(*args, **kwargs)
        try:
            result = await getattr(self._memory, call.method)(*call.args, **call.kwargs)
        except NotFoundError:
            if call.missing_is_none:
                return None  # type: ignore[return-value]
            raise
        return call.shape(result)

    method.__name__ = method.__qualname__ = build.__name__
    method.__doc__ = build.__doc__ or f"mem0's ``AsyncMemory.{build.__name__}``."
    return method


def _config(config: MemoryConfig | dict[str, Any] | None) -> MemoryConfig:
    return map_config(config) if isinstance(config, dict) else config or MemoryConfig()


class Memory:
    """mem0's ``Memory`` class, backed by engramdb."""

    def __init__(self, config: MemoryConfig | dict[str, Any] | None = None) -> None:
        self._memory = EngramMemory(config=_config(config))

    @classmethod
    def from_config(cls, config_dict: dict[str, Any]) -> Memory:
        return cls(map_config(config_dict))

    @property
    def engram(self) -> EngramMemory:
        """The engramdb Memory underneath, for what mem0 does not have (context, as-of search...)."""
        return self._memory

    add = _sync(_calls.add)
    search = _sync(_calls.search)
    get = _sync(_calls.get)
    get_all = _sync(_calls.get_all)
    update = _sync(_calls.update)
    delete = _sync(_calls.delete)
    delete_all = _sync(_calls.delete_all)
    history = _sync(_calls.history)
    reset = _sync(_calls.reset)

    def close(self) -> None:
        self._memory.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncMemory:
    """mem0's ``AsyncMemory``: the same methods as ``Memory``, awaited (engramdb's ``AsyncMemory`` underneath)."""

    def __init__(self, config: MemoryConfig | dict[str, Any] | None = None) -> None:
        self._memory = EngramAsyncMemory(config=_config(config))

    @classmethod
    def from_config(cls, config_dict: dict[str, Any]) -> AsyncMemory:
        return cls(map_config(config_dict))

    @property
    def engram(self) -> EngramAsyncMemory:
        """The engramdb AsyncMemory underneath, for what mem0 does not have."""
        return self._memory

    add = _async(_calls.add)
    search = _async(_calls.search)
    get = _async(_calls.get)
    get_all = _async(_calls.get_all)
    update = _async(_calls.update)
    delete = _async(_calls.delete)
    delete_all = _async(_calls.delete_all)
    history = _async(_calls.history)
    reset = _async(_calls.reset)

    async def close(self) -> None:
        await self._memory.close()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def read_mem0(path: Path, *, user_id: str | None = None) -> list[dict[str, Any]]:
    """Memories from a mem0 export (JSON or JSON Lines of ``get_all`` results) or history database.

    mem0's history database (``history.db``) records every ADD/UPDATE/DELETE but not whose
    memory it was, so ``user_id`` is required for it; in an export it fills missing scopes.
    mem0's ids are kept, so references to them keep working.

    Raises:
        ValidationError: unreadable file, or a history database without ``user_id``.
    """
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        if not user_id:
            raise ValidationError("a mem0 history database does not say whose memories they are: pass a user id")
        return _from_history(path, user_id)
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = (
            json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read mem0 export {path}: {exc}") from exc
    rows = data.get("results", data.get("memories")) if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "memory" in r for r in rows):
        raise ValidationError(f"{path} is not a mem0 export: expected a list of objects with 'memory'")
    return [_item(r, user_id) for r in rows]


def _from_history(path: Path, user_id: str) -> list[dict[str, Any]]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT memory_id, new_memory, event, created_at, updated_at, is_deleted FROM history "
                "ORDER BY created_at, updated_at"
            ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ValidationError(f"{path} is not a mem0 history database: {exc}") from exc
    latest: dict[str, dict[str, Any]] = {}
    for memory_id, text, event, created, updated, deleted in rows:
        if event == "DELETE" or deleted:
            latest.pop(memory_id, None)
            continue
        first = latest.get(memory_id, {}).get("created_at", created)
        latest[memory_id] = {"id": memory_id, "memory": text, "created_at": first, "updated_at": updated or created}
    return [_item(r, user_id) for r in latest.values() if r["memory"]]


def _item(row: dict[str, Any], user_id: str | None) -> dict[str, Any]:
    now = utcnow().isoformat()
    scope = {"user_id": row.get("user_id") or user_id, "agent_id": row.get("agent_id"), "session_id": row.get("run_id")}
    return {
        "id": str(row.get("id") or new_id()), "memory": row["memory"], "kind": "fact", "hash": "",
        **scope, "metadata": row.get("metadata") or {},
        "created_at": row.get("created_at") or now, "updated_at": row.get("updated_at") or row.get("created_at") or now,
    }  # fmt: skip


__all__ = ["AsyncMemory", "Mem0CompatWarning", "Memory", "map_config", "read_mem0"]
