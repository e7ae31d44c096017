"""Every Memory method on a real SQLite file with the real bundled embedder."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engramdb import (
    AsyncMemory,
    ConfigurationError,
    EngramError,
    Event,
    Memory,
    MemoryConfig,
    NotFoundError,
    StoreError,
    ValidationError,
)
from engramdb.embedders import Embedder


def test_readme_example_recalls_the_diet_first(memory: Memory) -> None:
    memory.add("I'm vegetarian and allergic to peanuts", user_id="alice")
    memory.add(
        [
            {"role": "user", "name": "Alice", "content": "Book me a window seat"},
            {"role": "assistant", "content": "Done"},
        ],
        user_id="alice",
        session_id="trip-1",
    )
    hits = memory.search("is alice vegetarian?", user_id="alice", limit=5).results
    assert hits[0].memory == "I'm vegetarian and allergic to peanuts"
    assert all(0 <= h.score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert memory.search("what does alice drink?", user_id="alice").results == []  # never said
    # no word of it was said: below the default threshold, and threshold 0 still ranks the diet first
    assert memory.search("what can alice eat?", user_id="alice").results == []
    ranked = memory.search("what can alice eat?", user_id="alice", limit=5, threshold=0).results
    assert ranked[0].memory == "I'm vegetarian and allergic to peanuts"


def test_add_result_json_is_mem0_shaped(memory: Memory) -> None:
    result = json.loads(memory.add("I like tea", user_id="u").model_dump_json())
    assert "results" in result and set(result) <= {"results", "extraction"}
    assert {"id", "memory", "event"} <= set(result["results"][0])
    assert result["results"][0]["event"] == "ADD"


def test_messages_keep_speaker_role_and_timestamp(memory: Memory) -> None:
    when = datetime(2023, 5, 8, 13, 56, tzinfo=timezone.utc)
    result = memory.add(
        [
            {"role": "system", "content": "You are helpful"},
            {"role": "user", "name": "Alice", "content": "I ran a marathon", "timestamp": when, "id": "m1"},
            {"role": "assistant", "content": "Congratulations!"},
        ],
        user_id="alice",
        session_id="s1",
        metadata={"source": "chat"},
    )
    assert len(result.results) == 2  # the system message is not a memory
    item = memory.get(result.results[0].id)
    assert item.kind == "episode"
    assert item.provenance.role == "user" and item.provenance.name == "Alice"
    assert item.provenance.message_id == "m1" and item.provenance.session_id == "s1"
    assert item.occurred_at == when
    assert item.metadata == {"source": "chat"}
    assert item.hash and item.created_at == item.updated_at
    assert memory.get(result.results[1].id).provenance.role == "assistant"


@pytest.mark.parametrize("year", [30, 999, 9999])
def test_dates_of_any_year_round_trip_and_filter(memory: Memory, year: int) -> None:
    when = datetime(year, 5, 27, 0, 44, 39, tzinfo=timezone.utc)
    added = memory.add("An old note", user_id="u", occurred_at=when).results[0]
    assert memory.get(added.id).occurred_at == when
    hits = memory.search("old note", user_id="u", filters={"occurred_at": {"lte": when}}).results
    assert [h.id for h in hits] == [added.id]
    assert memory.search("old note", user_id="u", filters={"occurred_at": {"gt": when}}).results == []


def test_content_parts_are_joined(memory: Memory) -> None:
    parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    result = memory.add({"role": "user", "content": parts}, user_id="u")
    assert memory.get(result.results[0].id).memory == "first\nsecond"


def test_exact_duplicate_in_scope_is_noop_with_existing_id(memory: Memory) -> None:
    first = memory.add("I live in Paris", user_id="alice").results[0]
    again = memory.add("I live in Paris", user_id="alice").results[0]
    assert again.event == Event.NOOP and again.id == first.id
    other_scope = memory.add("I live in Paris", user_id="bob").results[0]
    assert other_scope.event == Event.ADD and other_scope.id != first.id
    assert memory.get_all(user_id="alice").total == 1


def test_scopes_do_not_leak(memory: Memory) -> None:
    memory.add("Alice's secret is the blue door", user_id="alice")
    memory.add("Bob likes the blue door too", user_id="bob")
    memory.add("agent note about the blue door", agent_id="planner")
    for user, expected in (("alice", "Alice"), ("bob", "Bob")):
        hits = memory.search("blue door", user_id=user).results
        assert len(hits) == 1 and hits[0].memory.startswith(expected)
    assert [h.agent_id for h in memory.search("blue door", agent_id="planner").results] == ["planner"]
    assert len(memory.search("blue door").results) == 3  # unscoped: the whole tenant


def test_session_scope_narrows_user_scope(memory: Memory) -> None:
    memory.add("packing list for Lisbon", user_id="alice", session_id="trip-1")
    memory.add("packing list for Oslo", user_id="alice", session_id="trip-2")
    assert len(memory.search("packing list", user_id="alice").results) == 2
    hits = memory.search("packing list", user_id="alice", session_id="trip-2").results
    assert [h.memory for h in hits] == ["packing list for Oslo"]


def test_tenants_are_isolated(memory: Memory) -> None:
    other = memory.for_tenant("acme")
    mine = memory.add("tenant default memory", user_id="u").results[0].id
    other.add("tenant acme memory", user_id="u")
    assert [h.memory for h in other.search("memory", user_id="u").results] == ["tenant acme memory"]
    with pytest.raises(NotFoundError):
        other.get(mine)
    with pytest.raises(NotFoundError):
        other.delete(mine)
    with pytest.raises(NotFoundError):
        other.update(mine, "hijacked")
    assert other.delete_all(user_id="u").deleted == 1
    assert memory.get(mine).memory == "tenant default memory"


def test_lexical_brings_what_dense_missed_and_explain_shows_it(memory: Memory) -> None:
    memory.add("my locker code is 4471-XQ", user_id="u")
    for i in range(30):
        memory.add(f"we talked about the weather on day {i}", user_id="u")
    hits = memory.search("4471-XQ", user_id="u", explain=True).results
    assert hits[0].memory == "my locker code is 4471-XQ"
    assert hits[0].explain is not None and hits[0].explain.lexical_rank == 1


def test_threshold_and_limit(memory: Memory) -> None:
    for text in ("apples are red", "bananas are yellow", "the sky is blue", "grass is green"):
        memory.add(text, user_id="u")
    assert len(memory.search("colours", user_id="u", limit=2, threshold=0).results) == 2  # 0: fill the limit
    hits = memory.search("bananas", user_id="u", threshold=0.9).results
    assert hits[0].memory == "bananas are yellow" and hits[0].relevance is not None and hits[0].relevance >= 0.9
    assert memory.search("what is the capital of Peru?", user_id="u").results == []  # never said: nothing
    assert memory.search("which fruit is yellow?", user_id="u", threshold=1.0).results == []  # nothing that sure


def test_recency_weighting_prefers_newer(memory: Memory) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=365)
    memory.add("I am training for a race", user_id="u", occurred_at=old)
    memory.add("I am training for the race", user_id="u")
    options = {"recency_weight": 1.0, "recency_half_life_days": 30}
    hits = memory.search("training race", user_id="u", options=options, explain=True).results
    assert hits[0].memory == "I am training for the race"
    assert hits[1].explain is not None and hits[1].explain.recency is not None and hits[1].explain.recency < 0.01


def test_get_all_paginates_with_cursor_and_total(memory: Memory) -> None:
    ids = [memory.add(f"note number {i}", user_id="u").results[0].id for i in range(25)]
    seen, cursor = [], None
    while True:
        page = memory.get_all(user_id="u", limit=10, cursor=cursor)
        assert page.total == 25
        seen.extend(item.id for item in page.results)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids  # creation order, nothing lost, nothing repeated
    assert [i.id for i in memory.iter_all(user_id="u")] == ids


def test_get_all_filters_by_kind_and_metadata(memory: Memory) -> None:
    memory.add("always greet in French", agent_id="bot", kind="procedure")
    memory.add("user likes jazz", user_id="u", kind="preference", metadata={"topic": "music", "score": 3})
    memory.add("user likes chess", user_id="u", kind="preference", metadata={"topic": "games", "score": 5})
    assert [i.memory for i in memory.get_all(kind="procedure").results] == ["always greet in French"]
    page = memory.get_all(user_id="u", filters={"metadata.score": {"gte": 4}})
    assert [i.memory for i in page.results] == ["user likes chess"] and page.total == 1
    hits = memory.search("likes", user_id="u", filters={"metadata.topic": "music"}).results
    assert [h.memory for h in hits] == ["user likes jazz"]


def test_update_reembeds_and_records_history(memory: Memory) -> None:
    memory_id = memory.add("I live in Paris", user_id="u", metadata={"v": 1}).results[0].id
    updated = memory.update(memory_id, "I live in Berlin", metadata={"v": 2})
    assert updated.memory == "I live in Berlin" and updated.metadata == {"v": 2}
    assert updated.updated_at >= updated.created_at
    assert memory.search("Berlin", user_id="u").results[0].id == memory_id
    assert memory.search("Paris", user_id="u", options={"dense_weight": 0}).results == []
    entries = memory.history(memory_id)
    assert [e.event for e in entries] == [Event.ADD, Event.UPDATE]
    assert entries[1].old_memory == "I live in Paris" and entries[1].new_memory == "I live in Berlin"
    assert entries[1].old_metadata == {"v": 1} and entries[1].new_metadata == {"v": 2}
    only_meta = memory.update(memory_id, metadata={"v": 3})
    assert only_meta.memory == "I live in Berlin" and only_meta.metadata == {"v": 3}


def test_update_to_a_duplicate_text_is_refused(memory: Memory) -> None:
    memory.add("one", user_id="u")
    second = memory.add("two", user_id="u").results[0].id
    with pytest.raises(ValidationError):
        memory.update(second, "one")
    assert memory.get(second).memory == "two"


def test_delete_and_delete_all_keep_history(memory: Memory) -> None:
    a = memory.add("first", user_id="u").results[0].id
    memory.add("second", user_id="u")
    memory.add("third", user_id="v")
    assert memory.delete(a).deleted == 1
    with pytest.raises(NotFoundError):
        memory.get(a)
    assert [e.event for e in memory.history(a)] == [Event.ADD, Event.DELETE]
    assert memory.search("first", user_id="u", options={"dense_weight": 0}).results == []
    assert memory.delete_all(user_id="u").deleted == 1
    assert memory.get_all(user_id="u").total == 0 and memory.get_all(user_id="v").total == 1


def test_reset_clears_tenant(memory: Memory) -> None:
    memory.add("something", user_id="u")
    memory.reset()
    assert memory.get_all().total == 0
    assert memory.stats().history_rows == 0


def test_expired_memories_are_not_recalled(memory: Memory) -> None:
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    memory.add("temporary door code 1234", user_id="u", expires_at=past)
    memory.add("permanent address 5 Elm Street", user_id="u")
    assert [i.memory for i in memory.get_all(user_id="u").results] == ["permanent address 5 Elm Street"]
    assert all("1234" not in h.memory for h in memory.search("door code", user_id="u").results)
    assert memory.get_all(user_id="u", include_inactive=True).total == 2


def test_export_import_roundtrip(memory: Memory, tmp_path: Path, default_embedder: Embedder) -> None:
    memory.add([{"role": "user", "name": "A", "content": "hello there"}], user_id="u", metadata={"k": [1, 2]})
    memory.add("general kenobi", agent_id="bot", kind="fact", importance=0.9)
    exported = list(memory.export())
    with Memory(f"sqlite:///{tmp_path / 'copy.db'}", embedder=default_embedder) as copy:
        result = copy.import_items([e.model_dump(mode="json") for e in exported])
        assert [r.event for r in result.results] == [Event.ADD, Event.ADD]
        assert [i.model_dump() for i in copy.export()] == [e.model_dump() for e in exported]
        again = copy.import_items([e.model_dump(mode="json") for e in exported])
        assert {r.event for r in again.results} == {Event.NOOP}
        assert copy.search("kenobi", agent_id="bot").results[0].memory == "general kenobi"


def test_stats(memory: Memory) -> None:
    memory.add("a fact", user_id="u", kind="fact")
    memory.add("an episode", user_id="v")
    stats = memory.stats()
    assert stats.memories == 2 and stats.by_kind == {"fact": 1, "episode": 1} and stats.scopes == 2
    assert stats.embedder == "model2vec:minilm-static" and stats.dimension == 256


def test_reopening_the_file_keeps_everything(db_path: Path, default_embedder: Embedder) -> None:
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as m:
        memory_id = m.add("persisted across opens", user_id="u").results[0].id
    with Memory(str(db_path), embedder=default_embedder) as m:
        assert m.get(memory_id).memory == "persisted across opens"
        assert m.search("persisted", user_id="u").results[0].id == memory_id


def test_store_refuses_another_embedder(db_path: Path, default_embedder: Embedder) -> None:
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as m:
        m.add("x", user_id="u")
    with pytest.raises(ConfigurationError, match="minilm-static"):
        Memory(f"sqlite:///{db_path}", embedder="hash:64")


def test_unknown_embedder_and_store_url_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        Memory(":memory:", embedder="nope:model")
    with pytest.raises(ConfigurationError):
        Memory("mysql://localhost/db", embedder="hash:32")


def test_closed_memory_raises_store_error(db_path: Path) -> None:
    m = Memory(str(db_path), embedder="hash:32")
    m.close()
    with pytest.raises(StoreError):
        m.get_all()


def test_in_memory_store_and_context_manager() -> None:
    with Memory(":memory:", embedder="hash:32") as m:
        m.add("volatile", user_id="u")
        assert m.get_all(user_id="u").total == 1


def test_async_memory_has_the_same_api(db_path: Path, default_embedder: Embedder) -> None:
    async def scenario() -> None:
        async with AsyncMemory(f"sqlite:///{db_path}", embedder=default_embedder) as m:
            added = await m.add("async hello", user_id="u")
            memory_id = added.results[0].id
            results = await asyncio.gather(*(m.search("hello", user_id="u") for _ in range(5)))
            assert all(r.results[0].id == memory_id for r in results)
            assert (await m.get(memory_id)).memory == "async hello"
            assert (await m.update(memory_id, "async hi")).memory == "async hi"
            assert len(await m.history(memory_id)) == 2
            assert (await m.get_all(user_id="u")).total == 1
            await m.delete(memory_id)
            with pytest.raises(NotFoundError):
                await m.get(memory_id)

    asyncio.run(scenario())


BAD_ADDS = [
    ({"messages": "", "user_id": "u"}, "empty"),
    ({"messages": "   ", "user_id": "u"}, "empty"),
    ({"messages": "hi"}, "at least one of"),
    ({"messages": "hi", "user_id": ""}, "non-blank"),
    ({"messages": "hi", "user_id": 5}, "must be a string"),
    ({"messages": [], "user_id": "u"}, "empty"),
    ({"messages": 42, "user_id": "u"}, "messages must be"),
    ({"messages": [{"role": "robot", "content": "x"}], "user_id": "u"}, "role"),
    ({"messages": [{"content": None}], "user_id": "u"}, "content"),
    ({"messages": [{"role": "user", "content": "x", "extra": 1}], "user_id": "u"}, "extra"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}], "user_id": "u"}, "text content"),
    ({"messages": "x" * 32_001, "user_id": "u"}, "limit"),
    ({"messages": "nul\x00byte", "user_id": "u"}, "NUL"),
    ({"messages": "hi", "user_id": "u", "kind": "rumour"}, "unknown kind"),
    ({"messages": "hi", "user_id": "u", "metadata": ["not", "a", "dict"]}, "JSON object"),
    ({"messages": "hi", "user_id": "u", "metadata": {"x": float("nan")}}, "JSON"),
    ({"messages": "hi", "user_id": "u", "metadata": {"x": object()}}, "JSON"),
    ({"messages": "hi", "user_id": "u", "importance": 2}, "importance"),
    ({"messages": "hi", "user_id": "u", "occurred_at": "yesterday-ish"}, "ISO"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ADDS)
def test_bad_add_raises_validation_error_and_writes_nothing(memory: Memory, kwargs: dict, message: str) -> None:
    memory.add("existing", user_id="u")
    before = memory.stats()
    with pytest.raises(ValidationError, match=message):
        memory.add(**kwargs)
    assert memory.stats() == before


def test_a_bad_message_in_a_batch_writes_none_of_it(memory: Memory) -> None:
    with pytest.raises(ValidationError, match="message 1"):
        memory.add([{"role": "user", "content": "fine"}, {"role": "user", "content": ""}], user_id="u")
    assert memory.get_all().total == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.search("", user_id="u"), "empty"),
        (lambda m: m.search("q", limit=0), "limit"),
        (lambda m: m.search("q", limit=True), "limit"),
        (lambda m: m.search("q", threshold=1.5), "threshold"),
        (lambda m: m.search("q", filters={"colour": "red"}), "unknown filter field"),
        (lambda m: m.search("q", filters={"kind": {"like": "f%"}}), "unknown filter operator"),
        (lambda m: m.search("q", options={"candidates": 0}), "search options"),
        (lambda m: m.search("q", options={"fusion": "magic"}), "search options"),
        (lambda m: m.get_all(limit=5000), "limit"),
        (lambda m: m.get_all(cursor="garbage"), "cursor"),
        (lambda m: m.get_all(kind="rumour"), "unknown kind"),
        (lambda m: m.get(""), "memory_id"),
        (lambda m: m.get(None), "memory_id"),
        (lambda m: m.update("x"), "needs"),
        (lambda m: m.update("x", ""), "empty"),
        (lambda m: m.delete_all(), "at least one"),
    ],
)
def test_bad_reads_raise_validation_error(memory: Memory, call, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        call(memory)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.get("01NOPE"),
        lambda m: m.delete("01NOPE"),
        lambda m: m.history("01NOPE"),
        lambda m: m.update("01NOPE", "x"),
        lambda m: m.update("01NOPE", metadata={}),
    ],
)
def test_unknown_ids_raise_not_found(memory: Memory, call) -> None:
    with pytest.raises(NotFoundError):
        call(memory)


def test_every_error_is_an_engram_error() -> None:
    for cls in (ValidationError, NotFoundError, ConfigurationError, StoreError):
        assert issubclass(cls, EngramError)


def test_config_limits_apply(tmp_path: Path) -> None:
    config = MemoryConfig(store=str(tmp_path / "c.db"), embedder="hash:32", max_text_chars=10, max_batch=2)
    with Memory(config=config) as m:
        with pytest.raises(ValidationError, match="limit is 10"):
            m.add("x" * 11, user_id="u")
        with pytest.raises(ValidationError, match="limit is 2"):
            m.add(["a", "b", "c"], user_id="u")


@pytest.mark.parametrize(("context_turns", "found"), [(2, True), (1, True), (0, False)])
def test_a_reply_is_indexed_with_the_turn_it_answers(
    tmp_path: Path, default_embedder: Embedder, context_turns: int, found: bool
) -> None:
    config = MemoryConfig(store=str(tmp_path / "ctx.db"), context_turns=context_turns)
    with Memory(config=config, embedder=default_embedder) as m:
        m.add(
            [{"role": "assistant", "content": "Where did you go on holiday?"},
             {"role": "user", "content": "Lisbon, with my sister"}],
            user_id="u",
        )  # fmt: skip
        m.add("Buy milk tomorrow", user_id="u")
        hits = m.search("holiday", user_id="u", options={"dense_weight": 0}).results
        assert ("Lisbon, with my sister" in [h.memory for h in hits]) is found
        assert m.get_all(user_id="u").results[1].memory == "Lisbon, with my sister"  # stored verbatim


def test_a_long_turn_stands_alone_and_a_short_reply_takes_the_end_of_it(
    tmp_path: Path, default_embedder: Embedder
) -> None:
    """``context_words``: a message's own words count first, so a long answer is indexed
    without the question before it, and a short follow-up takes the answer's last words."""
    filler = " ".join(f"point{i}" for i in range(40))
    answer = f"Here is a long plan about gardening. {filler} Water the tomatoes every evening."
    config = MemoryConfig(store=str(tmp_path / "words.db"), context_words=30)
    with Memory(config=config, embedder=default_embedder) as m:
        m.add(
            [{"role": "user", "content": "What about my bicycle?"}, {"role": "assistant", "content": answer},
             {"role": "user", "content": "Thanks, will do"}],
            user_id="u", session_id="s", infer=False,
        )  # fmt: skip
        lexical = {"dense_weight": 0}
        assert answer not in [h.memory for h in m.search("bicycle", user_id="u", options=lexical).results]
        assert "Thanks, will do" in [h.memory for h in m.search("tomatoes", user_id="u", options=lexical).results]
        assert "Thanks, will do" not in [h.memory for h in m.search("gardening", user_id="u", options=lexical).results]


