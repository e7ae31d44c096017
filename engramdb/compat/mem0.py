"""mem0's Python API on engramdb: change one import, keep the code.

    from engramdb.compat.mem0 import Memory      # was: from mem0 import Memory
    m = Memory.from_config({"llm": {"provider": "ollama", "config": {"model": "llama3.1"}}})
    m.add("I'm vegetarian", user_id="alice")
    m.search("what can I cook?", filters={"user_id": "alice"}, top_k=5)   # mem0 2.x
    m.search("what can I cook?", user_id="alice", limit=5)                # mem0 1.x

Results are mem0-shaped dicts (``{"results": [{"id", "memory", "score", ...}]}``). mem0's
configuration dict is mapped to engramdb's: ``vector_store`` pgvector → the PostgreSQL
store (any other provider → engramdb's SQLite file, or ``{"engramdb": {"store": URL}}``);
``embedder`` huggingface / openai / ollama → the same model through engramdb's providers
(none → the bundled offline model); ``llm`` openai / ollama / vllm / lmstudio / any
OpenAI-compatible server → ``LLMConfig`` (none → the offline rule extractor).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from ..config import LLMConfig, MemoryConfig
from ..embedders import EmbedderOptions
from ..errors import NotFoundError, ValidationError
from ..memory import Memory as EngramMemory
from ..models import HistoryEntry, MemoryItem, SearchHit, new_id, utcnow

_LLM_URL_KEYS = ("openai_base_url", "ollama_base_url", "vllm_base_url", "lmstudio_base_url", "base_url")
_ENTITY = ("user_id", "agent_id", "run_id")


def map_config(config: dict[str, Any]) -> MemoryConfig:
    """mem0's configuration dict as a MemoryConfig (see the module docstring for the mapping)."""
    if not isinstance(config, dict):
        raise ValidationError("a mem0 configuration is a dict")
    own = dict(config.get("engramdb") or {})
    store = own.pop("store", None) or _store(config.get("vector_store") or {})
    embedder, options = _embedder(config.get("embedder") or {})
    llm = _llm(config.get("llm") or {})
    return MemoryConfig(store=store, embedder=embedder, embedder_options=options, llm=llm, **own)


def _store(vector_store: dict[str, Any]) -> str | None:
    cfg = vector_store.get("config") or {}
    if vector_store.get("provider") != "pgvector":
        return cfg.get("path") if str(cfg.get("path", "")).endswith(".db") else None
    if cfg.get("connection_string"):
        return str(cfg["connection_string"])
    auth = cfg.get("user", "postgres") + (f":{cfg['password']}" if cfg.get("password") else "")
    return f"postgresql://{auth}@{cfg.get('host', 'localhost')}:{cfg.get('port', 5432)}/{cfg.get('dbname', 'postgres')}"


def _embedder(embedder: dict[str, Any]) -> tuple[str | None, EmbedderOptions]:
    provider, cfg = embedder.get("provider"), embedder.get("config") or {}
    if provider is None:
        return None, EmbedderOptions()
    names = {"huggingface": "sentence-transformers", "openai": "openai", "ollama": "ollama", "lmstudio": "openai"}
    if provider not in names:
        raise ValidationError(f"mem0 embedder provider {provider!r} has no engramdb counterpart: use {sorted(names)}")
    base = cfg.get("openai_base_url") or cfg.get("ollama_base_url") or cfg.get("lmstudio_base_url")
    if provider == "ollama" and base and not base.rstrip("/").endswith("/v1"):
        base = base.rstrip("/") + "/v1"
    options = EmbedderOptions(base_url=base, api_key=cfg.get("api_key"), dimension=cfg.get("embedding_dims"))
    return f"{names[provider]}:{cfg.get('model', 'all-MiniLM-L6-v2')}", options


def _llm(llm: dict[str, Any]) -> LLMConfig | None:
    if not llm:
        return None
    cfg = llm.get("config") or {}
    base = next((cfg[k] for k in _LLM_URL_KEYS if cfg.get(k)), None)
    if llm.get("provider") == "ollama":
        base = (base or "http://localhost:11434").rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
    return LLMConfig(model=cfg.get("model", "gpt-4.1-nano"), base_url=base, api_key=cfg.get("api_key"),
                     temperature=cfg.get("temperature", 0.0))  # fmt: skip


