"""mem0's configuration dict as engramdb's ``MemoryConfig``: where memories live, which models.

Where the memories live (the first that applies)::

    {"engramdb": {"store": URL}}                     that store (any engramdb URL)
    vector_store pgvector                            that PostgreSQL database (connection_string,
                                                     or user, password, host, port, dbname)
    vector_store {"config": {"path": P}}             the SQLite file P/engramdb.db (qdrant, chroma
                                                     and faiss keep their files in P); P itself
                                                     when it ends in .db, .sqlite or .sqlite3
    history_db_path H                                the SQLite file H; if H is mem0's own history
                                                     database, it is left untouched and engramdb
                                                     writes H-engramdb beside it (and says so)
    nothing                                          engramdb's default file

engramdb keeps history in the same file as the memories, so a ``history_db_path`` beside a
vector store path names nothing more. A ``collection_name`` is the tenant: two collections in
one file never see each other's memories. ``embedder`` and ``llm`` map to the same models
through engramdb's providers (see ``compat.mem0``).

What engramdb does not use — ``graph_store``, ``reranker``, custom prompts, a vector store's
server address, a provider option, a key it does not know — is named in a ``Mem0CompatWarning``
and ignored, never dropped silently. What it cannot stand in for (an embedder or LLM provider
with no counterpart) is a ``ValidationError``.
"""

from __future__ import annotations

import inspect
import sqlite3
import warnings
from contextlib import closing
from pathlib import Path
from typing import Any

import pydantic

from ..config import LLMConfig, MemoryConfig
from ..embedders import EmbedderOptions
from ..errors import ValidationError
from ..ingest import first_error


class Mem0CompatWarning(UserWarning):
    """A part of a mem0 configuration or call that engramdb does not honour, and ignores."""


_HERE = str(Path(__file__).parent)


def unsupported(what: str, why: str) -> None:
    """Warn that ``what`` is ignored, pointing at the caller's line (the first frame outside this package)."""
    level, frame = 1, inspect.currentframe()
    while frame is not None and frame.f_code.co_filename.startswith(_HERE):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{what} is not supported by engramdb and is ignored: {why}", Mem0CompatWarning, level)


_IGNORED_TOP = {
    "graph_store": "engramdb keeps no graph of entities (a derived memory names its subject instead)",
    "reranker": "engramdb ranks by fusing vector and full-text search, with no reranker to call",
    "custom_instructions": "extraction follows engramdb's prompts (override them in llm.prompts)",
    "custom_fact_extraction_prompt": "extraction follows engramdb's prompts (override them in llm.prompts)",
    "custom_update_memory_prompt": "extraction follows engramdb's prompts (override them in llm.prompts)",
}
_PGVECTOR = {"connection_string", "user", "password", "host", "port", "dbname"}
_STORE_ANY = {"collection_name", "embedding_model_dims", "on_disk"}  # tenant; the embedder's own; always on disk
_DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_EMBEDDERS = {"huggingface": "sentence-transformers", "openai": "openai", "ollama": "ollama", "lmstudio": "openai"}
_EMBEDDER_KEYS = {"model", "api_key", "embedding_dims", "openai_base_url", "ollama_base_url", "lmstudio_base_url"}
_LLM_URL_KEYS = ("openai_base_url", "ollama_base_url", "vllm_base_url", "lmstudio_base_url", "base_url")
_LLMS = ("openai", "ollama", "vllm", "lmstudio")  # OpenAI-compatible; another needs a base URL
_LLM_KEYS = {"model", "api_key", "temperature", *_LLM_URL_KEYS}


def map_config(config: dict[str, Any]) -> MemoryConfig:
    """mem0's configuration dict as a MemoryConfig (see the module docstring for the mapping).

    Raises:
        ValidationError: not a dict, or a provider engramdb has no counterpart for.
    """
    if not isinstance(config, dict):
        raise ValidationError("a mem0 configuration is a dict")
    for key in config:
        if key in _IGNORED_TOP:
            unsupported(f"mem0's {key!r}", _IGNORED_TOP[key])
        elif key not in ("vector_store", "embedder", "llm", "history_db_path", "version", "engramdb"):
            unsupported(f"the configuration key {key!r}", "mem0 2.x does not know it either")
    if config.get("version") not in (None, "v1.1"):
        unsupported(f"version {config['version']!r}", "results are always in mem0's v1.1 shape ({'results': [...]})")
    own = dict(config.get("engramdb") or {})
    vector_store = config.get("vector_store") or {}
    store, tenant = _store(vector_store, config.get("history_db_path"), own.get("store"))
    embedder, options = _embedder(config.get("embedder") or {})
    mapped: dict[str, Any] = {"store": store, "embedder": embedder, "embedder_options": options,
                              "llm": _llm(config.get("llm") or {})}  # fmt: skip
    if tenant is not None:
        mapped["tenant_id"] = tenant
    try:
        return MemoryConfig(**{**mapped, **own})
    except pydantic.ValidationError as exc:
        raise ValidationError(f"this mem0 configuration maps to an invalid one: {first_error(exc)}") from None


