"""``Memory``: the one facade over an embedder, a store and the recall pipeline.

Its steps live in the modules that own them (``planner``, ``retrieval.recall``, ``context``,
``episodes``, ``maintenance``), taking their dependencies explicitly: ``AsyncMemory`` reuses them. Example::

    from engramdb import Memory
    with Memory(":memory:") as m:
        m.add("I'm vegetarian and allergic to peanuts", user_id="alice")
        m.search("what can alice eat?", user_id="alice", limit=5)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import pydantic

from .config import PER_CALL_SETTINGS, MemoryConfig, SearchOptions
from .context import Context, build_context, trim_turns
from .embedders import CachedEmbedder, Embedder, resolve_embedder
from .episodes import expand_sources, list_sessions, summarize
from .errors import ConfigurationError, ValidationError
from .extraction import Deriver, Merger, make_extractor
from .extraction.runner import ExtractionRunner
from .filters import EPISODES
from .imports import import_records
from .ingest import MAX_PAGE, MessagesInput, check_id, check_int, check_limit, first_error, make_scope, page_filter
from .maintenance import ConsolidateResult, PrunePolicy, PruneResult, consolidate, prune, prune_policy
from .models import (
    AddResult,
    DeleteResult,
    HistoryEntry,
    Job,
    JobPage,
    JobState,
    MemoryItem,
    Page,
    ScopeCount,
    SearchResult,
    SessionEpisode,
    StoreStats,
)
from .planner import added_items, context_query, derive_first, embed_records, finish_add, plan_add, plan_change
from .retrieval.recall import arecall, plan_search, recall
from .stores import Query, Store, open_store
from .stores.base import AsyncReads, AsyncWrites
from .stores.cursor import every_page
from .threads import limit_blas_threads

__all__ = ["MAX_PAGE", "Memory"]


class Memory:
    """Long-term memory for an agent: add what was said, search what matters.

    Args:
        store: ``None`` (a file in the user data dir), ``":memory:"``, ``"sqlite:///path.db"``, a path or a ``Store``.
        embedder: ``"provider:model"`` or an ``Embedder``; ``None`` is the bundled offline model.
        config: everything else; ``store`` and ``embedder`` arguments override it.

    Raises:
        ConfigurationError: an unknown embedder, or a store made with another embedder.
    """

    def __init__(
        self, store: str | Store | None = None, *, embedder: str | Embedder | None = None,
        config: MemoryConfig | None = None,
    ) -> None:  # fmt: skip
        config = config or MemoryConfig()
        if isinstance(store, str):
            config = config.model_copy(update={"store": store})
        self.config = config
        if isinstance(embedder, str) or embedder is None:
            embedder = resolve_embedder(embedder or config.embedder, config.embedder_options)
        self.embedder: Embedder = CachedEmbedder(embedder)
        owned = store is None or isinstance(store, str)
        self.store: Store = open_store(config.store, durability=config.durability) if owned else store  # type: ignore[assignment]
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
        limit_blas_threads(config.blas_threads)  # the pools the embedder loaded too (threads.py)

    def with_config(self, **changes: Any) -> Memory:
        """A view of the same store and embedder with some per-call settings changed.

        Only settings read on every call can change (``PER_CALL_SETTINGS``, e.g. ``search``); the
        store, embedder, LLM and tenant are built once: swapping them is refused, not ignored.

        Raises:
            ConfigurationError: a setting that is fixed at construction.
            ValidationError: a value the setting does not accept.
        """
        if fixed := sorted(set(changes) - PER_CALL_SETTINGS):
            raise ConfigurationError(f"{', '.join(fixed)} cannot change on an open Memory: build a new one "
                                     "(for_tenant for a tenant)")  # fmt: skip
        try:
            config = MemoryConfig.model_validate({**self.config.model_dump(), **changes})
        except pydantic.ValidationError as exc:
            raise ValidationError(f"invalid setting {first_error(exc)}") from None
        return self._view(config=config)

    def for_tenant(self, tenant_id: str) -> Memory:
        """A view of the same store and embedder confined to another tenant (used by the server)."""
        return self._view(tenant_id=tenant_id)

    def _view(self, **changed: Any) -> Memory:
        view = object.__new__(Memory)  # the same store, embedder and runner: nothing is rebuilt
        view.__dict__.update(self.__dict__, **changed)
        return view

    # --- writes ---------------------------------------------------------------------------

    def add(
        self, messages: MessagesInput, *, user_id: str | None = None, agent_id: str | None = None,
        session_id: str | None = None, metadata: dict[str, Any] | None = None, kind: str = "episode",
        occurred_at: datetime | str | None = None, importance: float = 0.5, expires_at: datetime | str | None = None,
        infer: bool | None = None, wait: bool | None = None,
    ) -> AddResult:  # fmt: skip
        """Store each non-system message verbatim, with its speaker; then derive memories from them.

        With ``infer`` (default: config), facts and preferences are extracted (by the LLM if
        configured, else by rules; the messages are durable before an LLM is asked, and commit
        with what the rules derive) and reconciled with the store: ADD, UPDATE (the old version kept in history),
        INVALIDATE or NOOP. With an LLM, ``wait=False`` returns at once with a job id; an LLM
        failure keeps the messages and leaves the job pending for ``process_pending``.
        ``kind="procedure"`` distils instructions for the agent; another ``kind`` stores the
        text as given. An exact duplicate in scope is a NOOP with the existing id.

        Returns:
            ``{"results": [{"id", "memory", "event", ...}], "extraction": {...}}``.
        Raises:
            ValidationError: no scope, empty or oversized text, bad metadata or types.
        """
        plan = plan_add(self.config, messages, user_id=user_id, agent_id=agent_id, session_id=session_id,
                        metadata=metadata, kind=kind, occurred_at=occurred_at, importance=importance,
                        expires_at=expires_at, infer=infer)  # fmt: skip
        if not plan.items:
            return AddResult(results=[])
        context = context_query(self.config, self.tenant_id, plan)
        turns = self.store.recent(context, limit=self.config.context_turns) if context else []
        records, job = embed_records(self.config, self.embedder, plan, [turn.memory for turn in turns])
        derived = derive_first(self._runner, self.tenant_id, plan, records, job)
        if derived is None or job is None:
            outcomes, applied = self.store.add(self.tenant_id, records, job=job), None
        else:  # one transaction: the messages and what they say (planner.derive_first)
            outcomes, applied = self.store.add_derived(self.tenant_id, records, job=job, derived=derived)
        return finish_add(self._runner, self.config, self.tenant_id, plan, outcomes, job, wait, derived, applied)

    def job(self, job_id: str) -> Job:
        """The state of an extraction job (``AddResult.extraction.job_id``).

        Raises:
            NotFoundError: no such job in this tenant.
        """
        return self.store.get_job(self.tenant_id, self._check_id(job_id))

    def jobs(
        self, *, state: JobState | None = "failed", user_ids: Sequence[str] | None = None, cursor: str | None = None,
        limit: int = 50,
    ) -> JobPage:  # fmt: skip
        """This tenant's extraction jobs, oldest first, a page at a time: by default the failed
        ones, which nothing retries by itself. ``user_ids`` keeps those users' jobs only.

        Raises:
            ValidationError: an unknown state, a bad cursor or limit.
        """
        return self._runner.page(self.tenant_id, state=state, user_ids=user_ids, cursor=cursor, limit=limit)

    def retry_job(self, job_id: str) -> Job:
        """Run one extraction job again now, failed or pending (after the LLM came back), as one
        attempt; returns it as it ended. Raises NotFoundError: no such job in this tenant."""
        return self._runner.retry_now(self.tenant_id, self._check_id(job_id))

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
        return self.store.update(self.tenant_id, *plan_change(self.config, self.embedder, memory_id, text, metadata))

    def delete(self, memory_id: str) -> DeleteResult:
        """Delete one memory. Its history keeps a DELETE entry."""
        self.store.delete(self.tenant_id, self._check_id(memory_id))
        return DeleteResult(deleted=1, message="memory deleted")

    def delete_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        hard: bool = False,
    ) -> DeleteResult:  # fmt: skip
        """Delete every memory in a scope (a scope is required: ``reset`` clears everything).

        Soft (default): history keeps a DELETE entry per memory. ``hard=True`` removes every trace
        (rows, history, jobs, free pages, WAL, vector snapshot), for a user who asks to be forgotten.
        """
        scope = make_scope(user_id, agent_id, session_id, required=True)
        count = self.store.delete_scope(self.tenant_id, scope, hard=hard)
        return DeleteResult(deleted=count, message=f"{count} memories deleted")

    def reset(self) -> None:
        """Remove every memory and all history of this tenant."""
        self.store.reset(self.tenant_id)

    def import_items(self, items: Iterable[MemoryItem | dict[str, Any]]) -> AddResult:
        """Restore exported memories, keeping ids and timestamps; re-embeds with this embedder.

        An id the record's own scope holds, or an exact duplicate in scope, is a NOOP; an id held
        outside it gets a fresh id (``imports``). All is validated before one transaction writes.

        Raises:
            ValidationError: a malformed record, a source outside its record's scope, too many records.
        """
        records = import_records(self.config, self.store, self.embedder, self.tenant_id, items)
        outcomes = self.store.add(self.tenant_id, records)
        return AddResult(results=added_items(outcomes, [r.item for r in records]))

    # --- reads ----------------------------------------------------------------------------

    def search(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        filters: dict[str, Any] | None = None, limit: int = 10, threshold: float | None = None, explain: bool = False,
        options: SearchOptions | dict[str, Any] | None = None, include_invalid: bool = False,
        as_of: datetime | str | None = None,
        time_range: tuple[datetime | str | None, datetime | str | None] | None = None,
        reference_date: datetime | str | None = None,
    ) -> SearchResult:  # fmt: skip
        """The memories most relevant to ``query`` in a scope, best first.

        Only currently valid memories by default; ``include_invalid`` also returns superseded,
        invalidated, forgotten and expired ones (``state`` and ``valid_to`` say so); ``as_of``
        answers as the store would have then. ``time_range=(start, end)`` keeps memories whose
        event time (``occurred_at``, else ``created_at``) falls in it; without it, a time named
        in the query ("last week", "before June"), resolved against ``reference_date`` (default
        now), favours memories from then (``SearchOptions.time_weight``). ``score`` (in [0, 1]) orders
        the hits: fused dense and BM25 ranks times the factors. ``relevance`` is absolute; a search whose
        best hit's is below ``threshold`` (default ``SearchOptions.threshold``) returns nothing; 0: never.

        Raises:
            ValidationError: empty query, bad filter, limit or threshold out of range.
        """
        plan = plan_search(self.config, self.tenant_id, query, user_id=user_id, agent_id=agent_id,
                           session_id=session_id, filters=filters, limit=limit, threshold=threshold, explain=explain,
                           options=options, include_invalid=include_invalid, as_of=as_of, time_range=time_range,
                           reference_date=reference_date)  # fmt: skip
        result = recall(self.store, self.embedder, plan, parallel=self.config.parallel_search)
        self.store.touch(self.tenant_id, [h.id for h in result.results])  # access counts: retention and recency of use
        return result

    async def asearch(self, query: str, **kwargs: Any) -> SearchResult:
        """``search`` on a store with native async reads (PostgreSQL): awaited, no thread held.

        Raises:
            ConfigurationError: the store has no async reads (use AsyncMemory, which picks).
        """
        if self.async_reads is None:
            raise ConfigurationError("this store has no native async reads; use AsyncMemory.search")
        plan = plan_search(self.config, self.tenant_id, query, **kwargs)
        result = await arecall(self.async_reads, self.embedder, plan)
        await self.async_reads.atouch(self.tenant_id, [h.id for h in result.results])  # the flush is awaited too
        return result

    def get(self, memory_id: str) -> MemoryItem:
        """One memory by id. Raises NotFoundError if it does not exist in this tenant."""
        return self.store.get(self.tenant_id, self._check_id(memory_id))

    def get_all(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        filters: dict[str, Any] | None = None, kind: str | None = None, limit: int = 100, cursor: str | None = None,
        include_inactive: bool = False,
    ) -> Page:  # fmt: skip
        """A page of memories in creation order, with the total count and a cursor for the next page."""
        check_limit(limit)
        scope = make_scope(user_id, agent_id, session_id, required=False)
        q = Query(self.tenant_id, scope, page_filter(filters, kind), include_inactive=include_inactive)
        return self.store.list_page(q, cursor=cursor, limit=limit)

    def iter_all(self, **kwargs: Any) -> Iterator[MemoryItem]:
        """Every memory get_all would page through, one page at a time."""
        return every_page(lambda cursor: self.get_all(cursor=cursor, **kwargs))

    def history(self, memory_id: str) -> list[HistoryEntry]:
        """Every change to a memory, oldest first (kept after deletion)."""
        return self.store.history(self.tenant_id, self._check_id(memory_id))

    def stats(self) -> StoreStats:
        return self.store.stats(self.tenant_id)

    def scopes(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        include_inactive: bool = False,
    ) -> list[ScopeCount]:  # fmt: skip
        """Every scope within the one given (all of them by default) holding memories in recall, with
        how many: who a tenant remembers anything about (mem0's ``users``). ``include_inactive``
        also lists scopes whose memories are all out of recall, and counts those (``inactive``):
        a user whose every fact was superseded or forgotten can still be found and inspected."""
        scope = make_scope(user_id, agent_id, session_id, required=False)
        return self.store.scope_counts(Query(self.tenant_id, scope, include_inactive=include_inactive))

    def export(self) -> Iterator[MemoryItem]:
        """Every memory of this tenant, in id order (for JSONL export and migration)."""
        return self.store.export(self.tenant_id)

    def context(
        self, query: str, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        max_tokens: int = 1500, recent_turns: int = 8, relevant: int = 10, profile: int = 20,
        reference_date: datetime | str | None = None, encoding: str = "o200k_base",
    ) -> Context:  # fmt: skip
        """What to put in the prompt for this turn: standing facts, relevant memories, recent turns.

        Facts and relevant memories come from the user (or agent) scope across sessions; the
        recent turns from ``session_id``. The text never exceeds ``max_tokens`` in
        ``encoding`` (``cl100k_base`` or ``o200k_base``); each line cites ``[n]``, and
        ``items`` maps every n to its memory id.
        """
        return build_context(self.store, self.tenant_id, self.search, self.config, query, user_id=user_id,
                             agent_id=agent_id, session_id=session_id, max_tokens=max_tokens, recent_turns=recent_turns,
                             relevant=relevant, profile=profile, reference_date=reference_date,
                             encoding=encoding)  # fmt: skip

    def recent_turns(
        self, *, session_id: str, user_id: str | None = None, agent_id: str | None = None, limit: int = 20,
        max_tokens: int | None = None, encoding: str = "o200k_base",
    ) -> list[MemoryItem]:  # fmt: skip
        """Working memory: the last turns of a session, oldest first, at most ``limit`` and ``max_tokens``."""
        check_limit(limit)
        scope = make_scope(user_id, agent_id, session_id, required=True)
        turns = self.store.recent(Query(self.tenant_id, scope, EPISODES), limit=limit)
        return turns if max_tokens is None else trim_turns(turns, max_tokens, encoding)

    def sessions(self, *, user_id: str | None = None, agent_id: str | None = None) -> list[SessionEpisode]:
        """A user's history, one entry per session (start, end, participants, summary), oldest first."""
        owner = make_scope(user_id, agent_id, None, required=True)
        return list_sessions(self.iter_all(**owner.model_dump(), kind="episode", limit=MAX_PAGE))

    def summarize_session(
        self, session_id: str, *, user_id: str | None = None, agent_id: str | None = None, sentences: int = 3
    ) -> MemoryItem:
        """Store the session's summary as an episode memory (LLM when configured, else extractive).

        Searchable like any memory; ``expand(summary.id)`` gives back its turns. Summarising
        again replaces the previous summary (kept in history).

        Raises:
            ValidationError: ``sentences`` not an integer from 1 to 100, or no scope.
            NotFoundError: the session has no turns.
        """
        check_int(sentences, "sentences", 1, 100)
        scope = make_scope(user_id, agent_id, session_id, required=True)
        episodes = self.iter_all(**scope.model_dump(), kind="episode", limit=MAX_PAGE)  # every page: sessions run long
        return summarize(self.store, self.embedder, self.tenant_id, self._merger, scope, episodes, sentences)

    def expand(self, memory_id: str) -> list[MemoryItem]:
        """The memories a summary or a derived memory came from, in order, within its own scope."""
        return expand_sources(self.store, self.tenant_id, self.get(memory_id))

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
        return consolidate(self.store, self.embedder, self.tenant_id, items, self._merger)

    def prune(
        self, *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None,
        policy: PrunePolicy | dict[str, Any] | None = None, hard: bool = False,
    ) -> PruneResult:  # fmt: skip
        """Forget what a policy says should go: expired, too old, too little retained, over capacity.

        Soft by default (state ``forgotten``: out of search, in history with the reason);
        ``hard=True`` deletes them and their history. A bad policy raises ValidationError.
        """
        scope = make_scope(user_id, agent_id, session_id, required=True)
        rules = prune_policy(policy)
        filters = {"kind": {"in": rules.kinds}} if rules.kinds else None
        items = self.iter_all(**scope.model_dump(), filters=filters, limit=MAX_PAGE, include_inactive=True)
        return prune(self.store, self.tenant_id, items, rules, hard=hard)

    @property
    def _merger(self) -> Merger | None:
        """The extractor's merger if it declares one (an LLM's): consolidation and summaries use it."""
        return self._runner.deriver.extractor.merger

    def close(self) -> None:
        self._runner.close()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    _check_id = staticmethod(check_id)  # the server and AsyncMemory check ids with it too
