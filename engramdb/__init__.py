"""engramdb: long-term memory for AI agents.

from engramdb import Memory
m = Memory()
m.add("I'm vegetarian", user_id="alice")
m.search("what does alice eat?", user_id="alice")
"""

from .aio import AsyncMemory
from .config import MemoryConfig, SearchOptions
from .embedders import Embedder, EmbedderOptions
from .errors import ConfigurationError, EngramError, NotFoundError, ProviderError, StoreError, ValidationError
from .memory import Memory
from .models import (
    AddedItem,
    AddResult,
    DeleteResult,
    Event,
    HistoryEntry,
    MemoryItem,
    MemoryState,
    Message,
    Page,
    Provenance,
    Scope,
    ScoreDetail,
    SearchHit,
    SearchResult,
    StoreStats,
)

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "AddedItem",
    "AsyncMemory",
    "ConfigurationError",
    "DeleteResult",
    "Embedder",
    "EmbedderOptions",
    "EngramError",
    "Event",
    "HistoryEntry",
    "Memory",
    "MemoryConfig",
    "MemoryItem",
    "MemoryState",
    "Message",
    "NotFoundError",
    "Page",
    "Provenance",
    "ProviderError",
    "Scope",
    "ScoreDetail",
    "SearchHit",
    "SearchOptions",
    "SearchResult",
    "StoreError",
    "StoreStats",
    "ValidationError",
    "__version__",
]
