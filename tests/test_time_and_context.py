"""A conversation over several months: as-of answers, time expressions, supersession, the context block."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engramdb import Memory, SearchOptions, ValidationError
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


def test_the_context_block_recalls_nothing_never_said(months: Memory) -> None:
    """The relevant section follows search's threshold: nothing for a question about what was never said."""
    unsaid = months.context("which chess openings does Alice study?", user_id="alice", max_tokens=400)
    assert not [i for i in unsaid.items if i.section == "relevant"]
    assert [i for i in unsaid.items if i.section == "profile"]  # what holds of her is still shown
    said = months.context("where does Alice live?", user_id="alice", max_tokens=400)
    assert "Alice lives in Berlin" in [i.memory for i in said.items if i.section == "relevant"]
    filled = months.with_config(search=SearchOptions(threshold=0))  # 0: the old fill-the-limit block
    assert [i for i in filled.context("which chess openings does Alice study?", user_id="alice").items
            if i.section == "relevant"]  # fmt: skip


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
    for bad in (0, 101, "2", True):
        with pytest.raises(ValidationError, match="sentences"):
            months.summarize_session("s4", user_id="alice", sentences=bad)  # type: ignore[arg-type]
    assert months.sessions(user_id="alice")[3].summary_id == summary.id  # nothing replaced it
    again = months.summarize_session("s4", user_id="alice", sentences=3)
    assert again.id != summary.id and months.get(summary.id).superseded_by == again.id
    hits = months.search("marathon in Stockholm", user_id="alice", filters={"metadata.summary_of": {"exists": True}})
    assert [h.id for h in hits.results] == [again.id]
    history = months.get_all(user_id="alice", kind="episode")  # the turns and the current summary, no facts
    assert {h.kind for h in history.results} == {"episode"} and history.total == 12 + 1
    assert [h.memory for h in history.results][:3] == [t for _, t in SESSIONS[0][2]]


REF = datetime(2023, 11, 16, 12, tzinfo=timezone.utc)  # a Thursday


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=timezone.utc)


