"""What a time phrase means: "last week", "in May 2023", "two days ago" as a span of days.

Locating is a small set of phrase shapes (``PHRASE``: "last week", "in May 2023", "two days
ago", "before June", "last summer", "last Fri"; ``COMPOUND``: "between May 3 and May 9", "the
second week of June", "early 2023"). Resolving is calendar arithmetic for the shapes located
(``_by_hand``, ``_by_calendar``: relative days, weeks, months and years, weekdays, month names,
dates), held to dateparser's answers by the tests, and dateparser itself for anything else.
Where dateparser resolves otherwise than people mean (seasons, months said relative to now as
in "next August", a day without a year, "the past two weeks"), the arithmetic here is the meaning.
"""

from __future__ import annotations

import functools
import re
import warnings
from datetime import datetime, timedelta, timezone

from ..models import as_utc

MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_WEEKDAY_SHORT = r"(?:mon|tues?|wed|thu(?:rs?)?|fri|sat|sun)\.?"  # only after last/next: "sun" alone is the sun
_WEEKDAYS = {"mon": "monday", "tue": "tuesday", "tues": "tuesday", "wed": "wednesday", "thu": "thursday",
             "thur": "thursday", "thurs": "thursday", "fri": "friday", "sat": "saturday", "sun": "sunday"}  # fmt: skip
_SEASON = r"(?:spring|summer|fall|autumn|winter)"
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}  # first month (meteorological, north)
NUMBER = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|a couple of)"
_DATE = (  # a calendar date, month or year, without a preposition
    r"\d{1,2}(?:st|nd|rd|th)? (?:of )?" + MONTH + r",?(?: \d{4})?"
    r"|" + MONTH + r" \d{1,2}(?:st|nd|rd|th)?\b,?(?: \d{4})?"
    r"|" + MONTH + r",?(?: \d{4})?|\d{4}-\d{2}-\d{2}|\d{4}"
)
_PHRASES = [
    r"the day after tomorrow|yesterday|today|tonight|tomorrow|last night|the day before yesterday"
    r"|this (?:morning|afternoon|evening)",
    r"in " + NUMBER + r" (?:days?|weeks?|months?|years?)|" + NUMBER + r" (?:days?|weeks?|months?|years?) from now",
    r"(?:the )?(?:past|last) (?:few|couple of|" + NUMBER + r") (?:days|weeks|months|years)",
    r"this past (?:week|weekend|month|year)|(?:over|on|during) the weekend",
    r"(?:the )?(?:week|weekend|month|year) before last",
    r"recently|lately|the other day|(?:earlier|later) (?:today|this week|this month|this year)",
    r"(?:last|this|past|previous|next|coming) (?:week|weekend|month|year)",
    r"(?:last|this|next|on) " + WEEKDAY,
    r"(?:last|next) " + _WEEKDAY_SHORT + r"(?!\w)",
    NUMBER + r" (?:days?|weeks?|weekends?|months?|years?) ago",
    r"(?<!the )(?:last|past|next|coming) " + MONTH + r"|this (?!may\b)" + MONTH,  # "this may be" is not May
    r"(?:last|this|past|next|coming) " + _SEASON,
    r"(?:the )?" + _SEASON + r",? (?:of )?\d{4}",
    r"(?<=in )(?:the )?" + _SEASON + r"|(?<=during )(?:the )?" + _SEASON + r"|(?<=over )the " + _SEASON,
    r"(?:on |in )?(?:the )?\d{1,2}(?:st|nd|rd|th)? (?:of )?" + MONTH + r",?(?: \d{4})?",
    MONTH + r" \d{1,2}(?:st|nd|rd|th)?,? \d{4}",
    MONTH + r" \d{1,2}(?:st|nd|rd|th)?\b",
    MONTH + r",? \d{4}",
    r"\d{4}-\d{2}-\d{2}",
    r"(?:on )?the \d{1,2}(?:st|nd|rd|th)\b(?! (?:of )?" + MONTH + r")",  # a day of the month it was said in
    r"(?<=in )\d{4}|(?<=during )\d{4}|(?<=since )\d{4}|(?<=before )\d{4}|(?<=after )\d{4}",
    r"(?<=in )" + MONTH + r"|(?<=during )" + MONTH + r"|(?<=before )" + MONTH + r"|(?<=after )" + MONTH
    + r"|(?<=since )" + MONTH,
]  # fmt: skip
PHRASE = re.compile(r"\b(?P<edge>before |after |since |until )?(?P<what>" + "|".join(_PHRASES) + r")\b", re.I)
COMPOUND = re.compile(
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
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<month>" + MONTH + r")"
    r"|(?P<month2>" + MONTH + r") (?P<day2>\d{1,2})(?:st|nd|rd|th)?"
)
_SPAN = re.compile(r"(?P<rel>past|last) (?:(?P<n>\d+) )?(?P<unit>day|week|month|year)s?")
_RECENT = {  # vague spans: days before the day said, days after its start
    "recently": (14, 1), "lately": (14, 1), "other day": (7, 0),
    "this morning": (0, 1), "this afternoon": (0, 1), "this evening": (0, 1),
}  # fmt: skip


