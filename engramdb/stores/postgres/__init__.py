"""The PostgreSQL + pgvector store (``pip install "engramdb[postgres]"``)."""

from .store import PostgresStore

__all__ = ["PostgresStore"]