def test_a_name_in_the_query_prefers_that_speakers_matching_turn(memory: Memory) -> None:
    for name, text in [("Bob", "I went hiking in the Alps"), ("Carol", "I went hiking in Norway"),
                       ("Carol", "My cat is called Pixel")]:  # fmt: skip
        memory.add([{"role": "user", "name": name, "content": text}], user_id="group")
    lexical_only = {"dense_weight": 0}
    hits = memory.search("where did Carol go hiking?", user_id="group", options=lexical_only).results
    assert hits[0].memory == "I went hiking in Norway"
    assert "My cat is called Pixel" not in [h.memory for h in hits]  # a speaker match alone is no match
    hits = memory.search("where did Bob go hiking?", user_id="group", options=lexical_only).results
    assert hits[0].memory == "I went hiking in the Alps"


@pytest.mark.parametrize("turn_by_turn", [True, False])
def test_context_turns_reach_back_across_adds_in_a_session(memory: Memory, turn_by_turn: bool) -> None:
    turns = [
        {"role": "user", "name": "Ana", "content": "We finally adopted a rescue greyhound"},
        {"role": "user", "name": "Ben", "content": "Lovely! What did you call him?"},
        {"role": "user", "name": "Ana", "content": "Biscuit, after his colour"},
    ]
    for batch in ([t] for t in turns) if turn_by_turn else [turns]:
        memory.add(batch, user_id="u", session_id="s1")
    memory.add("Biscuit recipes need butter", user_id="u", session_id="s2")  # another session: no context
    hits = memory.search("greyhound", user_id="u", options={"dense_weight": 0}).results
    assert {h.memory for h in hits} == {t["content"] for t in turns}  # two turns back, in the same session only


