"""The recall pipeline: embed the query, gather dense and BM25 candidates, fuse, weight, cut."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from ..config import SearchOptions
from ..embedders import Embedder
from ..models import MemoryItem, ScoreDetail, SearchHit, trusted, utcnow
from ..stores.base import AsyncReads, Query, Store, StoreHit
from .fusion import Fused, rrf
from .lexical import lexical_terms
from .relevance import UNSEEN, Signals, asked_words, coverage, name_words, relevance, said_words, what_words
from .temporal import TimeRange, asks_when, names_time, tells_of, told_around

_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engramdb-lexical")
RESCORED = 30  # fused candidates loaded and rescored when a factor beyond the fusion can reorder them


def hybrid_search(
    store: Store,
    embedder: Embedder,
    query: Query,
    text: str,
    *,
    limit: int,
    options: SearchOptions,
    explain: bool,
    parallel: bool = True,
    then: bool | None = None,
    dense: str | None = None,
) -> list[SearchHit]:
    """Rank the memories visible to ``query`` for ``text``; best first, scores in [0, 1]. ``then``:
    None when ``text`` names no time, else whether ``query`` is confined to it (``relevance.TIME``);
    ``dense``: what the dense retriever embeds instead of ``text`` (``retrieval.speakers``)."""
    lists = _candidates(store, embedder, query, (text, dense or text), options, parallel)
    fused = _fuse(lists, options, limit)
    items = store.get_many(query.tenant_id, [f.id for f in fused])
    asked = _outdated_asked(items, query, options)
    outdated = store.outdated(query.tenant_id, asked) if asked else set()
    context = (_weakest(lists), then, store.language)
    return _rank(items, fused, query, text, options, limit, explain, outdated, context)


async def ahybrid_search(
    store: AsyncReads,
    embedder: Embedder,
    query: Query,
    text: str,
    *,
    limit: int,
    options: SearchOptions,
    explain: bool,
    then: bool | None = None,
    dense: str | None = None,
) -> list[SearchHit]:
    """``hybrid_search`` on a store with native async reads: the two retrievers are awaited together."""
    import asyncio

    lists: dict[str, list[StoreHit]] = {}
    pending = {}
    if options.lexical_weight > 0:
        pending["lexical"] = store.alexical_search(query, lexical_terms(text), options.candidates)
    if options.dense_weight > 0:
        vector = embedder.embed([dense or text], kind="query")[0]  # CPU, a fraction of a millisecond
        pending["dense"] = store.adense_search(query, vector, options.candidates)
    for name, found in zip(pending, await asyncio.gather(*pending.values()), strict=True):
        lists[name] = found
    fused = _fuse(lists, options, limit)
    items = await store.aget_many(query.tenant_id, [f.id for f in fused])
    asked = _outdated_asked(items, query, options)
    outdated = await store.aoutdated(query.tenant_id, asked) if asked else set()
    context = (_weakest(lists), then, store.language)
    return _rank(items, fused, query, text, options, limit, explain, outdated, context)


def _weakest(lists: dict[str, list[StoreHit]]) -> float:
    """The least dense similarity among the candidates: a bound for a memory outside them (0 if none)."""
    if "dense" not in lists:  # the retriever is off: no similarity is known (``relevance.UNSEEN``)
        return UNSEEN
    return min((h.score for h in lists["dense"]), default=0.0)


def _outdated_asked(items: list[MemoryItem], query: Query, options: SearchOptions) -> list[str]:
    """The messages to ask ``Store.outdated`` about: none when the search wants the past too
    (``include_invalid``, ``as_of``: what was true then is the answer) or the factor is off."""
    if options.outdated_weight == 0 or query.include_inactive:
        return []
    return [item.id for item in items if item.kind == "episode"]


def _fuse(lists: dict[str, list[StoreHit]], options: SearchOptions, limit: int) -> list[Fused]:
    weights = {"dense": options.dense_weight, "lexical": options.lexical_weight}
    fused = rrf(lists, weights, k=options.rrf_k)
    if options.recency_weight == 0 and options.importance_weight == 0:
        # load only what can be returned: the first ``limit``, or the few the speaker and when factors may promote
        reorders = options.speaker_weight > 0 or options.when_weight > 0
        fused = fused[: max(limit, RESCORED) if reorders else limit]
    return fused


def _rank(
    loaded: list[MemoryItem],
    fused: list[Fused],
    query: Query,
    text: str,
    options: SearchOptions,
    limit: int,
    explain: bool,
    outdated: set[str],
    context: tuple[float, bool | None, str],
) -> list[SearchHit]:
    """The hits, best first; ``context``: the weakest dense candidate's similarity, whether this
    run is confined to the time the query names (``hybrid_search``'s ``then``), the store's language."""
    weakest, then, language = context
    items = {m.id: m for m in loaded}
    now = query.now or utcnow()
    named = named_speakers(text, loaded) if options.speaker_weight > 0 else None
    when = options.when_weight if asks_when(text) else 0.0
    asked = asked_words(text, timed=then is not None, language=language)
    who = sorted(named or ()) + owner_named(text, query)
    known = name_words(who, asked, language)
    what = what_words(asked, known)
    said = {m.id: said_words(what, m.memory, m.provenance.name, named=" ".join(who), then=bool(then),
                             language=language) for m in loaded}  # fmt: skip
    reach = coverage(what, said.values())
    hits = []
    for f in fused:
        if f.id in items:
            cosine = f.raw.get("dense", weakest)
            signals = Signals(cosine, coverage(what, [said[f.id]]), reach, 1.0 if known else 0.0)
            hits.append(_hit(items[f.id], f, options, now, named, when, explain, f.id in outdated, signals))
    hits.sort(key=lambda h: (-h.score, h.id))
    return hits[:limit]


def owner_named(text: str, query: Query) -> list[str]:
    """The searched user's id when the query names it ("where does alice live?", searching alice's
    memories): the owner of the scope is someone it has heard from, in the memories without a
    speaker's name (the user's own)."""
    user = query.scope.user_id
    return [user] if user and not set(lexical_terms(text)).isdisjoint(lexical_terms(user)) else []


def _candidates(
    store: Store, embedder: Embedder, query: Query, texts: tuple[str, str], options: SearchOptions, parallel: bool
) -> dict[str, list[StoreHit]]:
    """Dense and lexical candidates, the two side by side when ``parallel`` (both release the GIL).
    ``texts``: the query as BM25 reads it, and as the embedder does."""
    text, dense = texts
    lists: dict[str, list[StoreHit]] = {}
    lexical = None
    if options.lexical_weight > 0 and parallel:
        lexical = _POOL.submit(store.lexical_search, query, lexical_terms(text), options.candidates)
    elif options.lexical_weight > 0:
        lists["lexical"] = store.lexical_search(query, lexical_terms(text), options.candidates)
    if options.dense_weight > 0:
        vector = embedder.embed([dense], kind="query")[0]
        lists["dense"] = store.dense_search(query, vector, options.candidates)
    if lexical is not None:
        lists["lexical"] = lexical.result()
    return lists


def recency_factor(item: MemoryItem, now: datetime, half_life_days: float) -> float:
    """1.0 for a memory from now, 0.5 after one half-life, and so on."""
    when = item.occurred_at or item.created_at
    age_days = max(0.0, (now - when).total_seconds() / 86_400)
    return math.pow(0.5, age_days / half_life_days)


def named_speakers(text: str, items: list[MemoryItem]) -> set[str] | None:
    """The speakers of ``items`` that the query names ("what does alice eat?"), or None.

    A question about a person is best answered by what that person said: a turn of someone
    else that merely addresses them ("Wow, Alice, ...") matches the name too, and outranks
    the answer when it is short. A name counts if any word of it is among the query's terms.
    """
    terms = set(lexical_terms(text))
    names = {item.provenance.name for item in items if item.provenance.name}
    return {name for name in names if not terms.isdisjoint(lexical_terms(name))} or None


def speaker_factor(item: MemoryItem, named: set[str] | None, weight: float) -> float:
    """1 − weight for a memory of a speaker other than those the query names, else 1.

    A memory without a speaker's name (a user's own message, a fact added directly) is
    nobody else's: it keeps its score.
    """
    name = item.provenance.name
    return 1.0 if named is None or name is None or name in named else 1.0 - weight


def when_factor(item: MemoryItem, weight: float) -> float:
    """1 − weight for a memory that names no time, when the query asks when (``weight`` 0 otherwise).

    "When did she go to Paris?" is answered by "I went to Paris last week" (the time is its
    date minus a week) rather than by "Paris was lovely"; the session date still answers
    when no turn names a time, which is why the others are lowered, not dropped.
    """
    return 1.0 if weight == 0 or names_time(item.memory) else 1.0 - weight


def _hit(
    item: MemoryItem,
    fused: Fused,
    options: SearchOptions,
    now: datetime,
    named: set[str] | None,
    when_weight: float,
    explain: bool,
    outdated: bool,
    signals: Signals,
) -> SearchHit:
    score = fused.score
    relevant = round(relevance(signals), 6)
    recency = importance = None
    speaker = speaker_factor(item, named, options.speaker_weight)
    when = when_factor(item, when_weight)
    holds = 1.0 - options.outdated_weight if outdated else 1.0
    score *= speaker * when * holds
    if options.recency_weight > 0:
        recency = recency_factor(item, now, options.recency_half_life_days)
        score *= 1 - options.recency_weight + options.recency_weight * recency
    if options.importance_weight > 0:
        importance = item.importance
        score *= 1 - options.importance_weight + options.importance_weight * importance
    detail = None
    if explain:
        detail = ScoreDetail(
            dense_rank=fused.ranks.get("dense"),
            dense_similarity=fused.raw.get("dense"),
            lexical_rank=fused.ranks.get("lexical"),
            lexical_bm25=fused.raw.get("lexical"),
            fused=fused.score,
            recency=recency,
            importance=importance,
            speaker=speaker,
            when=when,
            outdated=holds,
            cosine=signals.cosine,
            coverage=round(signals.coverage, 6),
            reach=round(signals.reach, 6),
            who=signals.who,
            relevance=relevant,
        )
    # the item is already validated: build the hit from its fields without validating it twice
    return trusted(SearchHit, {**item.__dict__, "score": round(score, 6), "relevance": relevant, "explain": detail})


def favour_in_range(
    in_range: list[SearchHit], everything: list[SearchHit], span: TimeRange, weight: float, limit: int
) -> list[SearchHit]:
    """Merge a search confined to the query's time range with the unconfined one.

    In range: ``w + (1 − w)·score``; out of range: ``(1 − w)·score`` — both in [0, 1]. With the
    default w = 0.5 a query that names a time ranks what happened then first, by relevance,
    and still shows the rest after it. A memory from soon before or after the range counts as
    in range when its text names a time within it ("last Friday", said the next Tuesday; "on
    November 22", said on the 14th).
    """
    around = told_around(span)

    def inside(hit: SearchHit) -> bool:
        when = hit.occurred_at or hit.created_at
        return span.contains(when) or (around.contains(when) and tells_of(hit.memory, when, span))

    def rescored(hit: SearchHit) -> SearchHit:
        score = weight + (1 - weight) * hit.score if inside(hit) else (1 - weight) * hit.score
        return hit.model_copy(update={"score": round(score, 6)})

    merged = {h.id: rescored(h) for h in in_range}
    for hit in everything:
        if hit.id not in merged:
            merged[hit.id] = rescored(hit)
    return sorted(merged.values(), key=lambda h: (-h.score, h.id))[:limit]
