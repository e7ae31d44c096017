"""Time in queries and memories: the range a query names, and whether a memory tells of it.

A query's first time phrase (``time_phrases``), resolved against the reference date, is the
range it asks about; "before"/"after"/"since" open the range on one side. The same phrases
found in a memory's text, resolved against the memory's own time, say what period it tells of
("I watched it last night", said on May 2, tells of May 1). The ranges become filter nodes
for the store (``range_filter``, ``as_of_filter``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..filters import And, Cond, Node, Not, Or, format_datetime
from ..models import as_utc
from .time_languages import find_phrases
from .time_phrases import COMPOUND, MONTH, NUMBER, PHRASE, WEEKDAY, period_range, start_of_day

_ON_WEEKDAY = re.compile(r"on " + WEEKDAY, re.I)
_AHEAD = re.compile(  # words of what is to come
    r"\b(?:will|won't|shall|going to|gonna|'ll|do (?:i|we|you) have|is there|are there|plans?|planned|"
    r"scheduled|upcoming|see you|can't wait|looking forward)\b|\b(?:what's|what is) on\b",
    re.I,
)
_VAGUE = frozenset(("recently", "lately", "the other day"))
_NTH = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3}
_PART = {"beginning": 0, "start": 0, "early": 0, "middle": 1, "mid": 1, "end": 2, "late": 2}
_ASKS_WHEN = re.compile(  # "When did…", "How long…", "In which month…", "After how many weeks…"
    r"^\W*(?:(?:in|on|during|after|by|since) )?(?:when\b|how long\b|how many (?:days|weeks|months|years)\b"
    r"|(?:what|which) (?:time|date|day|week|month|year)s?\b)",
    re.I,
)
_DURATION = re.compile(  # a span of time, which answers "how long": "for three years", "two months now"
    r"\b(?:for (?:the (?:past|last) )?" + NUMBER + r" (?:days?|weeks?|months?|years?)"
    r"|" + NUMBER + r" (?:days?|weeks?|months?|years?) (?:now|already|old|later)"
    r"|since (?:\d{4}|" + MONTH + r"|last \w+))\b",
    re.I,
)
_TIME_WORDS = frozenset(  # a text with none of these words and no digit names no time: skip the patterns
    re.findall(
        r"\w+",
        "yesterday today tonight night tomorrow ago week weeks weekend weekends month months year years day days "
        "since monday tuesday wednesday thursday friday saturday sunday jan january feb february mar march apr "
        "april may jun june jul july aug august sep sept september oct october nov november dec december "
        "mon tue tues wed thu thur thurs fri sat sun spring summer fall autumn winter recently lately morning "
        "afternoon evening",
    )
)
_WORD = re.compile(r"[a-z]+")
_TOKEN = re.compile(r"[a-z]+|\d+", re.I)
PHRASE_REACH = 40  # characters: more than the longest phrase PHRASE matches ("since the past couple of weeks")
_DIGIT = re.compile(r"\d")
TEXTS_CACHED = 4096  # memories whose time phrases are kept: a few hundred results' worth of searches
REPORTED_WITHIN = timedelta(days=7)  # at least: how long after a period people still tell of it


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC; either side may be open (None)."""

    start: datetime | None
    end: datetime | None
    expression: str = ""

    def contains(self, when: datetime | None) -> bool:
        if when is None:
            return False
        when = as_utc(when)
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)

    def shifted(self, delta: timedelta) -> TimeRange:
        """The range moved by ``delta``; a side pushed off the calendar opens."""
        return TimeRange(_moved(self.start, delta), _moved(self.end, delta), self.expression)

    def overlaps(self, other: TimeRange) -> bool:
        after_start = self.end is None or other.start is None or self.end > other.start
        return after_start and (self.start is None or other.end is None or self.start < other.end)


def _moved(when: datetime | None, delta: timedelta) -> datetime | None:
    try:
        return None if when is None else when + delta
    except OverflowError:
        return None