@pytest.mark.parametrize(("query", "start", "end"), [
    ("where was he between August 11 and August 15 2023?", day(2023, 8, 11), day(2023, 8, 16)),
    ("where was she the week before 16 November 2023?", day(2023, 11, 9), day(2023, 11, 16)),
    ("what did he do the week after May 3, 2023?", day(2023, 5, 4), day(2023, 5, 11)),
    ("where was she in the second week of November?", day(2023, 11, 8), day(2023, 11, 15)),
    ("what happened in the last week of October 2023?", day(2023, 10, 25), day(2023, 11, 1)),
    ("which race did he win at the beginning of November 2022?", day(2022, 11, 1), day(2022, 11, 11)),
    ("what changed in late 2022?", day(2022, 9, 1), day(2023, 1, 1)),
    ("what did we talk about on August 11?", day(2023, 8, 11), day(2023, 8, 12)),
    ("what did I do last Friday?", day(2023, 11, 10), day(2023, 11, 11)),
    ("what are my plans for this weekend?", day(2023, 11, 18), day(2023, 11, 20)),
    ("what is happening tomorrow?", day(2023, 11, 17), day(2023, 11, 18)),
    ("what did I read in May?", day(2023, 5, 1), day(2023, 6, 1)),
    ("who did I meet on the 3rd?", day(2023, 11, 3), day(2023, 11, 4)),  # of this month: not March
    ("who did I meet on the 20th?", day(2023, 10, 20), day(2023, 10, 21)),  # still to come: last month's
    ("what did she do last summer?", day(2023, 6, 1), day(2023, 9, 1)),
    ("where did he go in the summer of 2022?", day(2022, 6, 1), day(2022, 9, 1)),
    ("what are we doing this winter?", day(2023, 12, 1), day(2024, 3, 1)),
    ("what did we do in the spring?", day(2023, 3, 1), day(2023, 6, 1)),
    ("what did I buy last August?", day(2023, 8, 1), day(2023, 9, 1)),
    ("what happened last November?", day(2022, 11, 1), day(2022, 12, 1)),  # said in November: the one before
    ("where are we going next May?", day(2024, 5, 1), day(2024, 6, 1)),
    ("who did I see last Tues?", day(2023, 11, 14), day(2023, 11, 15)),
    ("what did he cook last Fri.?", day(2023, 11, 10), day(2023, 11, 11)),
    ("what happened two weekends ago?", day(2023, 11, 4), day(2023, 11, 6)),
    ("what did I eat this morning?", day(2023, 11, 16), day(2023, 11, 17)),
    ("what is on in two weeks?", day(2023, 11, 27), day(2023, 12, 4)),
    ("what is happening a week from now?", day(2023, 11, 20), day(2023, 11, 27)),
    ("who is visiting in a few days?", day(2023, 11, 19), day(2023, 11, 20)),
    ("what are we doing the day after tomorrow?", day(2023, 11, 18), day(2023, 11, 19)),
    ("what did we do over the weekend?", day(2023, 11, 11), day(2023, 11, 13)),
    ("what did we do this past weekend?", day(2023, 11, 11), day(2023, 11, 13)),
    ("what have I read in the past two weeks?", day(2023, 11, 2), day(2023, 11, 17)),
    ("what did I spend over the past month?", day(2023, 10, 16), day(2023, 11, 17)),
    ("what happened the previous week?", day(2023, 11, 6), day(2023, 11, 13)),
    ("where were we the week before last?", day(2023, 10, 30), day(2023, 11, 6)),
    ("what did we do the weekend before last?", day(2023, 11, 4), day(2023, 11, 6)),
    ("what do I have on Saturday?", day(2023, 11, 18), day(2023, 11, 19)),  # what is to come: the coming one
    ("what did I do on Saturday?", day(2023, 11, 11), day(2023, 11, 12)),  # otherwise the last one
    ("what is happening on November 22?", day(2023, 11, 22), day(2023, 11, 23)),  # a day without a year: the
    ("what did we do on the 3rd of May?", day(2023, 5, 3), day(2023, 5, 4)),  # nearest, the past preferred
])  # fmt: skip
def test_time_expressions_resolve_to_their_period(query: str, start: datetime, end: datetime) -> None:
    from engramdb.retrieval.temporal import find_time_range

    found = find_time_range(query, REF)
    assert found is not None and (found.start, found.end) == (start, end), found


def test_a_weekday_to_come_or_gone_in_a_memory() -> None:
    from engramdb.retrieval.temporal import TimeRange, tells_of

    tuesday = day(2024, 10, 1)
    coming, last = TimeRange(day(2024, 10, 4), day(2024, 10, 5)), TimeRange(day(2024, 9, 27), day(2024, 9, 28))
    assert tells_of("See you on Friday!", tuesday, coming) and not tells_of("See you on Friday!", tuesday, last)
    assert tells_of("I won it on Friday!", tuesday, last) and not tells_of("I won it on Friday!", tuesday, coming)


@pytest.mark.parametrize("query", ["what did she do recently?", "what has he been up to lately?", "this may be it"])
def test_vague_or_no_times_confine_nothing(query: str) -> None:
    from engramdb.retrieval.temporal import find_time_range

    assert find_time_range(query, REF) is None


def say(memory: Memory, name: str, said: list[tuple[datetime, str]]) -> None:
    """``name``'s dated messages, each its own add, in the user scope ``name.lower()``."""
    for when, text in said:
        memory.add([{"role": "user", "name": name, "content": text, "timestamp": when}], user_id=name.lower())


def test_a_season_in_a_query_favours_that_season(memory: Memory) -> None:
    say(memory, "Ana", [
        (day(2023, 7, 20), "We hiked across the Alps, three huts in a week"),
        (day(2023, 1, 15), "We went skiing in the Alps with the kids"),
        (day(2022, 7, 10), "We sailed along the coast, no Alps this time"),
    ])  # fmt: skip
    hits = memory.search("What did Ana do in the Alps last summer?", user_id="ana", reference_date=day(2023, 10, 2))
    assert hits.results[0].memory.startswith("We hiked across the Alps")
    before = memory.search("the Alps in the summer of 2022", user_id="ana", reference_date=day(2023, 10, 2))
    assert before.results[0].memory.startswith("We sailed along the coast")


