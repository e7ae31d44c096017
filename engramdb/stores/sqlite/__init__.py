from .store import SQLiteStore

__all__ = ["SQLiteStore"]
