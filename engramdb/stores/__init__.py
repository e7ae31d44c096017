"""Stores by URL: one facade, the backend chosen by the address.

``None`` → a file in the user's data directory; ``":memory:"``; ``"sqlite:///path.db"`` or a
plain path; ``"postgresql://..."`` → PostgreSQL with pgvector.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigurationError
from .base import Change, JobStore, KeyStore, MemoryStore, NewRecord, PortableStore, Query, Store, StoreHit


def default_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("engramdb")) / "memory.db"


def open_store(url: str | None = None, *, durability: str = "full") -> Store:
    """Open the store a URL names.

    Raises:
        ConfigurationError: an unsupported scheme.
    """
    from .sqlite import SQLiteStore

    if url is None:
        return SQLiteStore(str(default_path()), durability=durability)
    if url == ":memory:" or url in ("sqlite://", "sqlite:///:memory:"):
        return SQLiteStore(":memory:", durability=durability)
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :], durability=durability)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ConfigurationError(
                f"the PostgreSQL store needs its drivers: pip install 'engramdb[postgres]' ({exc})"
            ) from exc
        return PostgresStore(url, durability=durability)
    if "://" in url:
        raise ConfigurationError(f"unsupported store URL {url!r}: use ':memory:', 'sqlite:///path.db' or a path")
    return SQLiteStore(str(Path(url).expanduser()), durability=durability)


__all__ = [
    "Change",
    "JobStore",
    "KeyStore",
    "MemoryStore",
    "NewRecord",
    "PortableStore",
    "Query",
    "Store",
    "StoreHit",
    "default_path",
    "open_store",
]
