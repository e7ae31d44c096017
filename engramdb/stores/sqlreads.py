"""The reads both SQL stores run with the same statements: pages, history, keys, jobs, stats.

Only the placeholder (``?`` or ``%s``), the row converters and the scope/filter compiler
differ between SQLite and PostgreSQL; each store supplies those, and the logic lives here once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError, NotFoundError
from ..filters import Node
from ..models import (
    ApiKey,
    HistoryEntry,
    Job,
    JobPayload,
    MemoryItem,
    Page,
    Scope,
    ScopeCount,
    StoreStats,
    utcnow,
)
from .base import PendingJob, Query
from .cursor import decode_cursor, encode_cursor

Row = Any  # sqlite3.Row or a psycopg dict row: both index by column name
DISK_FULL = "database or disk is full"  # both stores' message for it: the transaction was rolled back
DUPLICATE_TEXT = "another memory in this scope already has exactly this text"  # an update's unique clash


def refuse_newer(done: set[int], known: int) -> None:
    """Refuse a schema newer than this code: what it means is unknown, and writing could corrupt it.

    ``done`` holds the versions in ``schema_migrations``; ``known`` is the newest this code has.
    """
    newest = max(done, default=0)
    if newest > known:
        raise ConfigurationError(
            f"this store was created by a newer engramdb (schema version {newest}; this version knows up to "
            f"{known}): upgrade engramdb to open it"
        )


def scope_sql(tenant_id: str, scope: Scope, p: str) -> tuple[str, list[Any]]:
    """``WHERE`` text and parameters for a tenant and scope, with the driver's placeholder ``p``."""
    clauses, params = [f"m.tenant_id = {p}"], [tenant_id]
    for column in ("user_id", "agent_id", "session_id"):
        value = getattr(scope, column)
        if value is not None:
            clauses.append(f"m.{column} = {p}")
            params.append(value)
    return " AND ".join(clauses), params


def query_sql(
    query: Query, p: str, compile_filter: Callable[[Node, list[Any]], str], db_time: Callable[[datetime], Any]
) -> tuple[str, list[Any]]:
    """Scope, validity (active, not expired at ``query.now``) and the filter, in one ``WHERE``."""
    where, params = scope_sql(query.tenant_id, query.scope, p)
    if not query.include_inactive:
        where += f" AND m.state = 'active' AND (m.expires_at IS NULL OR m.expires_at > {p})"
        params.append(db_time(query.now or utcnow()))
    if query.where is not None:
        where += " AND " + compile_filter(query.where, params)
    return where, params