def test_a_time_told_later_counts_as_that_time(memory: Memory) -> None:
    """Said on May 2, "last night" is May 1: a question about May 1 finds it first."""
    say(memory, "Jo", [
        (day(2023, 5, 2), "I watched The Lord of the Rings trilogy last night, what a ride"),
        (day(2023, 5, 9), "We watched a movie at the cinema, then watched the movie's sequel at home"),
        (day(2023, 4, 30), "My brother watched a movie about whales"),
    ])  # fmt: skip
    hits = memory.search("What movie did Jo watch on 1 May, 2023?", user_id="jo", reference_date=day(2023, 6, 1))
    assert hits.results[0].memory.startswith("I watched The Lord of the Rings")
    later = memory.search("What movie did Jo watch on 9 May, 2023?", user_id="jo", reference_date=day(2023, 6, 1))
    assert later.results[0].memory.startswith("We watched a movie at the cinema")


def test_days_are_the_reference_dates_own(memory: Memory) -> None:
    """Asked at 8 pm in California (04:00 UTC the next day), "yesterday" is the Californian one."""
    from engramdb.retrieval.temporal import find_time_range

    evening = datetime(2023, 11, 16, 20, tzinfo=timezone(timedelta(hours=-8)))
    today = find_time_range("what did I do today?", evening)
    assert today is not None and (today.start, today.end) == (
        datetime(2023, 11, 16, 8, tzinfo=timezone.utc),
        datetime(2023, 11, 17, 8, tzinfo=timezone.utc),
    )
    say(memory, "Jo", [
        (datetime(2023, 11, 16, 6, tzinfo=timezone.utc), "I walked the dog along the river"),  # 10 pm on the 15th there
        (datetime(2023, 11, 16, 18, tzinfo=timezone.utc), "I walked the dog, walked the dog again by the river"),
    ])  # fmt: skip
    hits = memory.search("where did Jo walk the dog yesterday?", user_id="jo", reference_date=evening.isoformat())
    assert hits.results[0].memory == "I walked the dog along the river"


def test_the_context_shows_the_reference_dates_days(memory: Memory) -> None:
    say(memory, "Jo", [(datetime(2023, 11, 16, 6, tzinfo=timezone.utc), "I walked the dog along the river")])
    there = memory.context("dog", user_id="jo", reference_date="2023-11-16T20:00:00-08:00")
    assert "2023-11-15 " in there.text and there.items[0].when.utcoffset() == -timedelta(hours=8)
    assert "2023-11-16 " in memory.context("dog", user_id="jo", reference_date="2023-11-17T04:00:00Z").text
    with pytest.raises(ValidationError, match="reference_date"):
        memory.context("dog", user_id="jo", reference_date="soon", relevant=0)


def test_a_plan_told_before_counts_as_its_time(memory: Memory) -> None:
    """Said on Tuesday the 14th, "November 22" is in the week a question on Friday calls next week."""
    say(memory, "Jo", [
        (day(2023, 11, 14), "The big day is on November 22: my sister is getting married!"),
        (day(2023, 11, 15), "My sister and I baked my sister's wedding cake for my sister's friend's wedding"),
    ])  # fmt: skip
    hits = memory.search("What is on with Jo's sister next week?", user_id="jo", reference_date=day(2023, 11, 17))
    assert hits.results[0].memory.startswith("The big day is on November 22")


