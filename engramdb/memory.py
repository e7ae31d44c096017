"""``Memory``: the one facade over an embedder, a store and the recall pipeline.

Example::

    from engramdb import Memory
    with Memory(":memory:") as m:
        m.add("I'm vegetarian and allergic to peanuts", user_id="alice")
        m.search("what can alice eat?", user_id="alice", limit=5)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import pydantic

from .config import PER_CALL_SETTINGS, MemoryConfig, SearchOptions
from .context import Context, Section, assemble, token_counter
from .embedders import CachedEmbedder, Embedder, resolve_embedder
from .episodes import expand_sources, list_sessions, summarize
from .errors import ConfigurationError, ValidationError
from .extraction import Deriver, make_extractor
from .extraction.runner import ExtractionRunner
from .filters import parse_filter
from .imports import import_records
from .ingest import (
    MessagesInput,
    build_item,
    check_datetime,
    check_importance,
    check_kind,
    check_metadata,
    check_text,
    index_text,
    index_texts,
    make_scope,
    normalize_messages,
    parse_datetime,
)
from .maintenance import ConsolidateResult, PrunePolicy, PruneResult, consolidate, prune_reasons
from .models import (
    AddedItem,
    AddResult,
    DeleteResult,
    Event,
    ExtractionStatus,
    HistoryEntry,
    Job,
    MemoryItem,
    Page,
    Scope,
    SearchResult,
    SessionEpisode,
    StoreStats,
    new_id,
    utcnow,
)
from .retrieval.hybrid import RESCORED, ahybrid_search, favour_in_range, hybrid_search
from .retrieval.temporal import TimeRange, as_of_filter, find_time_range, range_filter, told_around
from .stores import Change, NewRecord, Query, Store, open_store
from .stores.base import AsyncReads, AsyncWrites, NewJob

MAX_PAGE = 1000


def _both(first: dict[str, Any] | None, second: dict[str, Any]) -> dict[str, Any]:
    return second if not first else {"AND": [first, second]}


def _when(value: datetime | str, what: str) -> datetime:
    when = check_datetime(value, what)
    assert when is not None
    return when


def _local(value: datetime | str, what: str) -> datetime:
    """A datetime with the offset it was given in (its days are that place's); naive is UTC."""
    when = parse_datetime(value, what)
    assert when is not None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _range(value: tuple[datetime | str | None, datetime | str | None]) -> TimeRange:
    if not isinstance(value, (tuple, list)) or len(value) != 2 or value == (None, None):
        raise ValidationError("time_range must be (start, end), either of them may be None but not both")
    start, end = (check_datetime(v, "time_range") if v is not None else None for v in value)
    if start is not None and end is not None and start >= end:
        raise ValidationError("time_range: start must be before end")
    return TimeRange(start, end)


class Memory:
    """Long-term memory for an agent: add what was said, search what matters.

    Args:
        store: ``None`` (a file in the user data dir), ``":memory:"``, ``"sqlite:///path.db"``,
            a path, or a ``Store`` instance.
        embedder: ``"provider:model"`` or an ``Embedder``; ``None`` is the bundled offline model.
        config: everything else; ``store`` and ``embedder`` arguments override it.

    Raises:
        ConfigurationError: an unknown embedder, or a store made with another embedder.
    """

    def __init__(
        self,
        store: str | Store | None = None,
        *,
        embedder: str | Embedder | None = None,
        config: MemoryConfig | None = None,
    ) -> None:
        config = config or MemoryConfig()
        if isinstance(store, str):
            config = config.model_copy(update={"store": store})
        self.config = config
        if isinstance(embedder, str) or embedder is None:
            embedder = resolve_embedder(embedder or config.embedder, config.embedder_options)
        self.embedder: Embedder = CachedEmbedder(embedder)
        owned = store is None or isinstance(store, str)
        self.store: Store = open_store(config.store, synchronous=config.synchronous) if owned else store  # type: ignore[assignment]
        try:
            self.store.bind_embedder(self.embedder.name, self.embedder.dimension)
        except BaseException:
            if owned:
                self.store.close()  # a store we opened must not leak its connections
            raise
        self.tenant_id = config.tenant_id
        # decided once: a runtime Protocol check costs ~12 µs, too much for every search
        self.async_reads: AsyncReads | None = self.store if isinstance(self.store, AsyncReads) else None
        self.async_writes: AsyncWrites | None = self.store if isinstance(self.store, AsyncWrites) else None
        deriver = Deriver(self.store, self.embedder, make_extractor(config), config)
        self._runner = ExtractionRunner(deriver, self.store, max_attempts=config.extraction_attempts)

    def with_config(self, **changes: Any) -> Memory:
        """A view of the same store and embedder with some per-call settings changed.

        Only settings read on every call can change here (``PER_CALL_SETTINGS``, e.g.
        ``parallel_search`` or ``search``). The store, embedder, LLM and tenant are built once
        in the constructor: a view cannot swap them, so asking for that is refused rather than
        ignored (``for_tenant`` gives a view of another tenant; a new ``Memory`` the rest).

        Raises:
            ConfigurationError: a setting that is fixed at construction.
            ValidationError: a value the setting does not accept.
        """
        fixed = sorted(set(changes) - PER_CALL_SETTINGS)
        if fixed:
            raise ConfigurationError(
                f"{', '.join(fixed)} cannot change on an open Memory: build a new one (for_tenant for a tenant)"
            )
        try:
            config = MemoryConfig.model_validate({**self.config.model_dump(), **changes})
        except pydantic.ValidationError as exc:
            raise ValidationError(f"invalid setting: {exc.errors()[0]['msg']}") from None
        view = object.__new__(Memory)
        view.__dict__.update(self.__dict__)
        view.config = config
        return view

    def for_tenant(self, tenant_id: str) -> Memory:
        """A view of the same store and embedder confined to another tenant (used by the server)."""
        view = object.__new__(Memory)
        view.__dict__.update(self.__dict__)
        view.tenant_id = tenant_id
        return view

    # --- writes ---------------------------------------------------------------------------

    def add(
        self,
        messages: MessagesInput,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        kind: str = "episode",
        occurred_at: datetime | str | None = None,
        importance: float = 0.5,
        expires_at: datetime | str | None = None,
        infer: bool | None = None,
        wait: bool | None = None,
    ) -> AddResult:
        """Store each non-system message verbatim, with its speaker; then derive memories from them.

        The messages are durable and searchable before anything is derived. With ``infer``
        (default: config), facts and preferences are extracted — by the LLM when one is
        configured, else by the rule-based extractor — and reconciled with the store: ADD,
        UPDATE (the old version superseded, kept in history), INVALIDATE or NOOP. With an LLM,
        ``wait=False`` returns at once with a job id (``Memory.job``); an LLM failure keeps the
        messages and leaves the job pending for ``process_pending``. ``kind="procedure"``
        distils instructions for the agent from the messages; another ``kind`` stores the
        text as that kind, as given. An exact duplicate in scope is a NOOP with the existing id.

        Returns:
            ``{"results": [{"id", "memory", "event", ...}], "extraction": {...}}``.
        Raises:
            ValidationError: no scope, empty or oversized text, bad metadata or types.
        """
        plan = self._plan_add(messages, user_id=user_id, agent_id=agent_id, session_id=session_id,
                              metadata=metadata, kind=kind, occurred_at=occurred_at, importance=importance,
                              expires_at=expires_at, infer=infer)  # fmt: skip
        if not plan.items:
            return AddResult(results=[])
        context = self._context_query(plan)
        turns = self.store.recent(context, limit=self.config.context_turns) if context else []
        before = [turn.memory for turn in turns]
        records, job = self._records(plan, before)
        return self._added(plan, self.store.add(self.tenant_id, records, job=job), job, wait)

    def _plan_add(
        self,
        messages: MessagesInput,
        *,
        user_id: str | None,
        agent_id: str | None,
        session_id: str | None,
        metadata: dict[str, Any] | None,
        kind: str,
        occurred_at: datetime | str | None,
        importance: float,
        expires_at: datetime | str | None,
        infer: bool | None,
    ) -> _AddPlan:
        """Validate an add and build its items; nothing is written, nothing is embedded."""
        scope = make_scope(user_id, agent_id, session_id, required=True)
        kind = check_kind(kind)
        derive = (self.config.infer if infer is None else infer) and kind in ("episode", "procedure")
        options = dict(
            kind="episode" if kind == "procedure" and derive else kind,
            metadata=check_metadata(metadata, self.config),
            occurred_at=check_datetime(occurred_at, "occurred_at"),
            importance=check_importance(importance),
            expires_at=check_datetime(expires_at, "expires_at"),
        )
        parsed = normalize_messages(messages, self.config.max_batch)
        for i, message in enumerate(parsed):
            check_text(message.content, self.config, f"message {i} content")
        items = [build_item(m, scope, **options) for m in parsed if m.role != "system"]  # type: ignore[arg-type]
        payload: dict[str, Any] = {"kind": kind, "metadata": options["metadata"], "importance": options["importance"]}
        return _AddPlan(scope, items, payload, derive)

    def _context_query(self, plan: _AddPlan) -> Query | None:
        """The session's latest turns to index the first new ones with (``context_turns``), if any apply.

        The preceding turns come from the same add, then from the store: a chat that adds one
        message at a time is indexed as one that adds a whole session at once.
        """
        if not self.config.context_turns or plan.scope.session_id is None or plan.items[0].kind != "episode":
            return None
        return Query(self.tenant_id, plan.scope, parse_filter({"kind": "episode"}))

    def _records(self, plan: _AddPlan, before: list[str]) -> tuple[list[NewRecord], NewJob | None]:
        """Embed the plan's items: what the store writes, and the extraction job to write with them."""
        texts = [item.memory for item in plan.items]
        index = index_texts(before + texts, self.config.context_turns)[len(before) :]
        # the vector is of the message alone, the BM25 entry carries its context: the two
        # retrievers then disagree usefully (LoCoMo dev R@1 0.24 -> 0.32, docs/benchmarks.md)
        vectors = self.embedder.embed(texts, kind="document")
        records = [NewRecord(item, t, v) for item, t, v in zip(plan.items, index, vectors, strict=True)]
        return records, NewJob(new_id(), plan.scope, plan.payload) if plan.derive else None

    def _added(
        self, plan: _AddPlan, outcomes: list[tuple[str, Event]], job: NewJob | None, wait: bool | None
    ) -> AddResult:
        """The add's result once its records are written: then derive memories from them."""
        results = [
            AddedItem(id=memory_id, memory=item.memory, event=event, kind=item.kind)
            for (memory_id, event), item in zip(outcomes, plan.items, strict=True)
        ]
        if job is None:
            return AddResult(results=results, extraction=ExtractionStatus(extractor="none", state="skipped"))
        payload = {**plan.payload, "episode_ids": [memory_id for memory_id, _ in outcomes]}
        return self._derive(job.id, plan.scope, payload, results, wait)

    def _derive(
        self, job_id: str, scope: Scope, payload: dict[str, Any], results: list[AddedItem], wait: bool | None
    ) -> AddResult:
        llm = self._runner.extractor_name == "llm"
        if llm and (self.config.background if wait is None else not wait):
            self._runner.submit(self.tenant_id, job_id, scope, payload)
            status = ExtractionStatus(extractor="llm", state="pending", job_id=job_id)
            return AddResult(results=results, extraction=status)
        status, derived = self._runner.run(self.tenant_id, job_id, scope, payload)
        return AddResult(results=results + derived, extraction=status)

    def job(self, job_id: str) -> Job:
        """The state of an extraction job (``AddResult.extraction.job_id``).

        Raises:
            NotFoundError: no such job in this tenant.
        """
        return self.store.get_job(self.tenant_id, self._check_id(job_id))

    def process_pending(self, *, limit: int = 100) -> int:
        """Retry extraction jobs left pending (an LLM outage, a crash); returns how many completed."""
        return self._runner.process_pending(self.tenant_id, limit=limit)

    def wait_for_jobs(self, timeout: float | None = None) -> bool:
        """Block until background extraction queued by this process has run; False on timeout."""
        return self._runner.drain(timeout)

    def update(self, memory_id: str, text: str | None = None, *, metadata: dict[str, Any] | None = None) -> MemoryItem:
        """Change a memory's text (re-embedded) and/or replace its metadata; history keeps the old one.

        Raises:
            NotFoundError: no such memory in this tenant.
            ValidationError: nothing to change, or bad text/metadata.
        """
        return self.store.update(self.tenant_id, *self._change(memory_id, text, metadata))

    def _change(self, memory_id: str, text: str | None, metadata: dict[str, Any] | None) -> tuple[str, Change]:
        """Validate an update and embed its new text: the memory's id and the change to write."""
        if text is None and metadata is None:
            raise ValidationError("update needs new text, new metadata, or both")
        change = Change(metadata=check_metadata(metadata, self.config) if metadata is not None else None)
        memory_id = self._check_id(memory_id)
        if text is not None:
            change.text = check_text(text, self.config)
            change.index_text = index_text(text)
            change.embedding = self.embedder.embed([change.index_text], kind="document")[0]
        return memory_id, change

    def delete(self, memory_id: str) -> DeleteResult:
        """Delete one memory. Its history keeps a DELETE entry."""
        self.store.delete(self.tenant_id, self._check_id(memory_id))
        return DeleteResult(deleted=1, message="memory deleted")

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        hard: bool = False,
    ) -> DeleteResult:
        """Delete every memory in a scope (a scope is required: ``reset`` clears everything).

        Soft (default): history keeps a DELETE entry per memory. ``hard=True`` removes every
        trace — rows, history, extraction jobs, the file's free pages and WAL, the vector
        snapshot — for a user who asks to be forgotten.
        """
        scope = make_scope(user_id, agent_id, session_id, required=True)
        count = self.store.delete_scope(self.tenant_id, scope, hard=hard)
        return DeleteResult(deleted=count, message=f"{count} memories deleted")

    def reset(self) -> None:
        """Remove every memory and all history of this tenant."""
        self.store.reset(self.tenant_id)

    def import_items(self, items: Iterable[MemoryItem | dict[str, Any]]) -> AddResult:
        """Restore exported memories, keeping ids and timestamps; re-embeds with this embedder.

        An id the record's own scope already holds, or an exact duplicate in scope, is a NOOP; an
        id held outside that scope is imported under a fresh id (``imports``). The batch is
        validated completely before one transaction writes it.

        Raises:
            ValidationError: a malformed record, a source outside its record's scope, too many records.
        """
        records = import_records(self, items)
        outcomes = self.store.add(self.tenant_id, records)
        added = [AddedItem(id=i, memory=r.item.memory, event=e, kind=r.item.kind)
                 for (i, e), r in zip(outcomes, records, strict=True)]  # fmt: skip
        return AddResult(results=added)

    # --- reads ----------------------------------------------------------------------------

    def search(
        self,
        query: str,
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
    ) -> SearchResult:
        """The memories most relevant to ``query`` in a scope, best first.

        Only currently valid memories by default; ``include_invalid`` also returns superseded,
        invalidated, forgotten and expired ones (their ``state`` and ``valid_to`` say so);
        ``as_of`` answers as the store would have then (recorded by then and valid then).
        ``time_range=(start, end)`` keeps memories whose event time (``occurred_at``, else
        ``created_at``) falls in it. Without it, a time expression in the query ("last week",
        "in May 2023", "before June"), resolved against ``reference_date`` (default now),
        favours memories from that time (``SearchOptions.time_weight``).

        ``score`` is in [0, 1]: normalised reciprocal-rank fusion of dense and BM25 ranks,
        times the optional recency and importance factors; ``threshold`` cuts on it.

        Raises:
            ValidationError: empty query, bad filter, limit or threshold out of range.
        """
        plan = self._search_plan(query, user_id=user_id, agent_id=agent_id, session_id=session_id, filters=filters,
                                 limit=limit, threshold=threshold, explain=explain, options=options,
                                 include_invalid=include_invalid, as_of=as_of, time_range=time_range,
                                 reference_date=reference_date)  # fmt: skip
        run = functools.partial(hybrid_search, self.store, self.embedder, limit=plan.limit, threshold=plan.threshold,
                                options=plan.options, explain=plan.explain,
                                parallel=self.config.parallel_search)  # fmt: skip
        hits = run(plan.query, query)
        if plan.timed is not None and plan.spoken is not None:
            timed = run(plan.timed, query, limit=max(limit, RESCORED))
            hits = favour_in_range(timed, hits, plan.spoken, plan.options.time_weight, limit)
        self.store.touch(self.tenant_id, [h.id for h in hits])
        return SearchResult(results=hits)

    async def asearch(self, query: str, **kwargs: Any) -> SearchResult:
        """``search`` on a store with native async reads (PostgreSQL): awaited, no thread held.

        Raises:
            ConfigurationError: the store has no async reads (use AsyncMemory, which picks).
        """
        store = self.async_reads
        if store is None:
            raise ConfigurationError("this store has no native async reads; use AsyncMemory.search")
        plan = self._search_plan(query, **kwargs)
        run = functools.partial(ahybrid_search, store, self.embedder, limit=plan.limit,
                                threshold=plan.threshold, options=plan.options, explain=plan.explain)  # fmt: skip
        hits = await run(plan.query, query)
        if plan.timed is not None and plan.spoken is not None:
            timed = await run(plan.timed, query, limit=max(plan.limit, RESCORED))
            hits = favour_in_range(timed, hits, plan.spoken, plan.options.time_weight, plan.limit)
        self.store.touch(self.tenant_id, [h.id for h in hits])
        return SearchResult(results=hits)

    def _search_plan(
        self,
        query: str,
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
    ) -> _SearchPlan:
        """Validate a search and decide what to run: the query, and the time-confined one if it names a time."""
        check_text(query, self.config, "query")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be an integer between 1 and {MAX_PAGE}")
        if threshold is not None and (not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1):
            raise ValidationError("threshold must be a number between 0 and 1")
        search_options = _search_options(self.config.search, options)
        scope = make_scope(user_id, agent_id, session_id, required=False)
        parse_filter(filters)  # report a bad filter before anything else
        if as_of is not None:
            filters = _both(filters, as_of_filter(_when(as_of, "as_of")))
            include_invalid = True
        if time_range is not None:
            filters = _both(filters, range_filter(_range(time_range)))
        q = Query(self.tenant_id, scope, parse_filter(filters), include_inactive=include_invalid)
        spoken = timed = None
        if time_range is None and search_options.time_weight > 0:
            spoken = find_time_range(query, _local(reference_date, "reference_date") if reference_date else utcnow())
        if spoken is not None:
            # what was said just before or up to a period after the range may tell of it: favour_in_range decides
            timed = replace(q, where=parse_filter(_both(filters, range_filter(told_around(spoken)))))
        return _SearchPlan(q, timed, spoken, search_options, limit, threshold, explain)

    def get(self, memory_id: str) -> MemoryItem:
        """One memory by id. Raises NotFoundError if it does not exist in this tenant."""
        return self.store.get(self.tenant_id, self._check_id(memory_id))

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        filters: dict[str, Any] | None = None,
        kind: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include_inactive: bool = False,
    ) -> Page:
        """A page of memories in creation order, with the total count and a cursor for the next page."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be an integer between 1 and {MAX_PAGE}")
        spec = dict(filters or {})
        if kind is not None:
            spec = {"AND": [spec, {"kind": check_kind(kind)}]} if spec else {"kind": check_kind(kind)}
        q = Query(
            self.tenant_id,
            make_scope(user_id, agent_id, session_id, required=False),
            parse_filter(spec),
            include_inactive=include_inactive,
        )
        return self.store.list_page(q, cursor=cursor, limit=limit)

    def iter_all(self, **kwargs: Any) -> Iterator[MemoryItem]:
        """Every memory get_all would page through, one page at a time."""
        cursor = None
        while True:
            page = self.get_all(cursor=cursor, **kwargs)
            yield from page.results
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def history(self, memory_id: str) -> list[HistoryEntry]:
        """Every change to a memory, oldest first (kept after deletion)."""
        return self.store.history(self.tenant_id, self._check_id(memory_id))

    def stats(self) -> StoreStats:
        return self.store.stats(self.tenant_id)

    def export(self) -> Iterator[MemoryItem]:
        """Every memory of this tenant, in id order (for JSONL export and migration)."""
        return self.store.export(self.tenant_id)

    # --- context for a prompt -------------------------------------------------------------

    def context(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        max_tokens: int = 1500,
        recent_turns: int = 8,
        relevant: int = 10,
        profile: int = 20,
        reference_date: datetime | str | None = None,
        encoding: str = "o200k_base",
    ) -> Context:
        """What to put in the prompt for this turn: standing facts, relevant memories, recent turns.

        Facts and relevant memories come from the user (or agent) scope across sessions; the
        recent turns from ``session_id``. The text never exceeds ``max_tokens`` in
        ``encoding`` (``cl100k_base`` or ``o200k_base``); each line cites ``[n]``, and
        ``items`` maps every n to its memory id.
        """
        check_text(query, self.config, "query")
        for name, value, low in (("max_tokens", max_tokens, 1), ("recent_turns", recent_turns, 0),
                                 ("relevant", relevant, 0), ("profile", profile, 0)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 100_000:
                raise ValidationError(f"{name} must be an integer between {low} and 100000")
        try:
            token_counter(encoding)
        except Exception as exc:
            raise ValidationError(f"unknown encoding {encoding!r}: use cl100k_base or o200k_base") from exc
        reference = _local(reference_date, "reference_date") if reference_date else None  # its offset shows the dates
        owner = make_scope(user_id, agent_id, None, required=session_id is None)
        parts: dict[Section, list[tuple[MemoryItem, float | None]]] = {"relevant": [], "recent": [], "profile": []}
        if recent_turns and session_id is not None:
            session = make_scope(user_id, agent_id, session_id, required=True)
            turns = Query(self.tenant_id, session, parse_filter({"kind": "episode"}))
            parts["recent"] = [(m, None) for m in reversed(self.store.recent(turns, limit=recent_turns))]
        if relevant:
            hits = self.search(query, user_id=user_id, agent_id=agent_id, limit=min(relevant, MAX_PAGE),
                               reference_date=reference).results  # fmt: skip
            shown = {m.id for m, _ in parts["recent"]}  # a recent turn is shown among the recent turns
            parts["relevant"] = [(h, h.score) for h in hits if h.id not in shown]
        if profile and not owner.is_empty():
            standing = Query(self.tenant_id, owner, parse_filter({"kind": {"in": ["fact", "preference"]}}))
            items = self.store.list_page(standing, cursor=None, limit=MAX_PAGE).results
            items.sort(key=lambda m: (-m.importance, -m.created_at.timestamp()))
            parts["profile"] = [(m, None) for m in items[:profile]]
        distilled = {s for section in ("relevant", "profile") for m, _ in parts[section] for s in m.sources}  # type: ignore[index]
        parts["relevant"] = [(m, s) for m, s in parts["relevant"] if m.id not in distilled]  # the fact, not its message
        zone = reference.tzinfo if reference else None
        return assemble(parts, max_tokens=max_tokens, encoding_name=encoding, zone=zone)

    def recent_turns(
        self,
        *,
        session_id: str,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 20,
        max_tokens: int | None = None,
        encoding: str = "o200k_base",
    ) -> list[MemoryItem]:
        """Working memory: the last turns of a session, oldest first, at most ``limit`` and ``max_tokens``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be an integer between 1 and {MAX_PAGE}")
        scope = make_scope(user_id, agent_id, session_id, required=True)
        turns = self.store.recent(Query(self.tenant_id, scope, parse_filter({"kind": "episode"})), limit=limit)
        if max_tokens is None:
            return turns
        count, kept, used = token_counter(encoding), [], 0
        for turn in reversed(turns):
            used += count(turn.memory)
            if used > max_tokens:
                break
            kept.append(turn)
        return kept[::-1]

    def sessions(self, *, user_id: str | None = None, agent_id: str | None = None) -> list[SessionEpisode]:
        """A user's history, one entry per session (start, end, participants, summary), oldest first."""
        return list_sessions(self, make_scope(user_id, agent_id, None, required=True))

    def summarize_session(
        self, session_id: str, *, user_id: str | None = None, agent_id: str | None = None, sentences: int = 3
    ) -> MemoryItem:
        """Store the session's summary as an episode memory (LLM when configured, else extractive).

        The summary is searchable like any memory; ``expand(summary.id)`` gives back its turns.
        Summarising again replaces the previous summary (kept in history).

        Raises:
            ValidationError: ``sentences`` not an integer from 1 to 100, or no scope.
            NotFoundError: the session has no turns.
        """
        if isinstance(sentences, bool) or not isinstance(sentences, int) or not 1 <= sentences <= 100:
            raise ValidationError("sentences must be an integer between 1 and 100")
        return summarize(self, make_scope(user_id, agent_id, session_id, required=True), sentences)

    def expand(self, memory_id: str) -> list[MemoryItem]:
        """The memories a summary or a derived memory came from, in order, within its own scope."""
        return expand_sources(self, self.get(memory_id))

    # --- consolidation and forgetting ------------------------------------------------------

    def consolidate(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> ConsolidateResult:
        """Merge near-duplicate derived memories in a scope (episodes stay verbatim).

        Each group becomes one memory — an LLM-written merge when an LLM is configured, else
        its most complete member — and the others are superseded by it (still in history);
        its ``merged_from`` lists them and it inherits their sources.
        """
        scope = make_scope(user_id, agent_id, session_id, required=True)
        items = self.iter_all(**scope.model_dump(), filters={"kind": {"ne": "episode"}}, limit=MAX_PAGE)
        merger = getattr(self._runner.deriver.extractor, "merge", None)
        return consolidate(self.store, self.embedder, self.tenant_id, items, merger)

    def prune(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        policy: PrunePolicy | dict[str, Any] | None = None,
        hard: bool = False,
    ) -> PruneResult:
        """Forget what a policy says should go: expired, too old, too little retained, over capacity.

        Soft by default (state ``forgotten``: out of search, in history with the reason);
        ``hard=True`` deletes them and their history.
        """
        scope = make_scope(user_id, agent_id, session_id, required=True)
        try:
            rules = policy if isinstance(policy, PrunePolicy) else PrunePolicy.model_validate(policy or {})
        except pydantic.ValidationError as exc:
            raise ValidationError(f"invalid prune policy: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
        filters = {"kind": {"in": rules.kinds}} if rules.kinds else None
        items = list(self.iter_all(**scope.model_dump(), filters=filters, limit=MAX_PAGE, include_inactive=True))
        items = [i for i in items if i.state.value == "active"]
        reasons = prune_reasons(items, rules, utcnow())
        for reason in sorted(set(reasons.values())):
            ids = [i for i, r in reasons.items() if r == reason]
            self.store.forget(self.tenant_id, ids, reason=reason, hard=hard)
        return PruneResult(forgotten=reasons, hard=hard)

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._runner.close()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @staticmethod
    def _check_id(memory_id: Any) -> str:
        if not isinstance(memory_id, str) or not memory_id.strip() or len(memory_id) > 64:
            raise ValidationError("memory_id must be a non-empty string of at most 64 characters")
        return memory_id


@dataclass(frozen=True)
class _AddPlan:
    scope: Scope
    items: list[MemoryItem]
    payload: dict[str, Any]
    derive: bool


@dataclass(frozen=True)
class _SearchPlan:
    query: Query
    timed: Query | None  # confined to the time the query names and the stretch around it (told_around)
    spoken: TimeRange | None
    options: SearchOptions
    limit: int
    threshold: float | None
    explain: bool


def _search_options(base: SearchOptions, override: SearchOptions | dict[str, Any] | None) -> SearchOptions:
    if override is None:
        return base
    if isinstance(override, SearchOptions):
        return override
    try:
        return SearchOptions.model_validate({**base.model_dump(), **override})
    except pydantic.ValidationError as exc:
        raise ValidationError(f"bad search options: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
