"""Time in text: find temporal expressions, resolve them to ranges against a reference date.

Locating is a small set of phrase shapes ("last week", "in May 2023", "two days ago",
"before June", "between May 3 and May 9", "the second week of June", "early 2023", "last
summer", "last Fri"); resolving is dateparser's job (relative dates, month names, weekdays),
with its period (day, week, month, year) turned into a range — except what it does not
resolve or resolves otherwise than people mean: seasons, months said relative to now ("next
August"), a day without a year, "the past two weeks". "before"/"after"/"since" open the range
on one side. The same phrases found in a memory's text, resolved against the memory's own time,
say what period it tells of ("I watched it last night", said on May 2, tells of May 1).
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..models import as_utc

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_WEEKDAY_SHORT = r"(?:mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)\.?"  # only after last/next: "sun" alone is the sun
_WEEKDAYS = {"mon": "monday", "tue": "tuesday", "tues": "tuesday", "wed": "wednesday", "thu": "thursday",
             "thur": "thursday", "thurs": "thursday", "fri": "friday", "sat": "saturday", "sun": "sunday"}  # fmt: skip
_SEASON = r"(?:spring|summer|fall|autumn|winter)"
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}  # first month (meteorological, north)
_NUMBER = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|a couple of)"
_DATE = (  # a calendar date, month or year, without a preposition
    r"\d{1,2}(?:st|nd|rd|th)? (?:of )?" + _MONTH + r",?(?: \d{4})?"
    r"|" + _MONTH + r" \d{1,2}(?:st|nd|rd|th)?\b,?(?: \d{4})?"
    r"|" + _MONTH + r",?(?: \d{4})?|\d{4}-\d{2}-\d{2}|\d{4}"
)
_PHRASES = [
    r"the day after tomorrow|yesterday|today|tonight|tomorrow|last night|the day before yesterday"
    r"|this (?:morning|afternoon|evening)",
    r"in " + _NUMBER + r" (?:days?|weeks?|months?|years?)|" + _NUMBER + r" (?:days?|weeks?|months?|years?) from now",
    r"(?:the )?(?:past|last) (?:few|couple of|" + _NUMBER + r") (?:days|weeks|months|years)",
    r"this past (?:week|weekend|month|year)|(?:over|on|during) the weekend",
    r"(?:the )?(?:week|weekend|month|year) before last",
    r"recently|lately|the other day|(?:earlier|later) (?:today|this week|this month|this year)",
    r"(?:last|this|past|previous|next|coming) (?:week|weekend|month|year)",
    r"(?:last|this|next|on) " + _WEEKDAY,
    r"(?:last|next) " + _WEEKDAY_SHORT + r"(?!\w)",
    _NUMBER + r" (?:days?|weeks?|weekends?|months?|years?) ago",
    r"(?<!the )(?:last|past|next|coming) " + _MONTH + r"|this (?!may\b)" + _MONTH,  # "this may be" is not May
    r"(?:last|this|past|next|coming) " + _SEASON,
    r"(?:the )?" + _SEASON + r",? (?:of )?\d{4}",
    r"(?<=in )(?:the )?" + _SEASON + r"|(?<=during )(?:the )?" + _SEASON + r"|(?<=over )the " + _SEASON,
    r"(?:on |in )?(?:the )?\d{1,2}(?:st|nd|rd|th)? (?:of )?" + _MONTH + r",?(?: \d{4})?",
    _MONTH + r" \d{1,2}(?:st|nd|rd|th)?,? \d{4}",
    _MONTH + r" \d{1,2}(?:st|nd|rd|th)?\b",
    _MONTH + r",? \d{4}",
    r"\d{4}-\d{2}-\d{2}",
    r"(?:on )?the \d{1,2}(?:st|nd|rd|th)\b(?! (?:of )?" + _MONTH + r")",  # a day of the month it was said in
    r"(?<=in )\d{4}|(?<=during )\d{4}|(?<=since )\d{4}|(?<=before )\d{4}|(?<=after )\d{4}",
    r"(?<=in )" + _MONTH + r"|(?<=during )" + _MONTH + r"|(?<=before )" + _MONTH + r"|(?<=after )" + _MONTH
    + r"|(?<=since )" + _MONTH,
]  # fmt: skip
_FIND = re.compile(r"\b(?P<edge>before |after |since |until )?(?P<what>" + "|".join(_PHRASES) + r")\b", re.I)
_COMPOUND = re.compile(
    r"\bbetween (?P<a>" + _DATE + r") and (?P<b>" + _DATE + r")\b"
    r"|\b(?:the )?week (?P<side>before|after) (?P<c>" + _DATE + r")\b"
    r"|\b(?:the )?(?P<nth>first|second|third|fourth|last|1st|2nd|3rd|4th) week of (?P<d>" + _DATE + r")\b"
    r"|\b(?:the )?(?P<part>beginning|start|early|middle|mid|end|late)(?: of|-| of the)? (?P<e>" + _DATE + r")\b",
    re.I,
)
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a few": 3, "a couple of": 2,
            "few": 3, "couple of": 2}  # fmt: skip
_NAMED = re.compile(r"(?:(?P<rel>last|this|past|next|coming) )?(?P<name>\w+)(?:,? (?:of )?(?P<year>\d{4}))?")
_DAY_MONTH = re.compile(
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<month>" + _MONTH + r")"
    r"|(?P<month2>" + _MONTH + r") (?P<day2>\d{1,2})(?:st|nd|rd|th)?"
)
_SPAN = re.compile(r"(?P<rel>past|last) (?:(?P<n>\d+) )?(?P<unit>day|week|month|year)s?")
_ON_WEEKDAY = re.compile(r"on " + _WEEKDAY, re.I)
_AHEAD = re.compile(  # words of what is to come
    r"\b(?:will|won't|shall|going to|gonna|'ll|do (?:i|we|you) have|is there|are there|plans?|planned|"
    r"scheduled|upcoming|see you|can't wait|looking forward)\b|\b(?:what's|what is) on\b",
    re.I,
)
_RECENT = {  # vague spans: days before the day said, days after its start
    "recently": (14, 1), "lately": (14, 1), "other day": (7, 0),
    "this morning": (0, 1), "this afternoon": (0, 1), "this evening": (0, 1),
}  # fmt: skip
_VAGUE = frozenset(("recently", "lately", "the other day"))
_NTH = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3}
_PART = {"beginning": 0, "start": 0, "early": 0, "middle": 1, "mid": 1, "end": 2, "late": 2}
_ASKS_WHEN = re.compile(  # "When did…", "How long…", "In which month…", "After how many weeks…"
    r"^\W*(?:(?:in|on|during|after|by|since) )?(?:when\b|how long\b|how many (?:days|weeks|months|years)\b"
    r"|(?:what|which) (?:time|date|day|week|month|year)s?\b)",
    re.I,
)
_DURATION = re.compile(  # a span of time, which answers "how long": "for three years", "two months now"
    r"\b(?:for (?:the (?:past|last) )?" + _NUMBER + r" (?:days?|weeks?|months?|years?)"
    r"|" + _NUMBER + r" (?:days?|weeks?|months?|years?) (?:now|already|old|later)"
    r"|since (?:\d{4}|" + _MONTH + r"|last \w+))\b",
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
_DIGIT = re.compile(r"\d")
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


def _period_range(text: str, reference: datetime) -> tuple[datetime, datetime] | None:
    """The span a phrase names: 'May 2023' is the month, 'last week' the week, 'yesterday' the day.

    Every span is whole days, so only the reference's day matters: the answer is cached per
    (phrase, day), as parsing costs dateparser most of a millisecond and the same few phrases
    ("last week", "yesterday") recur in memories re-ranked query after query.
    """
    return _day_range(text.lower().strip(), _day(as_utc(reference)))


@functools.lru_cache(maxsize=8192)
def _day_range(text: str, reference: datetime) -> tuple[datetime, datetime] | None:
    try:
        return _resolve(text, reference)
    except (OverflowError, ValueError):  # a period at the edge of the calendar ("in 9999"): no range
        return None


def _normalise(text: str) -> str:
    """The phrase as dateparser reads it: "in two weeks" → "2 weeks from now", "last Fri" →
    "last friday", "this past weekend" → "last weekend"; a leading preposition dropped."""
    words = re.sub(r"^in (.+ (?:days?|weeks?|months?|years?))$", r"\1 from now", text)
    words = re.sub(r"^(?:on |in |over |during )?(?:the )?", "", words)
    words = re.sub(r"^(?:earlier|later) ", "", words)
    words = re.sub(r"^(?:this past|previous) ", "last ", words)
    words = re.sub(r"^(week|weekend|month|year) before last$", r"2 \1s ago", words)
    words = re.sub(r"^(last|next) (\w+)\.?$", lambda m: f"{m[1]} {_WEEKDAYS.get(m[2], m[2])}", words)
    for name, count in sorted(_NUMBERS.items(), key=lambda kv: -len(kv[0])):
        words = re.sub(rf"^{name} |(?<=^past ){name} |(?<=^last ){name} ", f"{count} ", words)
    return words


def _resolve(text: str, reference: datetime) -> tuple[datetime, datetime] | None:
    words = _normalise(text)
    found = _by_hand(words, reference)
    return found if found is not None else _by_dateparser(words, reference)


def _by_hand(words: str, reference: datetime) -> tuple[datetime, datetime] | None:
    """The phrases resolved here rather than by dateparser; None for the others."""
    if ordinal := re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)", words):
        return _day_of_month(int(ordinal.group(1)), reference)
    if (named := _NAMED.fullmatch(words)) and (found := _named_period(named, reference)):
        return found
    if dated := _DAY_MONTH.fullmatch(words):
        return _nearest_day(dated, reference)
    if recent := _RECENT.get(words):
        return _day(reference) - timedelta(days=recent[0]), _day(reference) + timedelta(days=recent[1])
    span = _SPAN.fullmatch(words)
    if span and (span.group("n") or span.group("rel") == "past"):  # "the past two weeks" (not "last week")
        return _trailing(int(span.group("n") or 1), span.group("unit"), reference)
    if words == "weekend":  # "over the weekend": the latest begun
        saturday = _day(reference) - timedelta(days=(reference.weekday() - 5) % 7)
        return saturday, saturday + timedelta(days=2)
    return None


def _trailing(count: int, unit: str, reference: datetime) -> tuple[datetime, datetime]:
    """The ``count`` ``unit``s up to and including the reference's day."""
    today = _day(reference)
    if unit in ("month", "year"):
        start = _add_months(today, -count * (12 if unit == "year" else 1))
    else:
        start = today - timedelta(days=count * (7 if unit == "week" else 1))
    return start, today + timedelta(days=1)


