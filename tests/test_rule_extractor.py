"""The rule-based extractor: a table of sentences and the memories each must give."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engramdb.extraction.rules import RuleExtractor
from engramdb.models import Message

R = "retraction"
TABLE: list[tuple[str, list[tuple[str, str, str | None] | tuple[str, str, str | None, str]]]] = [
    ("I'm vegetarian and allergic to peanuts",
     [("Alice is vegetarian", "preference", "diet"), ("Alice is allergic to peanuts", "fact", None)]),
    ("I am allergic to shellfish", [("Alice is allergic to shellfish", "fact", None)]),
    ("I have a gluten allergy", [("Alice is allergic to gluten", "fact", None)]),
    ("I'm no longer allergic to cats", [("Alice is allergic to cats", "fact", None, R)]),
    ("I'm vegan", [("Alice is vegan", "preference", "diet")]),
    ("I went vegetarian last year", [("Alice is vegetarian", "preference", "diet")]),
    ("I'm not vegetarian anymore", [("Alice is vegetarian", "preference", "diet", R)]),
    ("I don't eat pork", [("Alice does not eat pork", "preference", None)]),
    ("I never eat red meat", [("Alice does not eat red meat", "preference", None)]),
    ("I live in Paris", [("Alice lives in Paris", "fact", "residence")]),
    ("I moved to Berlin last month", [("Alice lives in Berlin", "fact", "residence")]),
    ("I've just relocated to Lisbon", [("Alice lives in Lisbon", "fact", "residence")]),
    ("I'm based in Toronto", [("Alice lives in Toronto", "fact", "residence")]),
    ("I no longer live in Madrid", [("Alice lives in Madrid", "fact", "residence", R)]),
    ("I moved out of London", [("Alice lives in London", "fact", "residence", R)]),
    ("I'm originally from Lyon", [("Alice is from Lyon", "fact", "origin")]),
    ("I am from Kenya", [("Alice is from Kenya", "fact", "origin")]),
    ("I work as a nurse", [("Alice works as a nurse", "fact", "occupation")]),
    ("I'm a software engineer", [("Alice works as a software engineer", "fact", "occupation")]),
    ("I am a teacher", [("Alice works as a teacher", "fact", "occupation")]),
    ("My job is data analyst", [("Alice works as data analyst", "fact", "occupation")]),
    ("I work at Google", [("Alice works at Google", "fact", "employer")]),
    ("I just started a new job at Acme Corp", [("Alice works at Acme Corp", "fact", "employer")]),
    ("I no longer work at Initech", [("Alice works at Initech", "fact", "employer", R)]),
    ("I study medicine", [("Alice studies medicine", "fact", "studies")]),
    ("I'm studying computer science at MIT", [("Alice studies computer science at MIT", "fact", "studies")]),
    ("I love hiking", [("Alice loves hiking", "preference", None)]),
    ("I love hiking and swimming", [("Alice loves hiking and swimming", "preference", None)]),
    ("I really enjoy jazz", [("Alice enjoys jazz", "preference", None)]),
    ("I like to cook Italian food", [("Alice likes to cook Italian food", "preference", None)]),
    ("I prefer tea over coffee", [("Alice prefers tea over coffee", "preference", None)]),
    ("I adore my garden", [("Alice adores their garden", "preference", None)]),
    ("I hate waiting in line", [("Alice dislikes waiting in line", "preference", None)]),
    ("I don't like horror movies", [("Alice dislikes horror movies", "preference", None)]),
    ("My favorite color is blue", [("Alice's favorite color is blue", "preference", "favorite color")]),
    ("My favourite food is sushi", [("Alice's favorite food is sushi", "preference", "favorite food")]),
    ("My daughter's name is Emma", [("Alice's daughter is named Emma", "fact", None)]),
    ("My son is called Leo", [("Alice's son is named Leo", "fact", None)]),
    ("My wife is named Sara", [("Alice's wife is named Sara", "fact", "wife name")]),
    ("My dog's name is Rex", [("Alice's dog is named Rex", "fact", None)]),
    ("I have a cat named Luna", [("Alice's cat is named Luna", "fact", None)]),
    ("My name is Alice Martin", [("Alice's name is Alice Martin", "fact", "name")]),
    ("Please call me Ali", [("Alice wants to be called Ali", "preference", "preferred name")]),
    ("I have two kids", [("Alice has two kids", "fact", None)]),
    ("I have a golden retriever dog", [("Alice has a golden retriever dog", "fact", None)]),
    ("I'm married", [("Alice is married", "fact", "marital status")]),
    ("I got engaged last week", [("Alice is engaged", "fact", "marital status")]),
    ("I'm 34 years old", [("Alice is 34 years old", "fact", "age")]),
    ("I just turned 40", [("Alice is 40 years old", "fact", "age")]),
    ("My birthday is on March 3rd", [("Alice's birthday is March 3rd", "fact", "birthday")]),
    ("I speak Spanish and Portuguese", [("Alice speaks Spanish and Portuguese", "fact", None)]),
    ("I'm learning Japanese", [("Alice is learning Japanese", "fact", None)]),
    ("I'm training for a marathon", [("Alice is training for a marathon", "fact", None)]),
    ("I drive a Tesla", [("Alice owns a Tesla", "fact", None)]),
    ("I play the guitar", [("Alice plays guitar", "fact", None)]),
    ("Remind me to call mom tomorrow", [("Alice wants a reminder to call mom tomorrow", "task", None)]),
    ("I need to renew my passport", [("Alice needs to renew their passport", "task", None)]),
    ("I'm planning to visit Japan in April", [("Alice plans to visit Japan in April", "task", None)]),
    ("Please always answer in French", [("Always answer in French", "procedure", None)]),
    ("Never book me a middle seat", [("Never book the user a middle seat", "procedure", None)]),
    ("Book me a window seat", []),
    # descriptions, not instructions; likes that name nothing about the speaker
    ("I have always had a love for horses", []),
    ("You're always there for me", []),
    ("Never had a chance to visit it", []),
    ("It's always easy with you", []),
    ("I love it!", []),
    ("I love your cake", []),
    ("I love when you send me photos", []),
    ("I love to", []),
    ("I enjoy it after a long day", []),
    ("Never gets old", []),
    ("Always staying positive", []),
    ("Always address me by my first name", [("Always address the user by the user's first name", "procedure", None)]),
    ("What's the weather like?", []),
    ("I'd like a coffee please", []),
    ("Thanks, that was helpful", []),
    ("Can you help me with my essay?", []),
    ("I think it might rain", []),
    ("Ich wohne in Berlin", []),  # other languages stay episodes
]  # fmt: skip

WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def test_the_table_is_large_enough() -> None:
    assert len(TABLE) >= 60


@pytest.mark.parametrize(("sentence", "expected"), TABLE, ids=[s for s, _ in TABLE])
def test_sentence_gives_expected_memories(sentence: str, expected: list[tuple[str, ...]]) -> None:
    candidates, usage = RuleExtractor().extract(
        [Message(role="user", name="Alice", content=sentence, timestamp=WHEN)], reference=WHEN
    )
    got = [(c.text, c.kind, c.slot, *((R,) if c.retraction else ())) for c in candidates]
    assert got == [tuple(e) for e in expected]
    assert usage.calls == 0
    assert all(c.subject == "Alice" and c.sources == [0] and c.occurred_at == WHEN for c in candidates)


def test_only_user_messages_are_read_and_unnamed_users_are_the_user() -> None:
    messages = [
        Message(role="assistant", content="I live in the cloud"),
        Message(role="user", content="I live in Oslo"),
    ]
    candidates, _ = RuleExtractor().extract(messages, reference=WHEN)
    assert [(c.text, c.sources) for c in candidates] == [("The user lives in Oslo", [1])]
