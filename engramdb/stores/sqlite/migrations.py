"""Numbered schema migrations for the SQLite store, each applied in one transaction.

A migration is appended, never edited: files in the wild carry the versions they ran.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable

from ...models import utcnow
from ..sqlreads import refuse_newer


def _run(conn: sqlite3.Connection, script: str) -> None:
    """Run statements one by one: executescript would commit the migration's transaction."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def _v1_initial(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO counters VALUES ('seq', 0);
        CREATE TABLE memories (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            tenant_id TEXT NOT NULL,
            user_id TEXT, agent_id TEXT, session_id TEXT,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            hash TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            role TEXT, speaker TEXT, source_message_id TEXT, source_session_id TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, occurred_at TEXT,
            valid_from TEXT, valid_to TEXT, invalidated_at TEXT, superseded_by TEXT,
            state TEXT NOT NULL DEFAULT 'active',
            importance REAL NOT NULL DEFAULT 0.5,
            access_count INTEGER NOT NULL DEFAULT 0,
            last_accessed_at TEXT,
            expires_at TEXT,
            index_text TEXT NOT NULL,
            embedding BLOB NOT NULL,
            seq INTEGER NOT NULL
        );
        CREATE INDEX memories_user ON memories (tenant_id, user_id, agent_id, session_id);
        CREATE INDEX memories_agent ON memories (tenant_id, agent_id);
        CREATE INDEX memories_session ON memories (tenant_id, session_id);
        CREATE INDEX memories_seq ON memories (seq);
        CREATE UNIQUE INDEX memories_dedupe ON memories
            (tenant_id, ifnull(user_id, ''), ifnull(agent_id, ''), ifnull(session_id, ''), hash)
            WHERE state = 'active';
        CREATE VIRTUAL TABLE memories_fts USING fts5 (
            text, speaker, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TABLE tombstones (seq INTEGER NOT NULL, row INTEGER NOT NULL);
        CREATE INDEX tombstones_seq ON tombstones (seq);
        CREATE TABLE history (
            id TEXT PRIMARY KEY,
            memory_id TEXT NOT NULL,
            tenant_id TEXT NOT NULL,
            user_id TEXT, agent_id TEXT, session_id TEXT,
            event TEXT NOT NULL,
            old_memory TEXT, new_memory TEXT, old_metadata TEXT, new_metadata TEXT,
            reason TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX history_memory ON history (tenant_id, memory_id);
        CREATE INDEX history_user ON history (tenant_id, user_id);
        """,
    )


def _v2_store_uid(conn: sqlite3.Connection) -> None:
    """A random identity, so a cache beside the file (the vector snapshot) can tell it is ours."""
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('store_uid', ?)", (uuid.uuid4().hex,))


def _v3_smart_memory(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        ALTER TABLE memories ADD COLUMN subject TEXT;
        ALTER TABLE memories ADD COLUMN slot TEXT;
        ALTER TABLE memories ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE memories ADD COLUMN merged_from TEXT NOT NULL DEFAULT '[]';
        CREATE INDEX memories_slot ON memories (tenant_id, user_id, slot) WHERE slot IS NOT NULL;
        CREATE TABLE memory_sources (
            memory_id TEXT NOT NULL, source_id TEXT NOT NULL, PRIMARY KEY (source_id, memory_id)
        );
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL,
            user_id TEXT, agent_id TEXT, session_id TEXT,
            state TEXT NOT NULL,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            result TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX jobs_state ON jobs (state, tenant_id);
        """,
    )


def _v4_api_keys(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            tenant_id TEXT NOT NULL,
            name TEXT,
            user_ids TEXT,
            admin INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        """,
    )


def _v5_tombstone_horizon(conn: sqlite3.Connection) -> None:
    """Tombstones at or below this sequence are pruned (see ``mirror``)."""
    conn.execute("INSERT OR IGNORE INTO counters VALUES ('tombstones_pruned', 0)")


def _v6_scoped_lexicon(conn: sqlite3.Connection) -> None:
    """The lexical index per owner scope (``stores.lexicon``) replaces the file-wide FTS5 table;
    a session's rows are indexed in id order, so its latest turns (``recent``, read by every
    add of a chat) are a short index walk instead of a sort of the whole session."""
    from .writes import LEXICAL_COLUMNS, reindex

    _run(
        conn,
        """
        CREATE TABLE lex_scopes (
            scope INTEGER PRIMARY KEY,
            tenant_id TEXT NOT NULL, user_id TEXT, agent_id TEXT, session_id TEXT,
            docs INTEGER NOT NULL, text_len INTEGER NOT NULL
        );
        CREATE INDEX lex_scopes_user ON lex_scopes (tenant_id, user_id, agent_id);
        CREATE INDEX lex_scopes_agent ON lex_scopes (tenant_id, agent_id);
        CREATE TABLE lex_postings (
            tenant INTEGER NOT NULL, term INTEGER NOT NULL, scope INTEGER NOT NULL, field INTEGER NOT NULL,
            mem INTEGER NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL,
            PRIMARY KEY (tenant, term, scope, field, mem)
        ) WITHOUT ROWID;
        DROP TABLE memories_fts;
        DROP INDEX memories_session;
        CREATE INDEX memories_session ON memories (tenant_id, session_id, id)
        """,
    )
    rows = conn.execute(f"SELECT {LEXICAL_COLUMNS} FROM memories")
    while batch := rows.fetchmany(2000):
        reindex(conn, batch)


def _v7_postings_by_scope(conn: sqlite3.Connection) -> None:
    """Postings keyed scope first (``stores.lexicon``): one add's postings lie together."""
    _run(
        conn,
        """
        CREATE TABLE lex_postings_by_scope (
            tenant INTEGER NOT NULL, term INTEGER NOT NULL, scope INTEGER NOT NULL, field INTEGER NOT NULL,
            mem INTEGER NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL,
            PRIMARY KEY (tenant, scope, term, field, mem)
        ) WITHOUT ROWID;
        INSERT INTO lex_postings_by_scope SELECT * FROM lex_postings ORDER BY tenant, scope, term, field, mem;
        DROP TABLE lex_postings;
        ALTER TABLE lex_postings_by_scope RENAME TO lex_postings
        """,
    )


MIGRATIONS: list[tuple[int, str, Callable[[sqlite3.Connection], None]]] = [
    (1, "initial schema", _v1_initial),
    (2, "store identity", _v2_store_uid),
    (3, "derived memories and extraction jobs", _v3_smart_memory),
    (4, "server API keys", _v4_api_keys),
    (5, "vector index tombstone horizon", _v5_tombstone_horizon),
    (6, "lexical index per owner scope", _v6_scoped_lexicon),
    (7, "postings keyed by scope first", _v7_postings_by_scope),
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration the file has not seen; return the schema version.

    Raises:
        ConfigurationError: the file was written by a newer engramdb (nothing is written to it).
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    refuse_newer(done, max(v for v, _, _ in MIGRATIONS))
    for version, name, apply in MIGRATIONS:
        if version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                conn.execute("ROLLBACK")  # another process applied it while we waited
                continue
            apply(conn)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, utcnow().isoformat()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max(v for v, _, _ in MIGRATIONS)