def _by_dateparser(words: str, reference: datetime) -> tuple[datetime, datetime] | None:
    """dateparser's date and period ("week", "month") for the phrase, as whole days."""
    weekend = bool(re.search(r"\bweekends?\b", words))
    parsed, period = _parse(words.replace("weekend", "week"), reference)
    if parsed is None:
        return None
    start = parsed.replace(tzinfo=timezone.utc)
    if weekend or re.search(r"\bweek\b", words) or period == "week":
        begin = _day(start - timedelta(days=start.weekday()))
        return (begin + timedelta(days=5), begin + timedelta(days=7)) if weekend else (begin, begin + timedelta(days=7))
    if period == "year" or re.fullmatch(r"\d{4}|(?:last|this|past|previous|next|coming) year|\d+ years? ago", words):
        begin = _day(start).replace(month=1, day=1)
        return begin, begin.replace(year=begin.year + 1)
    if period == "month" or re.search(r"\bmonths?\b", words) or re.fullmatch(_MONTH + r",? ?(?:\d{4})?", words):
        begin = _day(start).replace(day=1)
        nxt = begin.replace(year=begin.year + 1, month=1) if begin.month == 12 else begin.replace(month=begin.month + 1)
        return begin, nxt
    begin = _day(start)
    return begin, begin + timedelta(days=1)