def _compound_range(match: re.Match[str], reference: datetime) -> TimeRange | None:
    """'between A and B', 'the week before A', 'the second week of A', 'early A'."""
    if match.group("a"):
        first, last = match.group("a"), match.group("b")
        year = re.search(r"\d{4}", last)
        if year and not re.search(r"\d{4}", first):  # "between May 3 and May 9, 2023": both in 2023
            first = f"{first} {year.group(0)}"
        a, b = period_range(first, reference), period_range(last, reference)
        return TimeRange(a[0], b[1], match.group(0)) if a and b and a[0] < b[1] else None
    if match.group("side"):
        span = period_range(match.group("c"), reference)
        if span is None:
            return None
        week = timedelta(days=7)
        if match.group("side").lower() == "before":
            return TimeRange(span[0] - week, span[0], match.group(0))
        return TimeRange(span[1], span[1] + week, match.group(0))
    if match.group("nth"):
        span = period_range(match.group("d"), reference)
        if span is None:
            return None
        nth = match.group("nth").lower()
        begin = span[1] - timedelta(days=7) if nth == "last" else span[0] + timedelta(days=7 * _NTH[nth])
        return TimeRange(begin, min(begin + timedelta(days=7), span[1]), match.group(0))
    span = period_range(match.group("e"), reference)
    if span is None:
        return None
    third = (span[1] - span[0]) / 3
    begin = span[0] + third * _PART[match.group("part").lower()]
    end = span[1] if _PART[match.group("part").lower()] == 2 else begin + third
    return TimeRange(start_of_day(begin), start_of_day(end), match.group(0))


def find_time_range(query: str, reference: datetime) -> TimeRange | None:
    """The first temporal expression in ``query`` as a range (UTC bounds), or None.

    Days are the reference's own: asked at 8 pm in San Francisco (04:00 UTC the next day),
    "today" is the Californian day. The phrase is resolved on the reference's wall clock, and
    the range moved to UTC by its offset; a naive reference is UTC.
    """
    offset = reference.utcoffset() or timedelta(0)
    found = _find(query, reference.replace(tzinfo=timezone.utc))  # the wall clock, read as UTC
    return found.shifted(-offset) if found is not None and offset else found


def _find(query: str, reference: datetime) -> TimeRange | None:
    """English first, then the other languages (``time_languages``). An ASCII query with no
    English time word and no digit holds no English phrase (every pattern needs one), so its
    patterns are skipped: most queries then cost two set lookups."""
    if not query.isascii() or _may_name_time(query):
        found = _find_english(query, reference)
        if found is not None:
            return found
    for phrase in find_phrases(query):
        span = period_range(phrase.english, reference)
        if span is not None:
            return _edged(phrase.edge, span, phrase.said)
    return None


def _find_english(query: str, reference: datetime) -> TimeRange | None:
    for compound in COMPOUND.finditer(query):
        try:
            found = _compound_range(compound, reference)
        except (OverflowError, ValueError):  # at the edge of the calendar
            found = None
        if found is not None:
            return found
    for match in PHRASE.finditer(query):
        if match.group("what").lower() in _VAGUE:  # "what did she do recently?" is not a window to confine to
            continue
        span = period_range(_tensed(match.group("what"), query), reference)
        if span is not None:
            return _edged((match.group("edge") or "").strip().lower(), span, match.group(0))
    return None


def _edged(edge: str | None, span: tuple[datetime, datetime], expression: str) -> TimeRange:
    """The span, opened on one side by "before"/"until", "after" or "since"."""
    start, end = span
    if edge in ("before", "until"):
        return TimeRange(None, start, expression)
    if edge == "after":
        return TimeRange(end, None, expression)
    if edge == "since":
        return TimeRange(start, None, expression)
    return TimeRange(start, end, expression)


def asks_when(query: str) -> bool:
    """A question whose answer is a time: "When did…", "How long…", "What year…"."""
    return _ASKS_WHEN.search(query) is not None


@functools.lru_cache(maxsize=TEXTS_CACHED)
def names_time(text: str) -> bool:
    """Whether ``text`` names a time ("yesterday", "last Friday", "in May 2023", "for two years").

    Cached per text, as ``phrases_of`` is: the patterns cost about half a millisecond on a long
    turn, and the same memories come back query after query.
    """
    return _may_name_time(text) and (bool(phrases_of(text)) or _DURATION.search(text) is not None)


@functools.lru_cache(maxsize=TEXTS_CACHED)
def phrases_of(text: str) -> tuple[str, ...]:
    """The time phrases ``text`` holds, each as it is to be resolved (``_tensed``)."""
    if not _may_name_time(text):
        return ()
    return tuple(_tensed(match.group("what"), text) for match in find_phrases_in(text))


