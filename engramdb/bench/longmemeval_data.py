"""LongMemEval questions as ``bench longmemeval`` reads them (Wu et al., ICLR 2025; data MIT).

Each question carries its haystack: sessions of user ↔ assistant turns with a date, some
turns marked ``has_answer``. A turn is named ``"<session id>:<index>"``, so evidence can be
compared whichever scope the turn was stored in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ValidationError

Recall = dict[str, dict[str, dict[int, list[float]]]]  # level -> question type -> k -> per-question recall
TYPES = (
    "temporal-reasoning", "multi-session", "knowledge-update", "single-session-user",
    "single-session-assistant", "single-session-preference",
)  # fmt: skip


@dataclass(frozen=True)
class Session:
    id: str
    date: datetime
    turns: list[dict[str, Any]]  # {"role", "content", "has_answer"?}


@dataclass
class Question:
    id: str
    type: str
    text: str
    date: datetime
    sessions: list[Session]
    evidence: set[str] = field(default_factory=set)  # turn names with has_answer
    answer_sessions: set[str] = field(default_factory=set)


def parse_date(value: str) -> datetime:
    """``"2023/05/20 (Sat) 02:21"`` as UTC (the dataset gives no offset)."""
    try:
        day, _, clock = value.partition(") ")
        return datetime.strptime(f"{day.split(' (')[0]} {clock}", "%Y/%m/%d %H:%M").replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValidationError(f"unreadable LongMemEval date {value!r}") from exc


def load(path: Path, limit: int | None = None) -> list[Question]:
    """The questions of a LongMemEval JSON file (a list of question objects)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"cannot read LongMemEval data {path}: {exc}") from exc
    if not isinstance(raw, list):
        raise ValidationError(f"{path}: expected a list of LongMemEval questions")
    return [_question(q) for q in raw[:limit]]


def _question(q: dict[str, Any]) -> Question:
    try:
        haystack = zip(q["haystack_session_ids"], q["haystack_dates"], q["haystack_sessions"], strict=True)
        sessions = [Session(sid, parse_date(date), list(turns)) for sid, date, turns in haystack]
        evidence = {
            f"{sid}:{i}" for sid, turns in zip(q["haystack_session_ids"], q["haystack_sessions"], strict=True)
            for i, t in enumerate(turns) if t.get("has_answer")
        }  # fmt: skip
        return Question(q["question_id"], q["question_type"], q["question"], parse_date(q["question_date"]),
                        sessions, evidence, set(q.get("answer_session_ids") or ()))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"malformed LongMemEval question {q.get('question_id', '?')!r}: {exc}") from exc


def said(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """The session's turns that say something, each with its name (its index in the session)."""
    return [(f"{session.id}:{i}", t) for i, t in enumerate(session.turns) if str(t.get("content", "")).strip()]


def score(hits: list[str], turn_of: dict[str, set[str]], q: Question, ks: list[int], recall: Recall) -> None:
    """Record the question's turn- and session-level recall@k for the ranked memory ids."""
    for k in ks:
        turns = set().union(*(turn_of.get(h, set()) for h in hits[:k]))
        sessions = {t.rsplit(":", 1)[0] for t in turns}
        for level, found, wanted in (("turn", turns, q.evidence), ("session", sessions, q.answer_sessions)):
            if wanted:
                value = len(found & wanted) / len(wanted)
                recall[level][q.type][k].append(value)
                recall[level]["overall"][k].append(value)