class SQLReads:
    P: str  # the driver's placeholder
    COLUMNS: str  # the memory columns item_row reads
    location: str
    language: str
    schema_version: int

    # --- supplied by each store -----------------------------------------------------------

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read("SELECT key, value FROM meta")}

    def binding(self) -> tuple[str, int] | None:
        meta = self._meta()
        return (meta["embedder"], int(meta["dimension"])) if "embedder" in meta else None

    @staticmethod
    def item_row(row: Row) -> MemoryItem:
        raise NotImplementedError

    @staticmethod
    def history_row(row: Row) -> HistoryEntry:
        raise NotImplementedError

    @staticmethod
    def key_row(row: Row) -> ApiKey:
        raise NotImplementedError

    @staticmethod
    def job_row(row: Row) -> Job:
        raise NotImplementedError

    @staticmethod
    def json_value(value: Any) -> Any:
        """A JSON column as Python (SQLite keeps text, PostgreSQL decodes jsonb itself)."""
        return value

    # --- memories -------------------------------------------------------------------------

    def list_page(self, query: Query, *, cursor: str | None, limit: int) -> Page:
        where, params = self._where(query)
        total = self._read(f"SELECT count(*) AS n FROM memories m WHERE {where}", params)[0]["n"]
        page_where, page_params = where, list(params)
        if cursor is not None:
            page_where += f" AND m.id > {self.P}"
            page_params.append(decode_cursor(cursor))
        rows = self._read(
            f"SELECT {self.COLUMNS} FROM memories m WHERE {page_where} ORDER BY m.id LIMIT {self.P}",
            [*page_params, limit + 1],
        )
        items = [self.item_row(r) for r in rows[:limit]]
        next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
        return Page(results=items, total=total, next_cursor=next_cursor)

    def outdated(self, tenant_id: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return {r["source_id"] for r in self._read(*outdated_sql(self.P, tenant_id, ids))}

    def recent(self, query: Query, *, limit: int) -> list[MemoryItem]:
        return [self.item_row(r) for r in reversed(self._read(*self._recent_sql(query, limit)))]

    def _recent_sql(self, query: Query, limit: int) -> tuple[str, list[Any]]:
        """The latest ``limit`` memories visible to ``query``, newest first."""
        where, params = self._where(query)
        sql = f"SELECT {self.COLUMNS} FROM memories m WHERE {where} ORDER BY m.id DESC LIMIT {self.P}"
        return sql, [*params, limit]

    def scope_counts(self, query: Query) -> list[ScopeCount]:
        where, params = self._where(query)
        # in recall, as the store itself decides it (its own time encoding for expires_at)
        active, active_params = self._where(Query(query.tenant_id, Scope()))
        rows = self._read(
            f"SELECT m.user_id, m.agent_id, m.session_id, SUM(CASE WHEN {active} THEN 1 ELSE 0 END) AS n, "
            f"count(*) AS every FROM memories m WHERE {where} GROUP BY m.user_id, m.agent_id, m.session_id",
            [*active_params, *params],
        )
        counts = [ScopeCount(user_id=r["user_id"], agent_id=r["agent_id"], session_id=r["session_id"],
                             memories=r["n"], inactive=r["every"] - r["n"] if query.include_inactive else None)
                  for r in rows]  # fmt: skip
        # sorted here, not by SQL: SQLite puts NULLs first and PostgreSQL last
        return sorted(counts, key=lambda c: [(v is not None, v or "") for v in (c.user_id, c.agent_id, c.session_id)])

    def history(self, tenant_id: str, memory_id: str) -> list[HistoryEntry]:
        rows = self._read(
            "SELECT id, memory_id, event, old_memory, new_memory, old_metadata, new_metadata, reason, created_at "
            f"FROM history WHERE tenant_id = {self.P} AND memory_id = {self.P} ORDER BY id",
            (tenant_id, memory_id),
        )
        if not rows:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return [self.history_row(r) for r in rows]

    def export(self, tenant_id: str) -> Iterator[MemoryItem]:
        last = ""
        while True:
            rows = self._read(
                f"SELECT {self.COLUMNS} FROM memories WHERE tenant_id = {self.P} AND id > {self.P} "
                "ORDER BY id LIMIT 1000",
                (tenant_id, last),
            )
            if not rows:
                return
            yield from (self.item_row(r) for r in rows)
            last = rows[-1]["id"]

    def stats(self, tenant_id: str) -> StoreStats:
        p = self.P
        kinds = self._read(
            f"SELECT kind, count(*) AS n FROM memories WHERE tenant_id = {p} GROUP BY kind", (tenant_id,)
        )
        scopes = self._read(
            "SELECT count(*) AS n FROM (SELECT DISTINCT user_id, agent_id, session_id FROM memories "
            f"WHERE tenant_id = {p}) s",
            (tenant_id,),
        )[0]["n"]
        history = self._read(f"SELECT count(*) AS n FROM history WHERE tenant_id = {p}", (tenant_id,))[0]["n"]
        meta = self._meta()
        return StoreStats(
            memories=sum(r["n"] for r in kinds), by_kind={r["kind"]: r["n"] for r in kinds}, scopes=scopes,
            history_rows=history, embedder=meta.get("embedder"),
            dimension=int(meta["dimension"]) if "dimension" in meta else None,
            schema_version=self.schema_version, location=self.location,
        )  # fmt: skip

    # --- API keys and jobs -----------------------------------------------------------------

    def find_key(self, key_hash: str) -> ApiKey | None:
        rows = self._read(f"SELECT * FROM api_keys WHERE hash = {self.P} AND revoked_at IS NULL", (key_hash,))
        return self.key_row(rows[0]) if rows else None

    def list_keys(self, tenant_id: str | None) -> list[ApiKey]:
        if tenant_id is None:
            return [self.key_row(r) for r in self._read("SELECT * FROM api_keys ORDER BY id")]
        rows = self._read(f"SELECT * FROM api_keys WHERE tenant_id = {self.P} ORDER BY id", (tenant_id,))
        return [self.key_row(r) for r in rows]

    def _key(self, key_id: str) -> ApiKey:
        rows = self._read(f"SELECT * FROM api_keys WHERE id = {self.P}", (key_id,))
        if not rows:
            raise NotFoundError(f"no API key with id {key_id!r}")
        return self.key_row(rows[0])

    def pending_jobs(self, tenant_id: str | None, *, limit: int) -> list[PendingJob]:
        where, params = "state = 'pending'", []
        if tenant_id is not None:
            where, params = f"state = 'pending' AND tenant_id = {self.P}", [tenant_id]
        rows = self._read(f"SELECT * FROM jobs WHERE {where} ORDER BY id LIMIT {self.P}", [*params, limit])
        return [self._pending(r) for r in rows]

    def list_jobs(
        self, tenant_id: str, *, state: str | None, user_ids: Sequence[str] | None, cursor: str | None, limit: int
    ) -> tuple[list[PendingJob], str | None]:
        """A tenant's jobs in id order (oldest first), a page at a time; ``user_ids`` confines
        them to those users' jobs (a key limited to some users). The next cursor, or None."""
        p = self.P
        where, params = [f"tenant_id = {p}"], [tenant_id]
        if state is not None:
            where.append(f"state = {p}")
            params.append(state)
        if user_ids is not None:
            where.append(f"user_id IN ({', '.join(p for _ in user_ids)})" if user_ids else "1 = 0")
            params.extend(user_ids)
        if cursor is not None:
            where.append(f"id > {p}")
            params.append(decode_cursor(cursor))
        rows = self._read(f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY id LIMIT {p}", [*params, limit + 1])
        jobs = [self._pending(r) for r in rows[:limit]]
        return jobs, encode_cursor(jobs[-1].job.id) if len(rows) > limit else None

    def _pending(self, row: Row) -> PendingJob:
        return PendingJob(
            job=self.job_row(row),
            tenant_id=row["tenant_id"],
            scope=Scope(user_id=row["user_id"], agent_id=row["agent_id"], session_id=row["session_id"]),
            payload=JobPayload.model_validate(self.json_value(row["payload"])),
        )

    def get_job(self, tenant_id: str, job_id: str) -> Job:
        return self.job_task(tenant_id, job_id).job

    def job_task(self, tenant_id: str, job_id: str) -> PendingJob:
        rows = self._read(f"SELECT * FROM jobs WHERE id = {self.P} AND tenant_id = {self.P}", (job_id, tenant_id))
        if not rows:
            raise NotFoundError(f"no job with id {job_id!r}")
        return self._pending(rows[0])


def outdated_sql(mark: str, tenant_id: str, ids: Sequence[str]) -> tuple[str, list[Any]]:
    """``Store.outdated``: sources with derived memories, none of them active."""
    marks = ", ".join(mark for _ in ids)
    sql = (
        "SELECT s.source_id FROM memory_sources s JOIN memories m ON m.id = s.memory_id "
        f"WHERE s.source_id IN ({marks}) AND m.tenant_id = {mark} GROUP BY s.source_id "
        "HAVING SUM(CASE WHEN m.state = 'active' THEN 1 ELSE 0 END) = 0"
    )
    return sql, [*ids, tenant_id]