def find_phrases_in(text: str) -> Iterator[re.Match[str]]:
    """``PHRASE.finditer(text)``, scanning only around the time words and digits.

    Every phrase holds a time word or a digit, and none is longer than ``PHRASE_REACH``, so
    the windows that far around them hold every match the whole text holds, at the same place.
    On a long turn this is a tenth of the cost: the pattern's many alternatives are tried at
    every word of the text otherwise. A window ends at the end of a word (a cut word would
    end a phrase it does not end); it may start anywhere, as the scan sees what lies before.
    """
    windows: list[list[int]] = []
    for token in _TOKEN.finditer(text):
        if token.group(0).isdigit() or token.group(0).lower() in _TIME_WORDS:
            start, end = max(0, token.start() - PHRASE_REACH), token.end() + PHRASE_REACH
            if windows and start <= windows[-1][1]:
                windows[-1][1] = end
            else:
                windows.append([start, end])
    for start, end in windows:
        while end < len(text) and (text[end].isalnum() or text[end] == "_"):
            end += 1
        yield from PHRASE.finditer(text, start, min(end, len(text)))


def _may_name_time(text: str) -> bool:
    """False for a text with no time word and no digit: most texts, so a set lookup spares the
    patterns (this runs on every loaded hit of a when-question)."""
    return _DIGIT.search(text) is not None or not _TIME_WORDS.isdisjoint(_WORD.findall(text.lower()))


def told_around(span: TimeRange) -> TimeRange:
    """``span`` stretched over the time in which people tell of it: before and after.

    "What did she do on May 1?" is answered by "I watched it last night", said on May 2, and
    "what is on next week?" by "the wedding is on November 22", said on the 14th: a search
    for a bounded period also looks at what was said up to one period (at least a week) after
    it and a week before it, and ``tells_of`` decides which of those memories speak of the
    period. A month before a month measured worse than a week: on LoCoMo the wider window
    crowds the confined search with a month of memories that name other times.
    """
    if span.start is None or span.end is None:
        return span
    reach = max(REPORTED_WITHIN, span.end - span.start)
    try:
        start: datetime | None = span.start - REPORTED_WITHIN
    except OverflowError:  # the start of the calendar
        start = None
    try:
        end: datetime | None = span.end + reach
    except OverflowError:  # the end of the calendar
        end = None
    return TimeRange(start, end, span.expression)


def tells_of(text: str, said: datetime, span: TimeRange) -> bool:
    """Whether ``text``, said at ``said``, names a time within ``span`` ("last Friday", "in May")."""
    for phrase in phrases_of(text):
        found = period_range(phrase, as_utc(said))
        if found is not None and TimeRange(found[0], found[1]).overlaps(span):
            return True
    return False


def _tensed(phrase: str, text: str) -> str:
    """ "on Friday" as the coming Friday when the text speaks of what is to come ("what do I have
    on Friday?", "see you on Friday!"), else dateparser's: the last one."""
    if _ON_WEEKDAY.fullmatch(phrase) and _AHEAD.search(text):
        return "next " + phrase.split()[-1]
    return phrase


def range_filter(time_range: TimeRange) -> Node:
    """Memories whose event time (occurred_at, else created_at) lies in the range."""

    def within(field: str) -> list[Node]:
        conds: list[Node] = []
        if time_range.start is not None:
            conds.append(Cond(field, "gte", format_datetime(time_range.start)))
        if time_range.end is not None:
            conds.append(Cond(field, "lt", format_datetime(time_range.end)))
        return conds

    occurred = Cond("occurred_at", "exists", True)
    return Or((And((occurred, *within("occurred_at"))), And((Not(occurred), *within("created_at")))))


def as_of_filter(when: datetime) -> Node:
    """What held at ``when`` (valid time): begun by then — ``valid_from``, else the event time
    ``occurred_at``, else ``created_at`` — and not ended (``valid_to``), not forgotten."""
    at = format_datetime(when)
    no = {field: Not(Cond(field, "exists", True)) for field in ("valid_from", "occurred_at", "valid_to", "expires_at")}
    return And((
        Cond("state", "ne", "forgotten"),
        Or((
            Cond("valid_from", "lte", at),
            And((no["valid_from"], Cond("occurred_at", "lte", at))),
            And((no["valid_from"], no["occurred_at"], Cond("created_at", "lte", at))),
        )),
        Or((no["valid_to"], Cond("valid_to", "gt", at))),
        Or((no["expires_at"], Cond("expires_at", "gt", at))),
    ))  # fmt: skip
