"""Time in queries: find a temporal expression, resolve it to a range against a reference date.

Locating is a small set of phrase shapes ("last week", "in May 2023", "two days ago",
"before June"); resolving is dateparser's job (relative dates, month names, ordinals), with
its period (day, week, month, year) turned into a range. "before"/"after"/"since" open the
range on one side.
"""

from __future__ import annotations

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
_NUMBER = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|a couple of)"
_PHRASES = [
    r"yesterday|today|tonight|last night|the day before yesterday",
    r"(?:last|this|past|previous) (?:week|weekend|month|year)",
    _NUMBER + r" (?:days?|weeks?|months?|years?) ago",
    r"(?:on |in )?(?:the )?\d{1,2}(?:st|nd|rd|th)? (?:of )?" + _MONTH + r",?(?: \d{4})?",
    _MONTH + r" \d{1,2}(?:st|nd|rd|th)?,? \d{4}",
    _MONTH + r" \d{1,2}(?:st|nd|rd|th)?\b",
    _MONTH + r",? \d{4}",
    r"\d{4}-\d{2}-\d{2}",
    r"(?<=in )\d{4}|(?<=during )\d{4}|(?<=since )\d{4}|(?<=before )\d{4}|(?<=after )\d{4}",
    r"(?<=in )" + _MONTH + r"|(?<=during )" + _MONTH + r"|(?<=before )" + _MONTH + r"|(?<=after )" + _MONTH
    + r"|(?<=since )" + _MONTH,
]  # fmt: skip
_FIND = re.compile(r"\b(?P<edge>before |after |since |until )?(?P<what>" + "|".join(_PHRASES) + r")\b", re.I)
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a few": 3, "a couple of": 2}  # fmt: skip


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


def _period_range(text: str, reference: datetime) -> tuple[datetime, datetime] | None:
    """The span a phrase names: 'May 2023' is the month, 'last week' the week, 'yesterday' the day."""
    words = re.sub(r"^(?:on|in|the) ", "", text.lower().strip())
    for name, count in sorted(_NUMBERS.items(), key=lambda kv: -len(kv[0])):
        words = re.sub(rf"^{name} ", f"{count} ", words)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from dateparser.date import DateDataParser

        settings = {"RELATIVE_BASE": reference.replace(tzinfo=None), "PREFER_DATES_FROM": "past"}
        data = DateDataParser(languages=["en"], settings=settings).get_date_data(words)
    parsed, period = data.date_obj, data.period
    if parsed is None:
        return None
    start = parsed.replace(tzinfo=timezone.utc)
    if re.search(r"\bweek(end)?\b", words) or period == "week":
        begin = (start - timedelta(days=start.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        return begin, begin + timedelta(days=7)
    if period == "year" or re.fullmatch(r"\d{4}|(?:last|this|past|previous) year|\d+ years? ago", words):
        begin = start.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        return begin, begin.replace(year=begin.year + 1)
    if period == "month" or re.search(r"\bmonths?\b", words) or re.fullmatch(_MONTH + r",? ?\d{0,4}", words):
        begin = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = begin.replace(year=begin.year + 1, month=1) if begin.month == 12 else begin.replace(month=begin.month + 1)
        return begin, nxt
    begin = start.replace(hour=0, minute=0, second=0, microsecond=0)
    return begin, begin + timedelta(days=1)


def find_time_range(query: str, reference: datetime) -> TimeRange | None:
    """The first temporal expression in ``query`` as a range, or None."""
    for match in _FIND.finditer(query):
        span = _period_range(match.group("what"), as_utc(reference))
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