def _scope(kwargs: dict[str, Any], filters: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Entity ids from keyword arguments (mem0 1.x) or from ``filters`` (mem0 2.x)."""
    rest = dict(filters or {})
    ids = {key: kwargs.get(key) or rest.pop(key, None) for key in _ENTITY}
    scope = {"user_id": ids["user_id"], "agent_id": ids["agent_id"], "session_id": ids["run_id"]}
    metadata = {f"metadata.{k}" if k not in ("AND", "OR", "NOT") else k: v for k, v in rest.items() if v != "*"}
    return scope, metadata or None


def _shape(item: MemoryItem | SearchHit) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": item.id, "memory": item.memory, "hash": item.hash, "metadata": item.metadata or None,
        "created_at": item.created_at.isoformat(), "updated_at": item.updated_at.isoformat(),
    }  # fmt: skip
    for key, value in (("user_id", item.user_id), ("agent_id", item.agent_id), ("run_id", item.session_id),
                       ("role", item.provenance.role), ("actor_id", item.provenance.name)):  # fmt: skip
        if value is not None:
            out[key] = value
    if isinstance(item, SearchHit):
        out["score"] = item.score
    return out


def _history(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "memory_id": entry.memory_id, "old_memory": entry.old_memory,
        "new_memory": entry.new_memory, "event": entry.event.value if entry.event.value != "INVALIDATE" else "DELETE",
        "created_at": entry.created_at.isoformat(), "updated_at": None, "is_deleted": entry.event.value == "DELETE",
        "actor_id": None, "role": None,
    }  # fmt: skip


class Memory:
    """mem0's ``Memory`` class, backed by engramdb."""

    def __init__(self, config: MemoryConfig | dict[str, Any] | None = None) -> None:
        config = map_config(config) if isinstance(config, dict) else config
        self._memory = EngramMemory(config=config or MemoryConfig())

    @classmethod
    def from_config(cls, config_dict: dict[str, Any]) -> Memory:
        return cls(map_config(config_dict))

    @property
    def engram(self) -> EngramMemory:
        """The engramdb Memory underneath, for what mem0 does not have (context, as-of search...)."""
        return self._memory

    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, metadata: dict[str, Any] | None = None, infer: bool = True,
            memory_type: str | None = None, **_: Any) -> dict[str, Any]:  # fmt: skip
        """Store messages; with ``infer`` the results are the derived memories, as in mem0."""
        kind = "procedure" if memory_type == "procedural_memory" else "episode"
        result = self._memory.add(messages, user_id=user_id, agent_id=agent_id, session_id=run_id,
                                  metadata=metadata, infer=infer, kind=kind)  # fmt: skip
        shown = [r for r in result.results if r.event.value != "NOOP" and (not infer or r.kind != "episode")]
        return {"results": [{"id": r.id, "memory": r.memory, "event": _event(r.event.value)} for r in shown]}

    def search(self, query: str, *, filters: dict[str, Any] | None = None, top_k: int | None = None,
               limit: int | None = None, threshold: float | None = None, **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        scope, where = _scope(kwargs, filters)
        hits = self._memory.search(query, **scope, filters=where, limit=top_k or limit or 20, threshold=threshold)
        return {"results": [_shape(h) for h in hits.results]}

    def get(self, memory_id: str) -> dict[str, Any] | None:
        try:
            return _shape(self._memory.get(memory_id))
        except NotFoundError:
            return None

    def get_all(self, *, filters: dict[str, Any] | None = None, top_k: int | None = None,
                limit: int | None = None, **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        scope, where = _scope(kwargs, filters)
        page = self._memory.get_all(**scope, filters=where, limit=top_k or limit or 100)
        return {"results": [_shape(i) for i in page.results]}

    def update(self, memory_id: str, data: str | None = None, *, text: str | None = None,
               metadata: dict[str, Any] | None = None, **_: Any) -> dict[str, str]:  # fmt: skip
        self._memory.update(memory_id, text if text is not None else data, metadata=metadata)
        return {"message": "Memory updated successfully!"}

    def delete(self, memory_id: str) -> dict[str, str]:
        self._memory.delete(memory_id)
        return {"message": "Memory deleted successfully!"}

    def delete_all(self, user_id: str | None = None, agent_id: str | None = None,
                   run_id: str | None = None) -> dict[str, str]:  # fmt: skip
        self._memory.delete_all(user_id=user_id, agent_id=agent_id, session_id=run_id)
        return {"message": "Memories deleted successfully!"}

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        return [_history(e) for e in self._memory.history(memory_id)]

    def reset(self) -> None:
        self._memory.reset()

    def close(self) -> None:
        self._memory.close()


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


def _event(event: str) -> str:
    return {"INVALIDATE": "DELETE"}.get(event, event)


__all__ = ["Memory", "map_config", "read_mem0"]