def _store(vector_store: dict[str, Any], history_db_path: str | None, explicit: str | None) -> tuple[str | None, Any]:
    """The store URL the configuration names, and the tenant its collection is."""
    cfg = dict(vector_store.get("config") or {})
    tenant = cfg.get("collection_name")
    if explicit is not None:
        if vector_store or history_db_path:
            unsupported("vector_store and history_db_path", "engramdb.store names the store")
        return explicit, tenant
    if vector_store.get("provider") == "pgvector":
        _unused(cfg, _PGVECTOR | _STORE_ANY, "vector_store.config")
        if history_db_path:
            unsupported("history_db_path", "history is kept in the PostgreSQL database with the memories")
        return _postgres_url(cfg), tenant
    _unused(cfg, {"path"} | _STORE_ANY, "vector_store.config", why="engramdb keeps memories in one SQLite file")
    if cfg.get("path"):
        if history_db_path:
            unsupported("history_db_path", "history is kept in the same SQLite file as the memories")
        path = Path(str(cfg["path"])).expanduser()
        return str(path if path.suffix in _DB_SUFFIXES else path / "engramdb.db"), tenant
    if history_db_path:
        return _beside_mem0_history(Path(str(history_db_path)).expanduser()), tenant
    return None, tenant


def _postgres_url(cfg: dict[str, Any]) -> str:
    if cfg.get("connection_string"):
        return str(cfg["connection_string"])
    auth = cfg.get("user", "postgres") + (f":{cfg['password']}" if cfg.get("password") else "")
    return f"postgresql://{auth}@{cfg.get('host', 'localhost')}:{cfg.get('port', 5432)}/{cfg.get('dbname', 'postgres')}"


def _beside_mem0_history(path: Path) -> str:
    """``path``, unless mem0 keeps its history there: then a file beside it, never mem0's own."""
    if not _is_mem0_history(path):
        return str(path)
    beside = path.with_name(f"{path.stem}-engramdb{path.suffix or '.db'}")
    unsupported(
        f"history_db_path {str(path)!r} as engramdb's file",
        f"it is mem0's own history database, left untouched; engramdb keeps its memories in {str(beside)!r} "
        f"(bring the old ones over with: engramdb import --from-mem0 {path} --user USER --store {beside})",
    )
    return str(beside)


def _is_mem0_history(path: Path) -> bool:
    """A SQLite file with mem0's ``history`` table and none of engramdb's migrations."""
    if not path.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return False  # not SQLite: the store refuses it when it opens it, with its own message
    return "history" in tables and "schema_migrations" not in tables


def _unused(cfg: dict[str, Any], used: set[str], where: str, *, why: str = "engramdb has no such option") -> None:
    for key in sorted(set(cfg) - used):
        unsupported(f"{where}.{key}", why)


def _embedder(embedder: dict[str, Any]) -> tuple[str | None, EmbedderOptions]:
    provider, cfg = embedder.get("provider"), embedder.get("config") or {}
    if provider is None:
        return None, EmbedderOptions()
    if provider not in _EMBEDDERS:
        raise ValidationError(
            f"mem0 embedder provider {provider!r} has no engramdb counterpart: use {sorted(_EMBEDDERS)}"
        )
    _unused(cfg, _EMBEDDER_KEYS, "embedder.config")
    base = cfg.get("openai_base_url") or cfg.get("ollama_base_url") or cfg.get("lmstudio_base_url")
    if provider == "ollama" and base and not base.rstrip("/").endswith("/v1"):
        base = base.rstrip("/") + "/v1"
    options = EmbedderOptions(base_url=base, api_key=cfg.get("api_key"), dimension=cfg.get("embedding_dims"))
    return f"{_EMBEDDERS[provider]}:{cfg.get('model', 'all-MiniLM-L6-v2')}", options


def _llm(llm: dict[str, Any]) -> LLMConfig | None:
    if not llm:
        return None
    provider, cfg = llm.get("provider", "openai"), llm.get("config") or {}
    base = next((cfg[k] for k in _LLM_URL_KEYS if cfg.get(k)), None)
    if provider not in _LLMS and base is None:
        raise ValidationError(
            f"mem0 llm provider {provider!r} has no engramdb counterpart: use {', '.join(_LLMS)}, or any "
            "OpenAI-compatible server with its openai_base_url"
        )
    _unused(cfg, _LLM_KEYS, "llm.config")
    if provider == "ollama":
        base = (base or "http://localhost:11434").rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
    return LLMConfig(model=cfg.get("model", "gpt-4.1-nano"), base_url=base, api_key=cfg.get("api_key"),
                     temperature=cfg.get("temperature", 0.0))  # fmt: skip


__all__ = ["Mem0CompatWarning", "map_config", "unsupported"]