def period_range(text: str, reference: datetime) -> tuple[datetime, datetime] | None:
    """The span a phrase names: 'May 2023' is the month, 'last week' the week, 'yesterday' the day.

    Every span is whole days, so only the reference's day matters: the answer is cached per
    (phrase, day), as parsing costs dateparser most of a millisecond and the same few phrases
    ("last week", "yesterday") recur in memories re-ranked query after query.
    """
    return _day_range(text.lower().strip(), start_of_day(as_utc(reference)))


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
    if found is None:
        found = _by_calendar(words, reference)
    return found if found is not None else _by_dateparser(words, reference)


_DAYS = {"day before yesterday": -2, "yesterday": -1, "last night": -1, "today": 0, "tonight": 0, "tomorrow": 1,
         "day after tomorrow": 2}  # fmt: skip
_COUNTED = re.compile(r"(?P<n>\d+) (?P<unit>day|week|weekend|month|year)s? (?P<way>ago|from now)")
_RELATIVE = re.compile(r"(?P<rel>last|this|next) (?P<unit>week|weekend|month|year)")
_ON_DAY = re.compile(r"(?:(?P<rel>last|this|next) )?(?P<day>" + WEEKDAY + ")")
_FULL_DATE = re.compile(
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<month>" + MONTH + r"),? (?P<year>\d{4})"
    r"|(?P<month2>" + MONTH + r") (?P<day2>\d{1,2})(?:st|nd|rd|th)?,? (?P<year2>\d{4})"
)
_STEP = {"last": -1, "this": 0, "next": 1}


def _by_calendar(words: str, reference: datetime) -> tuple[datetime, datetime] | None:
    """The shapes that are plain calendar arithmetic, resolved as dateparser resolves them.

    Each is a few lines here, where dateparser spends milliseconds per phrase (and a second
    compiling its patterns on first use) on a phrase ``PHRASE`` has already taken apart: the
    cost fell on every search naming a time. ``tests/test_time_phrases.py`` holds the two to the
    same answers; dateparser keeps what is not one of these shapes.
    """
    today = start_of_day(reference)
    if (offset := _DAYS.get(words)) is not None:
        return _period(today + timedelta(days=offset), "day")
    if counted := _COUNTED.fullmatch(words):
        n = int(counted.group("n")) * (-1 if counted.group("way") == "ago" else 1)
        return _period(_moved_by(today, n, counted.group("unit")), counted.group("unit"))
    if relative := _RELATIVE.fullmatch(words):
        step, unit = _STEP[relative.group("rel")], relative.group("unit")
        return _period(_moved_by(today, step, unit), unit)
    if on_day := _ON_DAY.fullmatch(words):
        ahead = (_weekday(on_day.group("day")) - today.weekday()) % 7
        relation = on_day.group("rel")
        if relation == "this":  # the coming one, today included
            return _period(today + timedelta(days=ahead), "day")
        if relation == "next":  # the coming one, today excluded
            return _period(today + timedelta(days=ahead or 7), "day")
        return _period(today - timedelta(days=(7 - ahead) % 7 or 7), "day")  # last / none: the latest gone
    if re.fullmatch(MONTH, words):  # the latest begun, this month included
        month = datetime.strptime(words[:3].title(), "%b").month
        year = today.year if month <= today.month else today.year - 1
        return _period(datetime(year, month, 1, tzinfo=timezone.utc), "month")
    if dated := _FULL_DATE.fullmatch(words):
        month = datetime.strptime((dated.group("month") or dated.group("month2"))[:3].title(), "%b").month
        day, year = int(dated.group("day") or dated.group("day2")), int(dated.group("year") or dated.group("year2"))
        return _period(datetime(year, month, day, tzinfo=timezone.utc), "day")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", words):
        return _period(datetime.fromisoformat(words).replace(tzinfo=timezone.utc), "day")
    if re.fullmatch(r"\d{4}", words) and int(words) > 0:
        return _period(datetime(int(words), 1, 1, tzinfo=timezone.utc), "year")
    return None


