"""Time-aware recall: a search validated and planned once, then run on a sync or an async store.

A query that names a time ("last Friday", "in May 2023") runs twice: once as asked, and once
confined to that time and the stretch around it (``told_around``); ``favour_in_range`` merges
the two so that what happened then ranks first. The plan decides which searches run and how
their hits merge, so ``recall`` and ``arecall`` differ only in awaiting the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pydantic

from ..config import MemoryConfig, SearchOptions
from ..embedders import Embedder
from ..errors import ValidationError
from ..filters import And, Node, parse_filter
from ..ingest import (
    check_datetime,
    check_limit,
    check_text,
    first_error,
    local_datetime,
    make_scope,
    required_datetime,
)
from ..models import ResolvedTime, SearchHit, SearchResult, utcnow
from ..stores.base import AsyncReads, Query, Store
from .dedupe import said_once
from .hybrid import RESCORED, ahybrid_search, favour_in_range, hybrid_search
from .relevance import abstains
from .speakers import without_speakers
from .temporal import TimeRange, as_of_filter, find_time_range, range_filter, told_around


@dataclass(frozen=True)
class SearchPlan:
    text: str
    query: Query
    timed: Query | None  # confined to the time the query names and the stretch around it (told_around)
    spoken: TimeRange | None
    options: SearchOptions
    limit: int
    threshold: float  # the least best-hit relevance the search answers with (``relevance.abstains``)
    explain: bool
    given: TimeRange | None = None  # the caller's time_range, which confines every run
    dense: str | None = None  # what the dense retriever embeds when it is not ``text`` (``named``)

    def resolved(self) -> ResolvedTime | None:
        """The range this plan confines to (given) or favours (read from the query), for explain."""
        if self.given is not None:
            return ResolvedTime(start=self.given.start, end=self.given.end, source="time_range")
        if self.spoken is not None:
            span = self.spoken
            return ResolvedTime(start=span.start, end=span.end, expression=span.expression, source="query")
        return None

    def result(self, hits: list[SearchHit]) -> SearchResult:
        """The answer to this search: its hits, and with explain the time range it resolved to
        and the text the dense retriever embedded instead of the query, if any."""
        if not self.explain:
            return SearchResult(results=hits)
        return SearchResult(results=hits, time_range=self.resolved(), dense_query=self.dense)

    @property
    def drops_speakers(self) -> bool:
        """Whether the dense query leaves out the scope's speakers (``SearchOptions.dense_without_speakers``)."""
        return self.options.dense_without_speakers and self.options.dense_weight > 0

    def named(self, speakers: Iterable[str]) -> SearchPlan:
        """This plan with the dense retriever's text: the query without the names of ``speakers``
        (``retrieval.speakers``), when that differs from the query."""
        dense = without_speakers(self.text, speakers)
        return self if dense == self.text else replace(self, dense=dense)

    @property
    def wanted(self) -> int:
        """Hits each search keeps: room to drop those that repeat a higher one (``dedupe``)."""
        return max(self.limit, RESCORED) if self.options.dedupe else self.limit

    def confined(self, query: Query) -> bool | None:
        """None when the query names no time, else whether ``query`` is the run confined to it."""
        return None if self.timed is None else query is self.timed

    def runs(self) -> list[tuple[Query, int]]:
        """The searches to run and how many hits each keeps: the plain one first."""
        runs = [(self.query, self.wanted)]
        if self.timed is not None:
            runs.append((self.timed, max(self.limit, RESCORED)))
        return runs

    def merge(self, found: list[list[SearchHit]]) -> list[SearchHit]:
        """The hits of ``runs()``, in order, as one ranking of at most ``limit``."""
        hits = found[0]
        if self.timed is not None and self.spoken is not None:
            hits = favour_in_range(found[1], found[0], self.spoken, self.options.time_weight, self.wanted)
        hits = said_once(hits, self.limit) if self.options.dedupe else hits[: self.limit]
        return [] if abstains((h.relevance or 0.0 for h in hits), self.threshold) else hits