def test_a_named_speaker_outranks_a_turn_that_only_addresses_them(memory: Memory) -> None:
    memory.add(
        [{"role": "user", "name": "Dana", "content": "Eli, how was the pottery class with your sister?"},
         {"role": "user", "name": "Eli", "content": "Wonderful, we made two bowls at the pottery class"}],
        user_id="pair",
        session_id="s1",
    )  # fmt: skip
    memory.add("Remember the pottery class fee", user_id="pair")  # no speaker's name: nobody else's
    hits = memory.search("what did Eli make at the pottery class?", user_id="pair", explain=True).results
    by_text = {h.memory: h for h in hits}
    assert hits[0].memory.startswith("Wonderful")
    asked = by_text["Eli, how was the pottery class with your sister?"]
    assert asked.explain is not None and asked.explain.speaker == 0.5
    assert by_text["Remember the pottery class fee"].explain.speaker == 1.0  # type: ignore[union-attr]
    assert all(0 <= h.score <= 1 for h in hits)
    unweighted = memory.search("what did Eli make at the pottery class?", user_id="pair", explain=True,
                               options={"speaker_weight": 0}).results  # fmt: skip
    assert {h.explain.speaker for h in unweighted} == {1.0}  # type: ignore[union-attr]
    neutral = memory.search("pottery class", user_id="pair", explain=True).results  # names nobody
    assert {h.explain.speaker for h in neutral} == {1.0}  # type: ignore[union-attr]