def test_a_question_asking_when_prefers_memories_that_name_a_time(memory: Memory) -> None:
    texts = ["Lisbon was lovely, the food in Lisbon, the trams of Lisbon", "I flew to Lisbon last week"]
    say(memory, "Ana", [(day(2024, 3, 8), text) for text in texts])
    asked = memory.search("When did Ana go to Lisbon?", user_id="ana", explain=True)
    assert asked.results[0].memory == "I flew to Lisbon last week"
    assert [h.explain.when for h in asked.results if h.explain] == [1.0, 0.5]
    plain = memory.search("Ana Lisbon", user_id="ana", explain=True)
    assert plain.results[0].memory.startswith("Lisbon was lovely")
    assert all(h.explain and h.explain.when == 1.0 for h in plain.results)
    off = memory.search("When did Ana go to Lisbon?", user_id="ana", options={"when_weight": 0})
    assert off.results[0].memory.startswith("Lisbon was lovely")


def test_a_question_asking_how_long_prefers_a_duration(memory: Memory) -> None:
    for text in ["My cat Tom is the best cat, a cat who loves other cats", "I've had Tom the cat for three years now"]:
        memory.add([{"role": "user", "name": "Ana", "content": text}], user_id="ana")
    asked = memory.search("How long has Ana had her cat Tom?", user_id="ana")
    assert asked.results[0].memory == "I've had Tom the cat for three years now"


@pytest.mark.parametrize(("text", "named"), [
    ("We went there last night", True), ("I'll come over tomorrow", True), ("see you on Friday!", True),
    ("I dyed my hair last week", True), ("It was two years ago", True), ("I've had them for 3 years now", True),
    ("We met on the 15th", True), ("The race is on June 30", True), ("since 2019 I run", True),
    ("a few days ago it rained", True), ("I love it", False), ("Thanks, that painting is amazing!", False),
    ("You may like it", False), ("It was the best feeling in the world", False),
    ("We went camping last summer", True), ("Last Fri I took my kids to a pottery workshop", True),
    ("I took a writing class recently", True), ("I saw him the other day", True), ("two weekends ago", True),
    ("This may be hard", False), ("The sun was out", False), ("I sat down after a bad fall", False),
    ("The marathon is in two weeks", True), ("Two days later we left", True), ("The last may be the best", False),
])  # fmt: skip
def test_which_texts_name_a_time(text: str, named: bool) -> None:
    from engramdb.retrieval.temporal import asks_when, names_time

    assert names_time(text) is named
    assert asks_when("When did she go?") and asks_when("How long has he had them?") and not asks_when("Who came?")
    assert asks_when("In which month did he win?") and asks_when("After how many weeks did they meet again?")
    assert not asks_when("Which city did he visit?") and not asks_when("How many cats does she have?")


@pytest.mark.parametrize("query", [
    "what happened in 9999?", "the week after December 31, 9999", "early 9999", "the week before January 1, 0001",
    "the past 999999999 years", "in 99999 years", "the summer of 0000", "next winter 9999",
    "what did I do on December 31, 9999?", "between January 1, 0001 and December 31, 9999",
])  # fmt: skip
def test_times_at_the_edge_of_the_calendar_are_searched_not_raised(memory: Memory, query: str) -> None:
    memory.add("I went to Lisbon last week", user_id="u")
    assert len(memory.search(query, user_id="u", reference_date=REF).results) <= 1


def test_random_time_phrases_never_raise() -> None:
    """Words of time in random order, against the calendar's edges: a range or None, never an exception."""
    import random
    import re

    from engramdb.retrieval.temporal import TimeRange, find_time_range, names_time, tells_of

    words = re.findall(
        r"\S+",
        """in the past last next this over during on before after since between and week
        weekend weekends month year days summer winter fall may august fri tues sun ago from now later few couple of
        two 999999999 0 9999 0001 1st 31st early late tomorrow yesterday day recently morning 2022 see you will""",
    )
    rng = random.Random(7)
    east, west = timezone(timedelta(hours=9)), timezone(timedelta(hours=-8))
    references = [datetime(1, 1, 1, 12, tzinfo=east), datetime(9999, 12, 31, tzinfo=west), REF, day(2024, 2, 29)]
    for _ in range(500):
        phrase = " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        for reference in references:
            found = find_time_range(phrase, reference)
            assert found is None or found.start is None or found.end is None or found.start < found.end, phrase
            names_time(phrase)
            tells_of(phrase, reference, TimeRange(reference, None))
