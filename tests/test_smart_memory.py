"""Derived memories without an LLM: supersession, duplicates, retraction, forgetting a user."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from engramdb import Event, Memory, MemoryState


def alice(memory: Memory, text: str, **kwargs):  # type: ignore[no-untyped-def]
    return memory.add([{"role": "user", "name": "Alice", "content": text}], user_id="alice", **kwargs)


def derived(result):  # type: ignore[no-untyped-def]
    return [r for r in result.results if r.kind != "episode"]


def test_a_move_supersedes_the_old_residence(smart: Memory) -> None:
    paris = derived(alice(smart, "I live in Paris"))[0]
    assert (paris.memory, paris.event) == ("Alice lives in Paris", Event.ADD)
    berlin = derived(alice(smart, "I moved to Berlin"))[0]
    assert (berlin.memory, berlin.event, berlin.previous_id) == ("Alice lives in Berlin", Event.UPDATE, paris.id)

    facts = smart.search("where does Alice live?", user_id="alice", filters={"kind": "fact"}).results
    assert [f.memory for f in facts] == ["Alice lives in Berlin"]
    old = smart.get(paris.id)
    assert old.state is MemoryState.SUPERSEDED and old.superseded_by == berlin.id
    assert old.valid_to is not None and old.valid_to == smart.get(berlin.id).valid_from
    assert [(h.event, h.new_memory) for h in smart.history(paris.id)][-1] == (Event.UPDATE, "Alice lives in Berlin")
    with_history = smart.search("Alice lives", user_id="alice", filters={"kind": "fact"}, include_invalid=True)
    assert {h.memory for h in with_history.results} == {"Alice lives in Paris", "Alice lives in Berlin"}
    assert smart.get_all(user_id="alice", filters={"slot": "residence"}).total == 1


def test_a_repeated_fact_is_a_noop_and_values_of_a_list_accumulate(smart: Memory) -> None:
    first = derived(alice(smart, "I'm allergic to peanuts"))[0]
    again = derived(alice(smart, "I am allergic to peanuts."))
    assert [(r.event, r.id) for r in again] == [(Event.NOOP, first.id)]
    alice(smart, "I'm allergic to shellfish")
    facts = smart.get_all(user_id="alice", filters={"kind": "fact"}).results
    assert sorted(f.memory for f in facts) == ["Alice is allergic to peanuts", "Alice is allergic to shellfish"]


def test_a_retraction_invalidates_without_replacing(smart: Memory) -> None:
    fact = derived(alice(smart, "I'm allergic to cats"))[0]
    result = derived(alice(smart, "I'm no longer allergic to cats"))
    assert [(r.event, r.id) for r in result] == [(Event.INVALIDATE, fact.id)]
    assert smart.get(fact.id).state is MemoryState.INVALIDATED
    assert smart.get_all(user_id="alice", filters={"kind": "fact"}).total == 0
    nothing = derived(alice(smart, "I no longer live in Rome"))
    assert nothing == []  # nothing to retract: nothing happens


def test_people_are_kept_apart(smart: Memory) -> None:
    smart.add([{"role": "user", "name": "Bob", "content": "I live in Rome"}], user_id="alice")
    alice(smart, "I live in Oslo")
    facts = smart.get_all(user_id="alice", filters={"slot": "residence"}).results
    assert sorted(f.memory for f in facts) == ["Alice lives in Oslo", "Bob lives in Rome"]


def test_deleting_the_source_message_invalidates_what_came_only_from_it(smart: Memory) -> None:
    result = alice(smart, "I'm vegetarian")
    episode, fact = result.results
    assert fact.sources == [episode.id] and smart.get(fact.id).sources == [episode.id]
    smart.delete(episode.id)
    gone = smart.get(fact.id)
    assert gone.state is MemoryState.INVALIDATED
    assert smart.history(fact.id)[-1].reason == "its source was deleted"


def test_a_fact_backed_by_two_messages_survives_losing_one(smart: Memory) -> None:
    first = alice(smart, "I'm vegetarian")
    second = alice(smart, "I'm vegetarian, as I said")
    fact_id = derived(first)[0].id
    assert derived(second)[0].event is Event.NOOP
    smart.delete(second.results[0].id)
    assert smart.get(fact_id).state is MemoryState.ACTIVE


def test_infer_false_and_explicit_kinds_store_only_what_is_given(smart: Memory) -> None:
    raw = alice(smart, "I live in Paris", infer=False)
    assert [r.kind for r in raw.results] == ["episode"] and raw.extraction.state == "skipped"
    given = smart.add("Alice lives in Paris", user_id="alice", kind="fact")
    assert [r.kind for r in given.results] == ["fact"]


def test_procedures_are_distilled_from_instructions(smart: Memory) -> None:
    smart.add("Please always answer in French. I live in Paris.", agent_id="bot", kind="procedure")
    procedures = smart.get_all(agent_id="bot", kind="procedure").results
    assert [p.memory for p in procedures] == ["Always answer in French"]


def _count(store_url: str, sql: str) -> int:
    if store_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(store_url[len("sqlite:///") :])) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(store_url) as pg:
        row = pg.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


def test_hard_delete_leaves_no_trace_of_the_user(store_url: str, db_path: Path, smart: Memory) -> None:
    secret = "I live in Zzyzxville"
    alice(smart, secret)
    smart.add("I live in Oslo", user_id="bob")
    smart.search("where", user_id="alice")
    deleted = smart.delete_all(user_id="alice", hard=True)
    assert deleted.deleted == 2
    for table in ("memories", "history", "jobs"):
        assert _count(store_url, f"SELECT count(*) FROM {table} WHERE user_id = 'alice'") == 0
    assert _count(store_url, "SELECT count(*) FROM memory_sources") == 1  # Bob's
    assert smart.search("Oslo", user_id="bob").results
    if not store_url.startswith("sqlite:///"):
        return  # PostgreSQL reclaims dead tuples by VACUUM; the bytes of a file are SQLite's to check
    for path in db_path.parent.iterdir():
        data = path.read_bytes().lower()
        assert b"zzyzxvill" not in data, path.name  # the text, and its stem


def test_consolidate_merges_near_duplicates_and_keeps_the_originals(smart: Memory) -> None:
    ids = [smart.add(t, user_id="u", kind="fact").results[0].id for t in (
        "Alice is allergic to peanuts", "alice is allergic to peanuts!", "Alice is allergic to peanuts and cashews",
        "Alice lives in Paris", "Alice lives in Berlin")]  # fmt: skip
    result = smart.consolidate(user_id="u")
    assert result.examined == 5 and len(result.merged) == 1
    group = result.merged[0]
    assert group.survivor == ids[2] and group.merged_from == sorted(ids[:2])
    assert smart.get(ids[2]).merged_from == sorted(ids[:2])
    assert {smart.get(i).state for i in ids[:2]} == {MemoryState.SUPERSEDED}
    assert smart.get(ids[0]).superseded_by == ids[2]
    assert sorted(m.memory for m in smart.get_all(user_id="u").results) == [
        "Alice is allergic to peanuts and cashews", "Alice lives in Berlin", "Alice lives in Paris"]  # fmt: skip
    assert smart.consolidate(user_id="u").merged == []


def test_prune_forgets_by_expiry_capacity_and_retention(smart: Memory) -> None:
    from datetime import timedelta

    from engramdb.models import utcnow

    soon = utcnow() + timedelta(milliseconds=50)
    expiring = smart.add("a one-off code 4711", user_id="u", kind="fact", expires_at=soon).results[0].id
    keep = smart.add("Alice's passport number matters", user_id="u", kind="fact", importance=1.0).results[0].id
    low = [smart.add(f"trivia number {i}", user_id="u", kind="fact", importance=0.0).results[0].id for i in range(3)]
    import time

    time.sleep(0.1)
    result = smart.prune(user_id="u", policy={"max_memories": 2})
    assert result.forgotten[expiring] == "expired"
    assert keep not in result.forgotten
    assert sum(1 for i in low if i in result.forgotten) == 2
    assert smart.get(expiring).state is MemoryState.FORGOTTEN
    assert smart.history(expiring)[-1].reason == "expired"
    assert smart.get_all(user_id="u").total == 2

    hard = smart.prune(user_id="u", policy={"min_retention": 0.7}, hard=True)
    assert keep not in hard.forgotten and len(hard.forgotten) == 1
    gone = next(iter(hard.forgotten))
    import pytest

    from engramdb import NotFoundError

    with pytest.raises(NotFoundError):
        smart.history(gone)


def test_a_bad_prune_policy_is_a_validation_error(smart: Memory) -> None:
    import pytest

    from engramdb import ValidationError

    with pytest.raises(ValidationError, match="prune policy"):
        smart.prune(user_id="u", policy={"max_memories": -1})
    with pytest.raises(ValidationError, match="prune policy"):
        smart.prune(user_id="u", policy={"ttl": 3})