def _named_period(named: re.Match[str], reference: datetime) -> tuple[datetime, datetime] | None:
    """A season or a month said relative to now: "last summer", "this spring", "next August".

    dateparser resolves neither. A season is three months from its first (meteorological,
    northern: summer is June to August, winter December to February). "last" is the latest
    one over before the reference's own, "this" the one of the reference's year (or the
    current one), "next" the first to begin after it, a year ("summer 2022") that year's,
    none ("in the summer") the latest one begun.
    """
    name, relation, year = named.group("name", "rel", "year")
    first, months = _SEASONS.get(name), 3
    if first is None:
        if not re.fullmatch(_MONTH, name) or (relation is None and year is None):
            return None  # a month alone ("in May") is dateparser's
        first, months = datetime.strptime(name[:3].title(), "%b").month, 1
    if year is not None:
        start = datetime(int(year), first, 1, tzinfo=timezone.utc)
        return start, _add_months(start, months)
    current = datetime(reference.year, first, 1, tzinfo=timezone.utc)
    if relation in ("next", "coming"):
        start = current if current > reference else _add_months(current, 12)
    elif relation == "this" and months == 1:
        start = current
    elif relation == "this":  # the one under way, else this year's
        start = _add_months(current, -12) if _add_months(current, months - 12) > reference else current
    else:  # last / past / none: the latest begun (none) or over (last) before the reference
        start = current if current <= reference else _add_months(current, -12)
        if relation is not None and _add_months(start, months) > _day(reference):
            start = _add_months(start, -12)
    return start, _add_months(start, months)


