"""LoCoMo's file format: conversations, their dated sessions and their questions with evidence.

Shared by the engramdb run (``locomo``) and the BM25 baseline (``baseline``), which read the
same conversations and score the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


@dataclass
class Question:
    text: str
    category: int
    evidence: set[str]


@dataclass
class Conversation:
    sample_id: str
    sessions: list[tuple[str, datetime | None, list[dict[str, Any]]]]
    questions: list[Question] = field(default_factory=list)


def parse_date(text: str) -> datetime | None:
    """LoCoMo dates look like '1:56 pm on 8 May, 2023'."""
    try:
        return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def load(path: Path, limit: int | None = None) -> list[Conversation]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    conversations = []
    for sample in raw[:limit]:
        conv = sample["conversation"]
        numbers = sorted(int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k)))
        sessions = [
            (f"session_{n}", parse_date(conv.get(f"session_{n}_date_time", "")), conv[f"session_{n}"]) for n in numbers
        ]
        questions = [
            Question(
                q["question"],
                int(q["category"]),
                {e for ev in q.get("evidence", []) for e in re.split(r"[;,\s]+", ev) if e},
            )
            for q in sample["qa"]
        ]
        conversations.append(Conversation(sample["sample_id"], sessions, questions))
    return conversations


def turn_message(turn: dict[str, Any], when: datetime | None) -> dict[str, Any]:
    text = turn.get("text", "")
    if turn.get("blip_caption"):
        text = f"{text} [photo: {turn['blip_caption']}]".strip()
    message: dict[str, Any] = {"role": "user", "name": turn["speaker"], "content": text, "id": turn["dia_id"]}
    if when is not None:
        message["timestamp"] = when
    return message


def mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0
