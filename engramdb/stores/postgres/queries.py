"""The read statements the sync and async paths of the PostgreSQL store share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...models import Scope
from .. import lexicon, sqlreads
from ..base import Query
from ..portable import MEMORY_COLUMNS
from .sqlfilter import compile_filter


@dataclass(frozen=True)
class Plan:
    sql: str
    params: list[Any]
    settings: tuple[str, ...] = field(default=())  # SET LOCAL statements: run in a transaction first


def scope_sql(tenant_id: str, scope: Scope) -> tuple[str, list[Any]]:
    return sqlreads.scope_sql(tenant_id, scope, "%s")


def query_sql(query: Query) -> tuple[str, list[Any]]:
    return sqlreads.query_sql(query, "%s", compile_filter, lambda when: when)


def dense(query: Query, vector: np.ndarray, k: int, dimension: int) -> Plan:
    """Exact within a user's or session's rows; through the HNSW index across a tenant or agent.

    A user's rows are few and found by a B-tree, so scoring them all is both exact and fast.
    A tenant-wide query uses the index with iterative scanning (pgvector >= 0.8), which keeps
    going until ``k`` rows pass the filter.
    """
    where, params = query_sql(query)
    vec = np.ascontiguousarray(vector, dtype=np.float32)
    if query.scope.user_id is not None or query.scope.session_id is not None or not dimension:
        return Plan(
            f"SELECT m.id, 1 - (m.embedding <=> %s) AS s FROM memories m WHERE {where} "
            "ORDER BY m.embedding <=> %s, m.id LIMIT %s",
            [vec, *params, vec, k],
        )
    typed = f"vector({int(dimension)})"
    return Plan(
        f"SELECT id, s FROM (SELECT m.id, 1 - ((m.embedding::{typed}) <=> %s::{typed}) AS s "
        f"FROM memories m WHERE {where} ORDER BY (m.embedding::{typed}) <=> %s::{typed} LIMIT %s) c "
        "ORDER BY s DESC, id",
        [vec, *params, vec, k],
        ("SET LOCAL hnsw.iterative_scan = relaxed_order", f"SET LOCAL hnsw.ef_search = {max(40, min(1000, 2 * k))}"),
    )


def lexical(query: Query, terms: Sequence[str], k: int, language: str) -> Plan | None:
    """BM25 over the owner scopes the query reaches: the statement SQLite runs (``lexicon``)."""
    ids = lexicon.query_terms(terms, language)
    if not ids:
        return None
    reach, reach_params = lexicon.reach(query.scope, "%s")
    where, params = query_sql(query)
    sql = lexicon.search_sql("%s", "m.id", len(ids), reach, where, k)
    return Plan(sql, lexicon.search_params(query.tenant_id, reach_params, ids, params, k))


def get_many(tenant_id: str, ids: Sequence[str]) -> Plan:
    return Plan(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE tenant_id = %s AND id = ANY(%s)", [tenant_id, list(ids)])