def _nearest_day(dated: re.Match[str], reference: datetime) -> tuple[datetime, datetime] | None:
    """A day of a month without a year ("November 22", "the 3rd of May"): the nearest one,
    a day to come counting twice as far as a day gone (memories are mostly of the past).

    Said on November 14, "the wedding is on November 22" is eight days later, not a year ago;
    asked in January, "what did we do on December 30?" is three weeks ago; asked in November,
    "the 3rd of May" is the last one, not the next.
    """
    month = datetime.strptime((dated.group("month") or dated.group("month2"))[:3].title(), "%b").month
    number = int(dated.group("day") or dated.group("day2"))
    days = []
    for year in (reference.year - 1, reference.year, reference.year + 1):
        try:
            days.append(datetime(year, month, number, tzinfo=timezone.utc))
        except ValueError:  # February 29 in a common year, the 31st of a short month, year 0 or 10000
            continue
    if not days:
        return None
    today = _day(reference)
    begin = min(days, key=lambda d: (d - today) * 2 if d > today else today - d)  # the past, unless far nearer
    return begin, begin + timedelta(days=1)


def _add_months(when: datetime, months: int) -> datetime:
    index = when.year * 12 + when.month - 1 + months
    return when.replace(year=index // 12, month=index % 12 + 1)


def _day_of_month(day: int, reference: datetime) -> tuple[datetime, datetime] | None:
    """'the 15th': that day of the reference's month (a day), or of the month before if still to come."""
    month = reference.replace(day=1)
    if day > reference.day:
        month = (month - timedelta(days=1)).replace(day=1)
    try:
        begin = month.replace(day=day)
    except ValueError:  # the 31st of a 30-day month
        return None
    return begin, begin + timedelta(days=1)


def _parse(words: str, reference: datetime) -> tuple[datetime | None, str | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from dateparser.date import DateDataParser

        settings = {"RELATIVE_BASE": reference.replace(tzinfo=None), "PREFER_DATES_FROM": "past"}
        data = DateDataParser(languages=["en"], settings=settings).get_date_data(words)
    return data.date_obj, data.period


def _compound_range(match: re.Match[str], reference: datetime) -> TimeRange | None:
    """'between A and B', 'the week before A', 'the second week of A', 'early A'."""
    if match.group("a"):
        first, last = match.group("a"), match.group("b")
        year = re.search(r"\d{4}", last)
        if year and not re.search(r"\d{4}", first):  # "between May 3 and May 9, 2023": both in 2023
            first = f"{first} {year.group(0)}"
        a, b = _period_range(first, reference), _period_range(last, reference)
        return TimeRange(a[0], b[1], match.group(0)) if a and b and a[0] < b[1] else None
    if match.group("side"):
        span = _period_range(match.group("c"), reference)
        if span is None:
            return None
        week = timedelta(days=7)
        if match.group("side").lower() == "before":
            return TimeRange(span[0] - week, span[0], match.group(0))
        return TimeRange(span[1], span[1] + week, match.group(0))
    if match.group("nth"):
        span = _period_range(match.group("d"), reference)
        if span is None:
            return None
        nth = match.group("nth").lower()
        begin = span[1] - timedelta(days=7) if nth == "last" else span[0] + timedelta(days=7 * _NTH[nth])
        return TimeRange(begin, min(begin + timedelta(days=7), span[1]), match.group(0))
    span = _period_range(match.group("e"), reference)
    if span is None:
        return None
    third = (span[1] - span[0]) / 3
    begin = span[0] + third * _PART[match.group("part").lower()]
    end = span[1] if _PART[match.group("part").lower()] == 2 else begin + third
    return TimeRange(_day(begin), _day(end), match.group(0))


def _day(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


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
    for compound in _COMPOUND.finditer(query):
        try:
            found = _compound_range(compound, reference)
        except (OverflowError, ValueError):  # at the edge of the calendar
            found = None
        if found is not None:
            return found
    for match in _FIND.finditer(query):
        if match.group("what").lower() in _VAGUE:  # "what did she do recently?" is not a window to confine to
            continue
        span = _period_range(_tensed(match.group("what"), query), reference)
        if span is None:
            continue
        edge = (match.group("edge") or "").strip().lower()
        start, end = span
        if edge in ("before", "until"):
            return TimeRange(None, start, match.group(0))
        if edge in ("after",):
            return TimeRange(end, None, match.group(0))
        if edge == "since":
            return TimeRange(start, None, match.group(0))
        return TimeRange(start, end, match.group(0))
    return None


def asks_when(query: str) -> bool:
    """A question whose answer is a time: "When did…", "How long…", "What year…"."""
    return _ASKS_WHEN.search(query) is not None


def names_time(text: str) -> bool:
    """Whether ``text`` names a time ("yesterday", "last Friday", "in May 2023", "for two years")."""
    return _may_name_time(text) and (_FIND.search(text) is not None or _DURATION.search(text) is not None)


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
    if not _may_name_time(text):
        return False
    for match in _FIND.finditer(text):
        found = _period_range(_tensed(match.group("what"), text), as_utc(said))
        if found is not None and TimeRange(found[0], found[1]).overlaps(span):
            return True
    return False


def _tensed(phrase: str, text: str) -> str:
    """ "on Friday" as the coming Friday when the text speaks of what is to come ("what do I have
    on Friday?", "see you on Friday!"), else dateparser's: the last one."""
    if _ON_WEEKDAY.fullmatch(phrase) and _AHEAD.search(text):
        return "next " + phrase.split()[-1]
    return phrase


def _iso(when: datetime) -> str:
    return as_utc(when).isoformat()


def range_filter(time_range: TimeRange) -> dict[str, Any]:
    """Memories whose event time (occurred_at, else created_at) lies in the range."""

    def within(field: str) -> list[dict[str, Any]]:
        conds: list[dict[str, Any]] = []
        if time_range.start is not None:
            conds.append({field: {"gte": _iso(time_range.start)}})
        if time_range.end is not None:
            conds.append({field: {"lt": _iso(time_range.end)}})
        return conds

    return {"OR": [
        {"AND": [{"occurred_at": {"exists": True}}, *within("occurred_at")]},
        {"AND": [{"NOT": {"occurred_at": {"exists": True}}}, *within("created_at")]},
    ]}  # fmt: skip


def as_of_filter(when: datetime) -> dict[str, Any]:
    """What held at ``when`` (valid time): begun by then — ``valid_from``, else the event time
    ``occurred_at``, else ``created_at`` — and not ended (``valid_to``), not forgotten."""
    at = _iso(when)
    no = {field: {"NOT": {field: {"exists": True}}} for field in ("valid_from", "occurred_at")}
    return {"AND": [
        {"state": {"ne": "forgotten"}},
        {"OR": [
            {"valid_from": {"lte": at}},
            {"AND": [no["valid_from"], {"occurred_at": {"lte": at}}]},
            {"AND": [no["valid_from"], no["occurred_at"], {"created_at": {"lte": at}}]},
        ]},
        {"OR": [{"NOT": {"valid_to": {"exists": True}}}, {"valid_to": {"gt": at}}]},
        {"OR": [{"NOT": {"expires_at": {"exists": True}}}, {"expires_at": {"gt": at}}]},
    ]}  # fmt: skip