def plan_search(
    config: MemoryConfig,
    tenant_id: str,
    text: str,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    filters: dict[str, Any] | None = None,
    limit: int = 10,
    threshold: float | None = None,
    explain: bool = False,
    options: SearchOptions | dict[str, Any] | None = None,
    include_invalid: bool = False,
    as_of: datetime | str | None = None,
    time_range: tuple[datetime | str | None, datetime | str | None] | None = None,
    reference_date: datetime | str | None = None,
) -> SearchPlan:
    """Validate a search and decide what to run: the query, and the time-confined one if it names a time."""
    check_text(text, config, "query")
    check_limit(limit)
    if threshold is not None and (not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1):
        raise ValidationError("threshold must be a number between 0 and 1")
    search_options = _search_options(config.search, options)
    scope = make_scope(user_id, agent_id, session_id, required=False)
    where = parse_filter(filters)  # a bad filter is reported before anything else
    if as_of is not None:
        where = _both(where, as_of_filter(required_datetime(as_of, "as_of")))
        include_invalid = True
    given = _range(time_range) if time_range is not None else None
    if given is not None:
        where = _both(where, range_filter(given))
    q = Query(tenant_id, scope, where, include_inactive=include_invalid)
    spoken = timed = None
    if time_range is None and search_options.time_weight > 0:
        reference = local_datetime(reference_date, "reference_date") if reference_date else utcnow()
        spoken = find_time_range(text, reference)
    if spoken is not None:
        # what was said just before or up to a period after the range may tell of it: favour_in_range decides
        timed = replace(q, where=_both(where, range_filter(told_around(spoken))))
    cut = search_options.threshold if threshold is None else float(threshold)
    return SearchPlan(text, q, timed, spoken, search_options, limit, cut, explain, given)


def recall(store: Store, embedder: Embedder, plan: SearchPlan, *, parallel: bool) -> SearchResult:
    """Run a plan's searches on ``store``; best first, scores in [0, 1]."""
    if plan.drops_speakers:
        plan = plan.named(store.speakers(plan.query.tenant_id, plan.query.scope))
    found = [hybrid_search(store, embedder, query, plan.text, limit=limit, options=plan.options,
                           explain=plan.explain, parallel=parallel, then=plan.confined(query), dense=plan.dense)
             for query, limit in plan.runs()]  # fmt: skip
    return plan.result(plan.merge(found))


async def arecall(store: AsyncReads, embedder: Embedder, plan: SearchPlan) -> SearchResult:
    """``recall`` on a store with native async reads, one search after the other as ``recall`` runs them."""
    if plan.drops_speakers:
        plan = plan.named(await store.aspeakers(plan.query.tenant_id, plan.query.scope))
    found = [await ahybrid_search(store, embedder, query, plan.text, limit=limit, options=plan.options,
                                  explain=plan.explain, then=plan.confined(query), dense=plan.dense)
             for query, limit in plan.runs()]  # fmt: skip
    return plan.result(plan.merge(found))


def _both(first: Node | None, second: Node) -> Node:
    """The caller's filter and ours, as parsing ``{"AND": [first, second]}`` would give."""
    return second if first is None else And((first, second))


def _range(value: tuple[datetime | str | None, datetime | str | None]) -> TimeRange:
    if not isinstance(value, (tuple, list)) or len(value) != 2 or value == (None, None):
        raise ValidationError("time_range must be (start, end), either of them may be None but not both")
    start, end = (check_datetime(v, "time_range") if v is not None else None for v in value)
    if start is not None and end is not None and start >= end:
        raise ValidationError("time_range: start must be before end")
    return TimeRange(start, end)


def _search_options(base: SearchOptions, override: SearchOptions | dict[str, Any] | None) -> SearchOptions:
    """Per-call options: a whole ``SearchOptions``, or changes to the configured ones."""
    if override is None:
        return base
    if isinstance(override, SearchOptions):
        return override
    try:
        return SearchOptions.model_validate({**base.model_dump(), **override})
    except pydantic.ValidationError as exc:
        raise ValidationError(f"bad search options: {first_error(exc)}") from exc
