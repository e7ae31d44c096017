"""Numbered schema migrations for the PostgreSQL store, each applied in one transaction.

The same tables and meaning as the SQLite schema, in native types: ``timestamptz`` for times,
``jsonb`` for metadata, pgvector's ``vector`` for embeddings; the lexical index is two plain
tables, the same as SQLite's (``stores.lexicon``; migration 2 replaced a ``tsvector``).
Text columns compare with the "C" collation, so ordering (ids, cursors, ``gt`` filters) is
byte order, as in SQLite. Processes that start together serialise on an advisory lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg

from ...models import utcnow
from ..semantics import run
from ..sqlreads import refuse_newer

MIGRATION_LOCK = 0x656E6772  # pg_advisory_xact_lock key: "engr"


def _v1_initial(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE memories (
            id TEXT COLLATE "C" PRIMARY KEY,
            tenant_id TEXT COLLATE "C" NOT NULL,
            user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C", session_id TEXT COLLATE "C",
            kind TEXT COLLATE "C" NOT NULL,
            text TEXT COLLATE "C" NOT NULL,
            hash TEXT COLLATE "C" NOT NULL,
            metadata JSONB NOT NULL DEFAULT '{}',
            role TEXT COLLATE "C", speaker TEXT COLLATE "C",
            source_message_id TEXT COLLATE "C", source_session_id TEXT COLLATE "C",
            created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, occurred_at TIMESTAMPTZ,
            valid_from TIMESTAMPTZ, valid_to TIMESTAMPTZ, invalidated_at TIMESTAMPTZ,
            superseded_by TEXT COLLATE "C",
            state TEXT COLLATE "C" NOT NULL DEFAULT 'active',
            importance DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            access_count BIGINT NOT NULL DEFAULT 0,
            last_accessed_at TIMESTAMPTZ,
            expires_at TIMESTAMPTZ,
            subject TEXT COLLATE "C", slot TEXT COLLATE "C",
            sources JSONB NOT NULL DEFAULT '[]', merged_from JSONB NOT NULL DEFAULT '[]',
            index_text TEXT NOT NULL,
            tsv TSVECTOR NOT NULL,
            embedding VECTOR NOT NULL
        );
        CREATE INDEX memories_user ON memories (tenant_id, user_id, agent_id, session_id);
        CREATE INDEX memories_agent ON memories (tenant_id, agent_id);
        CREATE INDEX memories_session ON memories (tenant_id, session_id);
        CREATE INDEX memories_tenant_id ON memories (tenant_id, id);
        CREATE UNIQUE INDEX memories_dedupe ON memories
            (tenant_id, coalesce(user_id, ''), coalesce(agent_id, ''), coalesce(session_id, ''), hash)
            WHERE state = 'active';
        CREATE INDEX memories_slot ON memories (tenant_id, user_id, slot) WHERE slot IS NOT NULL;
        CREATE INDEX memories_tsv ON memories USING gin (tsv);
        CREATE TABLE memory_sources (
            memory_id TEXT COLLATE "C" NOT NULL, source_id TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (source_id, memory_id)
        );
        CREATE TABLE history (
            id TEXT COLLATE "C" PRIMARY KEY,
            memory_id TEXT COLLATE "C" NOT NULL,
            tenant_id TEXT COLLATE "C" NOT NULL,
            user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C", session_id TEXT COLLATE "C",
            event TEXT NOT NULL,
            old_memory TEXT, new_memory TEXT, old_metadata JSONB, new_metadata JSONB,
            reason TEXT,
            created_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX history_memory ON history (tenant_id, memory_id);
        CREATE INDEX history_user ON history (tenant_id, user_id);
        CREATE TABLE jobs (
            id TEXT COLLATE "C" PRIMARY KEY,
            tenant_id TEXT COLLATE "C" NOT NULL,
            user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C", session_id TEXT COLLATE "C",
            state TEXT NOT NULL,
            payload JSONB NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            result JSONB,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX jobs_state ON jobs (state, tenant_id);
        CREATE TABLE api_keys (
            id TEXT COLLATE "C" PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            tenant_id TEXT COLLATE "C" NOT NULL,
            name TEXT,
            user_ids JSONB,
            admin BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMPTZ NOT NULL,
            revoked_at TIMESTAMPTZ
        );
        """
    )
    conn.execute("INSERT INTO meta VALUES ('store_uid', %s)", (uuid.uuid4().hex,))


