"""A conversation over several months: as-of answers, time expressions, supersession, the context block."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engramdb import Memory, ValidationError
from engramdb.context import token_counter

SESSIONS = [
    ("s1", datetime(2024, 1, 10, 9, tzinfo=timezone.utc), [
        ("Alice", "I live in Paris"), ("assistant", "Nice! Paris in winter is lovely."),
        ("Alice", "I love jazz, especially on Friday nights")]),
    ("s2", datetime(2024, 3, 5, 18, tzinfo=timezone.utc), [
        ("Alice", "I'm training for a marathon"), ("Alice", "My daughter's name is Emma"),
        ("assistant", "Good luck with the training!")]),
    ("s3", datetime(2024, 5, 20, 12, tzinfo=timezone.utc), [
        ("Alice", "I moved to Berlin"), ("assistant", "How is the new flat?"),
        ("Alice", "Small but it has a balcony for my tomato plants")]),
    ("s4", datetime(2024, 6, 10, 8, tzinfo=timezone.utc), [
        ("Alice", "The marathon is on June 30 in Stockholm"), ("assistant", "Only three weeks to go then"),
        ("Alice", "Emma will come and cheer")]),
]  # fmt: skip
TODAY = datetime(2024, 6, 15, tzinfo=timezone.utc)


@pytest.fixture
def months(smart: Memory) -> Memory:
    for session, when, turns in SESSIONS:
        messages = [
            {"role": "assistant", "content": text, "timestamp": when} if who == "assistant"
            else {"role": "user", "name": who, "content": text, "timestamp": when}
            for who, text in turns
        ]  # fmt: skip
        smart.add(messages, user_id="alice", session_id=session)
    return smart


def residence(memory: Memory, **kwargs: object) -> list[str]:
    hits = memory.search("where does Alice live?", user_id="alice", filters={"slot": "residence"}, **kwargs)
    return [h.memory for h in hits.results]


def test_as_of_answers_as_things_were(months: Memory) -> None:
    assert residence(months) == ["Alice lives in Berlin"]
    assert residence(months, as_of=datetime(2024, 2, 1, tzinfo=timezone.utc)) == ["Alice lives in Paris"]
    assert residence(months, as_of="2024-05-21T00:00:00Z") == ["Alice lives in Berlin"]
    assert residence(months, as_of="2023-12-01T00:00:00Z") == []
    assert sorted(residence(months, include_invalid=True)) == ["Alice lives in Berlin", "Alice lives in Paris"]


def test_time_expressions_favour_what_happened_then(months: Memory) -> None:
    hits = months.search("what did Alice tell me last month?", user_id="alice", reference_date=TODAY, limit=3)
    assert {h.occurred_at.month for h in hits.results} == {5}  # type: ignore[union-attr]
    march = months.search("what happened in March 2024?", user_id="alice", limit=2, reference_date=TODAY)
    assert all(h.occurred_at and h.occurred_at.month == 3 for h in march.results)
    before = months.search("where did Alice live before May?", user_id="alice", filters={"kind": "fact"},
                           include_invalid=True, reference_date=TODAY, limit=1)  # fmt: skip
    assert [h.memory for h in before.results] == ["Alice lives in Paris"]
    plain = months.search("marathon", user_id="alice", limit=10)
    assert all(h.occurred_at is not None for h in plain.results)  # results carry their dates


def test_an_explicit_time_range_filters(months: Memory) -> None:
    hits = months.search("Alice", user_id="alice", time_range=("2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"))
    assert hits.results and {h.occurred_at.month for h in hits.results if h.occurred_at} == {3}
    assert all(h.occurred_at for h in hits.results)
    with pytest.raises(ValidationError, match="time_range"):
        months.search("Alice", user_id="alice", time_range=("2024-04-01T00:00:00Z", "2024-03-01T00:00:00Z"))


@pytest.mark.parametrize("budget", [20, 60, 150, 400, 1500])
def test_the_context_block_stays_within_budget_and_cites_memories(months: Memory, budget: int) -> None:
    context = months.context("when is the marathon?", user_id="alice", session_id="s4", max_tokens=budget)
    count = token_counter("o200k_base")
    assert context.tokens == count(context.text) <= budget
    for item in context.items:
        assert f"[{item.ref}]" in context.text
        assert months.get(item.id).memory == item.memory  # every citation resolves
    assert len({i.memory.casefold() for i in context.items}) == len(context.items)  # no repeats
    if budget >= 400:
        sections = {i.section for i in context.items}
        assert sections == {"profile", "relevant", "recent"}
        assert "Alice lives in Berlin" in context.text and "Alice lives in Paris" not in context.text
        assert "2024-03-05 Alice is training for a marathon" in context.text  # relevant, with its date
        assert "I'm training for a marathon" not in context.text  # the message the fact came from
        assert "Stockholm" in context.text
        recent = [i.memory for i in context.items if i.section == "recent"]
        assert recent == [t for _, t in SESSIONS[3][2]]  # the session's turns, in order


def test_context_counts_with_the_chosen_encoding_and_checks_its_input(months: Memory) -> None:
    small = months.context("marathon", user_id="alice", max_tokens=50, encoding="cl100k_base")
    assert small.encoding == "cl100k_base" and token_counter("cl100k_base")(small.text) <= 50
    with pytest.raises(ValidationError, match="encoding"):
        months.context("marathon", user_id="alice", encoding="nope")
    with pytest.raises(ValidationError, match="max_tokens"):
        months.context("marathon", user_id="alice", max_tokens=0)
    with pytest.raises(ValidationError, match="at least one of"):
        months.context("marathon")


def test_working_memory_by_count_and_tokens(months: Memory) -> None:
    turns = months.recent_turns(session_id="s3", user_id="alice", limit=2)
    assert [t.memory for t in turns] == ["How is the new flat?", "Small but it has a balcony for my tomato plants"]
    few = months.recent_turns(session_id="s3", user_id="alice", max_tokens=12)
    assert [t.memory for t in few] == ["Small but it has a balcony for my tomato plants"]


def test_sessions_are_episodes_with_summaries_that_expand(months: Memory) -> None:
    sessions = months.sessions(user_id="alice")
    assert [s.session_id for s in sessions] == ["s1", "s2", "s3", "s4"]
    first = sessions[0]
    assert first.turns == 3 and first.participants == ["Alice", "assistant"] and first.summary is None
    assert first.start == SESSIONS[0][1]
    summary = months.summarize_session("s4", user_id="alice", sentences=2)
    assert summary.kind == "episode" and summary.metadata == {"summary_of": "s4"}
    assert sum(text in summary.memory for _, text in SESSIONS[3][2]) == 2  # two turns, extractive
    assert [t.memory for t in months.expand(summary.id)] == [t for _, t in SESSIONS[3][2]]
    assert months.sessions(user_id="alice")[3].summary_id == summary.id
    again = months.summarize_session("s4", user_id="alice", sentences=3)
    assert again.id != summary.id and months.get(summary.id).superseded_by == again.id
    hits = months.search("marathon in Stockholm", user_id="alice", filters={"metadata.summary_of": {"exists": True}})
    assert [h.id for h in hits.results] == [again.id]
