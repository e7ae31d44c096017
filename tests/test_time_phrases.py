"""The calendar shapes resolved without dateparser give dateparser's answers, and the
windowed phrase scan finds what a scan of the whole text finds."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from engramdb.retrieval import time_phrases
from engramdb.retrieval.temporal import find_phrases_in, names_time, phrases_of
from engramdb.retrieval.time_phrases import PHRASE

_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december", "jan", "sept", "dec"]  # fmt: skip
SHAPES = [
    "yesterday", "today", "tonight", "tomorrow", "last night", "the day before yesterday", "the day after tomorrow",
    *(f"{n} {unit}s ago" for n in ("a", "two", "3", "12") for unit in ("day", "week", "weekend", "month", "year")),
    *(f"in {n} {unit}s" for n in ("two", "5") for unit in ("day", "week", "month", "year")),
    *(f"{rel} {unit}" for rel in ("last", "this", "next") for unit in ("week", "weekend", "month", "year")),
    *(f"{rel}{day}" for rel in ("last ", "this ", "next ", "on ") for day in _DAYS),
    *(f"in {month}" for month in _MONTHS),
    *(f"{month} 3, 2023" for month in _MONTHS[:12:3]), "3 may 2023", "the 31st of march, 2022", "feb 29th 2024",
    "2023-05-03", "in 2023", "in 1999",
]  # fmt: skip
# every weekday, and the ends of months (where "a month ago" clamps the day)
REFERENCES = [datetime(2023, 6, 5, tzinfo=timezone.utc) + timedelta(days=d) for d in range(8)] + [
    datetime(y, m, d, tzinfo=timezone.utc) for y, m, d in ((2023, 3, 31), (2023, 5, 31), (2024, 2, 29), (2024, 3, 1),
                                                           (2023, 12, 31), (2023, 1, 1), (2023, 8, 31))
]  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_calendar_shapes_resolve_as_dateparser_does(shape: str) -> None:
    words = time_phrases._normalise(shape)
    for reference in REFERENCES:
        ours = time_phrases._by_calendar(words, reference)
        assert ours is not None, (shape, reference)
        assert ours == time_phrases._by_dateparser(words, reference), (shape, reference)


def test_an_impossible_date_is_no_range() -> None:
    assert time_phrases.period_range("the 31st of february, 2022", REFERENCES[0]) is None
    assert time_phrases.period_range("feb 29th 2023", REFERENCES[0]) is None


def _text(rng: random.Random, words: int) -> str:
    filler = ["I", "think", "maybe", "the", "1.", "2023", "sun", "may", "be", "a", "list:", "day-to-day", "x9", "in",
              "during", "since", "weekday", "yesterday's", "Mayor", "Sat", "Friday,", "\n", "—", "é", "İ"]  # fmt: skip
    parts = [rng.choice(filler) if rng.random() < 0.85 else rng.choice(SHAPES) for _ in range(words)]
    return " ".join(parts)


def test_the_windowed_scan_finds_what_the_whole_scan_finds() -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = _text(rng, rng.randint(1, 600))
        whole = [(m.span(), m.group(0)) for m in PHRASE.finditer(text)]
        assert [(m.span(), m.group(0)) for m in find_phrases_in(text)] == whole, text


def test_phrases_are_read_once_per_text() -> None:
    text = "We met last Friday and again on 3 May 2023. " * 50
    phrases_of.cache_clear()
    assert phrases_of(text) == phrases_of(text)
    assert phrases_of.cache_info().hits == 1
    assert phrases_of(text)[:2] == ("last Friday", "on 3 May 2023")
    assert names_time(text) and not names_time("no time named here at all")
