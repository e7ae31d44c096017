"""engramdb: long-term memory for AI agents.

from engramdb import Memory
m = Memory()
m.add("I'm vegetarian", user_id="alice")
m.search("what does alice eat?", user_id="alice")
"""

from typing import TYPE_CHECKING

from .aio import AsyncMemory
from .config import LLMConfig, MemoryConfig, SearchOptions
from .context import Context, ContextItem
from .embedders import Embedder, EmbedderOptions
from .errors import ConfigurationError, EngramError, NotFoundError, ProviderError, StoreError, ValidationError
from .maintenance import ConsolidateResult, PrunePolicy, PruneResult
from .memory import Memory
from .models import (
    AddedItem,
    AddResult,
    DeleteResult,
    Event,
    ExtractionStatus,
    HistoryEntry,
    Job,
    JobPage,
    MemoryItem,
    MemoryState,
    Message,
    Page,
    Provenance,
    Scope,
    ScopeCount,
    ScoreDetail,
    SearchHit,
    SearchResult,
    SessionEpisode,
    StoreStats,
    Usage,
)

__version__ = "0.1.0"

if TYPE_CHECKING:  # a type checker sees the real classes; at run time they load lazily
    from .client import AsyncClient, Client


def __getattr__(name: str) -> object:
    """``Client`` and ``AsyncClient`` load httpx only when asked for."""
    if name in ("Client", "AsyncClient"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'engramdb' has no attribute {name!r}")


__all__ = [
    "AddResult",
    "AddedItem",
    "AsyncClient",
    "AsyncMemory",
    "Client",
    "ConfigurationError",
    "ConsolidateResult",
    "Context",
    "ContextItem",
    "DeleteResult",
    "Embedder",
    "EmbedderOptions",
    "EngramError",
    "Event",
    "ExtractionStatus",
    "HistoryEntry",
    "Job",
    "JobPage",
    "LLMConfig",
    "Memory",
    "MemoryConfig",
    "MemoryItem",
    "MemoryState",
    "Message",
    "NotFoundError",
    "Page",
    "Provenance",
    "ProviderError",
    "PrunePolicy",
    "PruneResult",
    "Scope",
    "ScopeCount",
    "ScoreDetail",
    "SearchHit",
    "SearchOptions",
    "SearchResult",
    "SessionEpisode",
    "StoreError",
    "StoreStats",
    "Usage",
    "ValidationError",
    "__version__",
]