def _v2_scoped_lexicon(conn: psycopg.Connection) -> None:
    """The lexical index per owner scope (``stores.lexicon``) replaces the tsvector column. Pages
    keep 15% free, so that an access count's update stays in its page and no index changes."""
    from ..lexicon import Entry
    from . import tx, writes

    conn.execute(
        """
        CREATE TABLE lex_scopes (
            scope BIGINT PRIMARY KEY,
            tenant_id TEXT COLLATE "C" NOT NULL,
            user_id TEXT COLLATE "C", agent_id TEXT COLLATE "C", session_id TEXT COLLATE "C",
            docs BIGINT NOT NULL, text_len BIGINT NOT NULL
        );
        CREATE INDEX lex_scopes_user ON lex_scopes (tenant_id, user_id, agent_id);
        CREATE INDEX lex_scopes_agent ON lex_scopes (tenant_id, agent_id);
        CREATE TABLE lex_postings (
            tenant BIGINT NOT NULL, term BIGINT NOT NULL, scope BIGINT NOT NULL, field SMALLINT NOT NULL,
            mem TEXT COLLATE "C" NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL,
            PRIMARY KEY (tenant, term, scope, field, mem)
        );
        DROP INDEX memories_tsv;
        DROP INDEX memories_session;
        CREATE INDEX memories_session ON memories (tenant_id, session_id, id);
        ALTER TABLE memories SET (fillfactor = 85);
        """
    )
    language = conn.execute("SELECT value FROM meta WHERE key = 'text_search'").fetchone()
    cfg = language[0] if language else "english"
    with conn.cursor(name="lexicon_backfill") as rows:
        rows.execute(f"SELECT {writes.LEXICAL_COLUMNS} FROM memories")
        while batch := rows.fetchmany(2000):
            named = [dict(zip(writes.LEXICAL_COLUMNS.split(", "), r, strict=True)) for r in batch]
            entries: list[Entry] = [writes.lexical_entry(r, cfg) for r in named]
            run(writes.index(tx.SyncConnection(conn), entries))
    conn.execute("ALTER TABLE memories DROP COLUMN tsv")


def _v3_postings_by_scope(conn: psycopg.Connection) -> None:
    """Postings keyed scope first (``stores.lexicon``): one add's postings lie together in the index."""
    conn.execute(
        """
        ALTER TABLE lex_postings DROP CONSTRAINT lex_postings_pkey;
        ALTER TABLE lex_postings ADD PRIMARY KEY (tenant, scope, term, field, mem)
        """
    )


MIGRATIONS: list[tuple[int, str, Callable[[psycopg.Connection], None]]] = [
    (1, "initial schema", _v1_initial),
    (2, "lexical index per owner scope", _v2_scoped_lexicon),
    (3, "postings keyed by scope first", _v3_postings_by_scope),
]


def migrate(conn: psycopg.Connection, *, text_search: str) -> int:
    """Apply every migration the database has not seen; return the schema version.

    ``text_search`` (a PostgreSQL text search configuration) is recorded once, when the
    schema is created; a later value only applies to a new database.

    Raises:
        ConfigurationError: the database was written by a newer engramdb (nothing is written to it).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
        refuse_newer(done, max(v for v, _, _ in MIGRATIONS))
        for version, name, apply in MIGRATIONS:
            if version in done:
                continue
            apply(conn)
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, %s)", (version, name, utcnow().isoformat()))
            if version == 1:
                conn.execute("INSERT INTO meta VALUES ('text_search', %s)", (text_search,))
    return max(v for v, _, _ in MIGRATIONS)
