"""SQLite and PostgreSQL side by side: the same operations give the same results.

Every test drives two Memory objects, one per backend, through the public API and compares
what comes back (by text: ids are fresh per store). The per-test behaviour suites also run on
both backends through the ``store_url`` fixture; this file checks the two against each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_filters import FILTERS, RECORDS, reference

from engramdb import AsyncMemory, ConfigurationError, Memory, MemoryConfig, NotFoundError, ValidationError
from engramdb.embedders import Embedder

Pair = tuple[Memory, Memory]
SENTENCES = [
    "I'm vegetarian and allergic to peanuts", "Book me a window seat on the flight to Lisbon",
    "My sister Maya lives in Porto", "I run every morning before work", "Our dog Biscuit hates thunderstorms",
    "I work as a nurse at the city hospital", "We are planning a trip to Japan in April",
    "My favourite band is Radiohead", "I am learning to play the cello", "The car needs new tyres before winter",
    "Emma starts school in September", "I prefer tea to coffee in the afternoon",
]  # fmt: skip
QUERIES = ["what can alice eat?", "where does her sister live", "pets", "job", "music", "travel plans", "drinks"]


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str, default_embedder: Embedder) -> Iterator[Pair]:
    config = MemoryConfig(infer=False)
    with (
        Memory(f"sqlite:///{tmp_path / 'c.db'}", embedder=default_embedder, config=config) as lite,
        Memory(postgres_url, embedder=default_embedder, config=config) as pg,
    ):
        yield lite, pg


def both(pair: Pair, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    return tuple(getattr(m, method)(*args, **kwargs) for m in pair)  # type: ignore[return-value]


def texts(result: Any) -> list[str]:
    return [item.memory for item in result.results]


def test_dense_ranking_and_scores_agree(pair: Pair) -> None:
    for text in SENTENCES:
        both(pair, "add", text, user_id="alice")
    for query in QUERIES:
        lite, pg = both(pair, "search", query, user_id="alice", limit=5, options={"lexical_weight": 0})
        assert texts(lite) == texts(pg), query
        assert [h.score for h in lite.results] == pytest.approx([h.score for h in pg.results], abs=1e-6)


def test_hybrid_search_agrees(pair: Pair) -> None:
    for text in SENTENCES:
        both(pair, "add", text, user_id="alice")
    for query in QUERIES:
        lite, pg = both(pair, "search", query, user_id="alice", limit=3, threshold=0)  # the whole ranking
        assert texts(lite)[0] == texts(pg)[0], query
        assert set(texts(lite)) == set(texts(pg)), query
        relevance = {h.memory: h.relevance for h in lite.results}
        assert all(abs(relevance[h.memory] - h.relevance) < 1e-4 for h in pg.results), query
        lite, pg = both(pair, "search", query, user_id="alice", limit=3)  # the default threshold
        assert texts(lite) == texts(pg), query


def test_both_stores_abstain_on_what_was_never_said(pair: Pair) -> None:
    """A question about something never said returns nothing; an on-topic one still returns."""
    for text in SENTENCES:
        both(pair, "add", text, user_id="alice")
    for memory in pair:
        assert texts(memory.search("How many moons does Jupiter have?", user_id="alice")) == []
        assert texts(memory.search("who won the chess championship?", user_id="alice")) == []
        found = memory.search("where does my sister live?", user_id="alice", explain=True).results
        assert found[0].memory == "My sister Maya lives in Porto"
        assert found[0].relevance is not None and found[0].relevance >= 0.5
        detail = found[0].explain
        assert detail is not None and detail.relevance == found[0].relevance and detail.coverage == 1.0
        assert len(memory.search("How many moons does Jupiter have?", user_id="alice", threshold=0).results) == 10


def test_tenant_wide_search_through_the_index_agrees_with_the_exact_scan(pair: Pair) -> None:
    """Without a user, PostgreSQL searches through HNSW; SQLite scans exactly."""
    for i, text in enumerate(SENTENCES * 3):
        both(pair, "add", f"{text} (note {i})", user_id=f"user{i % 7}", agent_id="bot")
    for query in QUERIES:
        lite, pg = both(pair, "search", query, agent_id="bot", limit=5, options={"lexical_weight": 0})
        assert texts(lite) == texts(pg), query


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=RECORDS, filters=st.lists(FILTERS, min_size=1, max_size=6))
def test_random_filters_agree(pair: Pair, records: list[dict[str, Any]], filters: list[Any]) -> None:
    user = uuid.uuid4().hex  # a fresh scope per example: the stores are shared across examples
    for i, r in enumerate(records):
        message = {"role": "user", "content": f"record {i}", **({"name": r["speaker"]} if r["speaker"] else {})}
        both(pair, "add", message, user_id=user, kind=r["kind"], importance=r["importance"], metadata=r["metadata"])
    for spec in filters:
        expected = [f"record {i}" for i, r in enumerate(records) if reference(spec, r)]
        lite, pg = both(pair, "get_all", user_id=user, filters=spec, limit=1000)
        assert texts(lite) == texts(pg) == expected, spec
        assert lite.total == pg.total == len(expected)
        lite_hits, pg_hits = both(pair, "search", "record", user_id=user, filters=spec, limit=1000)
        assert sorted(texts(lite_hits)) == sorted(texts(pg_hits)) == sorted(expected), spec


def test_pagination_agrees(pair: Pair) -> None:
    for i in range(23):
        both(pair, "add", f"note number {i}", user_id="u")
    pages: list[list[list[str]]] = [[], []]
    for side, memory in enumerate(pair):
        cursor = None
        while True:
            page = memory.get_all(user_id="u", limit=5, cursor=cursor)
            assert page.total == 23
            pages[side].append(texts(page))
            cursor = page.next_cursor
            if cursor is None:
                break
    assert pages[0] == pages[1]
    assert [len(p) for p in pages[0]] == [5, 5, 5, 5, 3]
    assert sorted(t for p in pages[0] for t in p) == sorted(f"note number {i}" for i in range(23))
    for memory in pair:
        with pytest.raises(ValidationError):
            memory.get_all(user_id="u", cursor="not-a-cursor")


def _residence(memory: Memory, **kwargs: Any) -> list[str]:
    hits = memory.search("where does alice live", user_id="alice", filters={"slot": "residence"}, **kwargs)
    return sorted(texts(hits))


def test_supersession_and_as_of_agree(tmp_path: Path, postgres_url: str, default_embedder: Embedder) -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with (
        Memory(f"sqlite:///{tmp_path / 's.db'}", embedder=default_embedder) as lite,
        Memory(postgres_url, embedder=default_embedder) as pg,
    ):
        for memory in (lite, pg):
            memory.add({"role": "user", "content": "I live in Paris", "timestamp": start}, user_id="alice")
            later = start + timedelta(days=90)
            memory.add({"role": "user", "content": "I moved to Berlin", "timestamp": later}, user_id="alice")
        for kwargs in ({}, {"include_invalid": True}, {"as_of": start + timedelta(days=30)}):
            assert _residence(lite, **kwargs) == _residence(pg, **kwargs), kwargs
        assert _residence(pg) == ["The user lives in Berlin"]
        assert _residence(pg, as_of=start + timedelta(days=30)) == ["The user lives in Paris"]
        old = [m.get_all(user_id="alice", filters={"state": "superseded"}, include_inactive=True) for m in (lite, pg)]
        assert texts(old[0]) == texts(old[1]) == ["The user lives in Paris"]
        events = [[h.event for h in m.history(page.results[0].id)] for m, page in zip((lite, pg), old, strict=True)]
        assert events[0] == events[1]


def test_tenants_are_isolated_on_both(pair: Pair) -> None:
    for memory in pair:
        a, b = memory.for_tenant("a"), memory.for_tenant("b")
        mine = a.add("Tenant A's secret plan", user_id="alice").results[0].id
        assert b.search("secret plan", user_id="alice").results == []
        assert b.get_all(user_id="alice").total == 0
        for method, args in (("get", ()), ("history", ()), ("delete", ()), ("update", ("stolen",))):
            with pytest.raises(NotFoundError):
                getattr(b, method)(mine, *args)
        taken = b.import_items([a.get(mine)]).results[0]
        assert taken.id != mine  # another tenant's id is neither revealed nor taken
        assert a.get(mine).memory == "Tenant A's secret plan"


def test_errors_agree(pair: Pair) -> None:
    for memory in pair:
        first = memory.add("one", user_id="u").results[0].id
        memory.add("two", user_id="u")
        with pytest.raises(ValidationError):
            memory.update(first, "two")  # the scope already holds exactly this text
        with pytest.raises(NotFoundError):
            memory.get("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        assert memory.add("one", user_id="u").results[0].event.value == "NOOP"
        assert memory.get(first).memory == "one"


def test_a_batch_adds_as_its_adds_one_by_one_would(pair: Pair) -> None:
    """One call of many texts: a text already held, or twice in the batch, is a NOOP with the
    held id; the same text in another scope is its own memory."""
    for memory in pair:
        held = memory.add("held", user_id="u", infer=False).results[0].id
        batch = memory.add(["new", "held", "again", "new", "again"], user_id="u", infer=False).results
        assert [r.event.value for r in batch] == ["ADD", "NOOP", "ADD", "NOOP", "NOOP"]
        assert batch[1].id == held and batch[3].id == batch[0].id and batch[4].id == batch[2].id
        other = memory.add(["new", "held"], user_id="v", infer=False).results
        assert [r.event.value for r in other] == ["ADD", "ADD"] and other[0].id != batch[0].id
        assert sorted(texts(memory.search("new held again", user_id="u", limit=10))) == ["again", "held", "new"]
        assert memory.history(held)[0].event.value == "ADD" and len(memory.history(batch[2].id)) == 1


def test_export_import_and_stats_agree(pair: Pair) -> None:
    for i, text in enumerate(SENTENCES):
        both(pair, "add", text, user_id=f"u{i % 3}", metadata={"n": i})
    lite, pg = pair
    assert [(i.memory, i.metadata) for i in lite.export()] == [(i.memory, i.metadata) for i in pg.export()]
    s1, s2 = lite.stats(), pg.stats()
    for field in ("memories", "by_kind", "scopes", "history_rows", "embedder", "dimension"):
        assert getattr(s1, field) == getattr(s2, field), field


def test_scope_counts_agree(pair: Pair) -> None:
    """The scopes a tenant holds memories in (mem0's ``users``): counted alike, NULL ids first on both."""
    for i, text in enumerate(SENTENCES):
        both(pair, "add", text, user_id=f"u{i % 3}", agent_id="bot" if i % 2 else None,
             session_id="s1" if i % 4 == 0 else None)  # fmt: skip
    both(pair, "add", "an agent's own note", agent_id="bot")
    lite, pg = pair
    gone = lite.get_all(user_id="u0").results[0]
    lite.delete(gone.id)
    pg.delete(next(i.id for i in pg.get_all(user_id="u0").results if i.memory == gone.memory))
    counts = lite.scopes()
    assert counts == pg.scopes()
    assert counts[0].user_id is None and counts[0].agent_id == "bot" and counts[0].memories == 1
    assert sum(c.memories for c in counts) == len(SENTENCES)  # twelve added, one deleted, the agent's note
    assert lite.scopes(user_id="u1") == pg.scopes(user_id="u1") == [c for c in counts if c.user_id == "u1"]
    assert lite.for_tenant("other").scopes() == pg.for_tenant("other").scopes() == []


def test_postgres_reopens_and_refuses_another_embedder(postgres_url: str, default_embedder: Embedder) -> None:
    with Memory(postgres_url, embedder=default_embedder) as m:
        added = m.add("I keep bees", user_id="u").results[0].id
    with Memory(postgres_url, embedder=default_embedder) as m:
        assert m.get(added).memory == "I keep bees"
    with pytest.raises(ConfigurationError):
        Memory(postgres_url, embedder="hash:64")


def test_async_memory_on_postgres_awaits_the_store(
    postgres_url: str, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Native async reads give what the sync path gives, across event loops, without a thread per search."""
    import asyncio

    def no_thread(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the threaded path was used")

    monkeypatch.setattr(AsyncMemory, "_threaded_search", no_thread)
    monkeypatch.setattr(AsyncMemory, "_threaded_get", no_thread)

    async def main(queries: list[str]) -> list[list[str]]:
        async with AsyncMemory(postgres_url, embedder=default_embedder) as m:
            if (await m.get_all(user_id="u")).total == 0:
                for text in SENTENCES:
                    await m.add(text, user_id="u", occurred_at="2024-05-02T10:00:00Z")
            found = [texts(await m.search(q, user_id="u", limit=4, reference_date="2024-05-20", threshold=0))
                     for q in queries]  # fmt: skip
            first = (await m.search(queries[0], user_id="u", threshold=0)).results[0]
            assert (await m.get(first.id)).memory == first.memory
            with pytest.raises(NotFoundError):
                await m.get("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
            return found

    queries = [*QUERIES, "what happened earlier this month?"]
    from engramdb.stores import semantics
    from engramdb.stores.postgres import PostgresStore

    monkeypatch.setattr(PostgresStore, "touch", no_thread)  # the async path counts accesses its own way
    monkeypatch.setattr(semantics, "TOUCH_FLUSH_S", 0.0)  # every search's counts are due at once
    native = asyncio.run(main(queries))
    assert asyncio.run(main(queries)) == native  # a second event loop gets its own connections
    monkeypatch.undo()
    with Memory(postgres_url, embedder=default_embedder) as m:
        counted = {i.memory: i.access_count for i in m.get_all(user_id="u").results}
        assert all(counted[text] >= 2 for text in native[0])  # found by both runs' first query, counted
        again = [texts(m.search(q, user_id="u", limit=4, reference_date="2024-05-20", threshold=0)) for q in queries]
        assert again == native


def test_the_full_text_language_is_configurable(postgres_url: str, default_embedder: Embedder) -> None:
    german = postgres_url + ("&" if "?" in postgres_url else "?") + "text_search=german"
    with Memory(german, embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        m.add("Die Kinder spielen im Garten", user_id="u")
        hits = m.search("Kind", user_id="u", options={"dense_weight": 0})  # German stemming: Kinder → kind
        assert [h.memory for h in hits.results] == ["Die Kinder spielen im Garten"]
    with pytest.raises(ConfigurationError):
        Memory(postgres_url.replace("?", "?text_search=klingon&", 1), embedder=default_embedder)


def _script(user: str) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Writes of a chat's turn path: turns added one by one, a derived fact, an update, deletes."""
    turn = {"user_id": user, "session_id": "s1"}
    return [
        ("add", ([{"role": "user", "name": "Ana", "content": "We finally adopted a rescue greyhound"}],), turn),
        ("add", ([{"role": "user", "name": "Ben", "content": "Lovely! What did you call him?"}],), turn),
        ("add", ([{"role": "user", "name": "Ana", "content": "Biscuit, after his colour"}],), turn),
        ("add", ("I'm allergic to peanuts",), {"user_id": user}),
        ("add", ("Book a table for Friday",), {"user_id": user, "infer": False}),
        ("add", ("A note for someone else",), {"user_id": user + "-other"}),
    ]


def test_async_memory_on_postgres_writes_natively(
    tmp_path: Path, postgres_url: str, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """add/update/delete/delete_all awaited on PostgreSQL do what the sync API does on SQLite."""
    import asyncio

    from engramdb.stores.postgres import PostgresStore

    def no_thread(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the threaded or sync write path was used")

    user = f"w{uuid.uuid4().hex[:8]}"

    def check(m: Any, results: list[Any]) -> list[Any]:
        return [*results, texts(m.search("greyhound", user_id=user, options={"dense_weight": 0}))]

    with Memory(str(tmp_path / "ref.db"), embedder=default_embedder) as lite:
        expected = [[(r.memory, r.event, r.kind) for r in getattr(lite, name)(*a, **kw).results]
                    for name, a, kw in _script(user)]  # fmt: skip
        table = next(r for r in lite.get_all(user_id=user).results if r.memory.startswith("Book"))
        expected.append(lite.update(table.id, "Book a table for Saturday").memory)
        expected.append(lite.delete(table.id).deleted)
        expected.append(lite.delete_all(user_id=user + "-other").deleted)
        expected = check(lite, expected)
        expected.append(sorted(r.memory for r in lite.get_all(user_id=user).results))

    for name in ("_threaded_add", "_threaded_update", "_threaded_delete", "_threaded_delete_all"):
        monkeypatch.setattr(AsyncMemory, name, no_thread)
    for name in ("add", "update", "delete", "delete_scope"):
        monkeypatch.setattr(PostgresStore, name, no_thread)

    async def main() -> list[Any]:
        async with AsyncMemory(postgres_url, embedder=default_embedder) as m:
            got = [[(r.memory, r.event, r.kind) for r in (await getattr(m, name)(*a, **kw)).results]
                   for name, a, kw in _script(user)]  # fmt: skip
            table = next(r for r in (await m.get_all(user_id=user)).results if r.memory.startswith("Book"))
            got.append((await m.update(table.id, "Book a table for Saturday")).memory)
            got.append((await m.delete(table.id)).deleted)
            got.append((await m.delete_all(user_id=user + "-other")).deleted)
            got = check(m.sync, got)
            got.append(sorted(r.memory for r in (await m.get_all(user_id=user)).results))
            assert [h.event for h in await m.history(table.id)] == ["ADD", "UPDATE", "DELETE"]
            with pytest.raises(NotFoundError):
                await m.delete(table.id)
            with pytest.raises(ValidationError):
                await m.add("", user_id=user)
            return got

    assert asyncio.run(main()) == expected


def test_a_slow_access_count_flush_never_holds_a_search(
    postgres_url: str, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush of buffered access counts runs beside the searches: one held up (as a bulk-loaded
    table's updates can be, for seconds) leaves every search answering, and lands at close."""
    import threading

    from engramdb.stores import semantics
    from engramdb.stores.postgres import writes

    release, started = threading.Event(), threading.Event()
    real = writes.touch

    async def held(conn: Any, pending: Any) -> None:
        started.set()
        assert release.wait(60)
        await real(conn, pending)

    monkeypatch.setattr(writes, "touch", held)
    monkeypatch.setattr(semantics, "TOUCH_FLUSH_S", 0.0)
    user = f"t{uuid.uuid4().hex[:8]}"
    with Memory(postgres_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        added = m.add("I keep bees on the roof", user_id=user).results[0].id
        m.search("bees", user_id=user)
        assert started.wait(30)  # the flush is running, and held
        for _ in range(5):
            assert m.search("bees", user_id=user).results[0].id == added
        release.set()
    monkeypatch.undo()
    with Memory(postgres_url, embedder=default_embedder) as m:
        assert m.get(added).access_count >= 6