def _weekday(name: str) -> int:
    return ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday").index(name)


def _moved_by(today: datetime, count: int, unit: str) -> datetime:
    if unit in ("day", "week", "weekend"):
        return today + timedelta(days=count * (1 if unit == "day" else 7))
    months = count * (12 if unit == "year" else 1)
    index = today.year * 12 + today.month - 1 + months
    year, month = index // 12, index % 12 + 1
    last = (_add_months(datetime(year, month, 1, tzinfo=timezone.utc), 1) - timedelta(days=1)).day
    return today.replace(year=year, month=month, day=min(today.day, last))


def _period(day: datetime, unit: str) -> tuple[datetime, datetime]:
    """The day, week (Monday first), weekend, month or year that ``day`` falls in."""
    if unit in ("week", "weekend"):
        monday = day - timedelta(days=day.weekday())
        return (monday + timedelta(days=5 if unit == "weekend" else 0), monday + timedelta(days=7))
    if unit == "month":
        begin = day.replace(day=1)
        return begin, _add_months(begin, 1)
    if unit == "year":
        begin = day.replace(month=1, day=1)
        return begin, begin.replace(year=begin.year + 1)
    return day, day + timedelta(days=1)


def _by_hand(words: str, reference: datetime) -> tuple[datetime, datetime] | None:
    """The phrases resolved here rather than by dateparser; None for the others."""
    if ordinal := re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)", words):
        return _day_of_month(int(ordinal.group(1)), reference)
    if (named := _NAMED.fullmatch(words)) and (found := _named_period(named, reference)):
        return found
    if dated := _DAY_MONTH.fullmatch(words):
        return _nearest_day(dated, reference)
    if recent := _RECENT.get(words):
        return start_of_day(reference) - timedelta(days=recent[0]), start_of_day(reference) + timedelta(days=recent[1])
    span = _SPAN.fullmatch(words)
    if span and (span.group("n") or span.group("rel") == "past"):  # "the past two weeks" (not "last week")
        return _trailing(int(span.group("n") or 1), span.group("unit"), reference)
    if words == "weekend":  # "over the weekend": the latest begun
        saturday = start_of_day(reference) - timedelta(days=(reference.weekday() - 5) % 7)
        return saturday, saturday + timedelta(days=2)
    return None


def _trailing(count: int, unit: str, reference: datetime) -> tuple[datetime, datetime]:
    """The ``count`` ``unit``s up to and including the reference's day."""
    today = start_of_day(reference)
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
        begin = start_of_day(start - timedelta(days=start.weekday()))
        return (begin + timedelta(days=5), begin + timedelta(days=7)) if weekend else (begin, begin + timedelta(days=7))
    if period == "year" or re.fullmatch(r"\d{4}|(?:last|this|past|previous|next|coming) year|\d+ years? ago", words):
        begin = start_of_day(start).replace(month=1, day=1)
        return begin, begin.replace(year=begin.year + 1)
    if period == "month" or re.search(r"\bmonths?\b", words) or re.fullmatch(MONTH + r",? ?(?:\d{4})?", words):
        begin = start_of_day(start).replace(day=1)
        nxt = begin.replace(year=begin.year + 1, month=1) if begin.month == 12 else begin.replace(month=begin.month + 1)
        return begin, nxt
    begin = start_of_day(start)
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
        if not re.fullmatch(MONTH, name) or (relation is None and year is None):
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
        if relation is not None and _add_months(start, months) > start_of_day(reference):
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
    today = start_of_day(reference)
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


def start_of_day(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)
