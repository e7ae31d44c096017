"""``--abstention``: what the relevance threshold trades, as a curve.

A question asked in a scope that never spoke of it (another conversation's, another user's) has
no answer there: the search should return nothing. Each question is asked twice with threshold 0
(the whole ranking): in its own scope, where its recall@k is measured, and in another, where only
its best hit's relevance matters. A search answers when its best hit's relevance reaches the
threshold (``retrieval.relevance.abstains``), so one pair of searches gives every point of the
curve: threshold → share of wrong-scope questions that get nothing, right-scope recall@k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from ..models import SearchHit

THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Asked:
    """One right-scope question: its best hit's relevance and its recall@k with threshold 0."""

    best: float
    recall: float


def best_relevance(hits: Sequence[SearchHit]) -> float:
    return max((h.relevance or 0.0 for h in hits), default=0.0)


def answers(best: float, threshold: float) -> bool:
    """Whether a search whose best relevance is ``best`` returns anything at ``threshold``."""
    return threshold == 0 or best >= threshold


def curve(
    right: Sequence[Asked], wrong: Sequence[float], thresholds: Sequence[float] = THRESHOLDS
) -> list[dict[str, Any]]:
    """Per threshold: the share of wrong-scope questions abstained, and right-scope recall@k."""
    rows = []
    for t in thresholds:
        abstained = sum(not answers(b, t) for b in wrong) / len(wrong) if wrong else 0.0
        recall = sum(a.recall for a in right if answers(a.best, t)) / len(right) if right else 0.0
        kept = sum(answers(a.best, t) for a in right) / len(right) if right else 0.0
        rows.append({"threshold": t, "wrong_scope_abstained": round(abstained, 4), "recall": round(recall, 4),
                     "right_scope_answered": round(kept, 4)})  # fmt: skip
    return rows


def summary(right: Sequence[Asked], wrong: Sequence[float], k: int, default: float) -> dict[str, Any]:
    """The JSON part: the curve, its point at the default threshold, the questions it counts."""
    points = curve(right, wrong, sorted({*THRESHOLDS, default}))
    return {"k": k, "default_threshold": default, "right_questions": len(right), "wrong_questions": len(wrong),
            "at_default": next(p for p in points if p["threshold"] == default), "curve": points}  # fmt: skip


def render(part: dict[str, Any], title: str) -> Table:
    k = part["k"]
    table = Table(title=f"{title}: abstention trade-off ({part['wrong_questions']} questions in another scope)")
    for name in ("threshold", "wrong scope: nothing returned", f"right scope R@{k}", "right scope answered"):
        table.add_column(name, justify="right")
    for p in part["curve"]:
        mark = " (default)" if p["threshold"] == part["default_threshold"] else ""
        table.add_row(f"{p['threshold']:.2f}{mark}", f"{p['wrong_scope_abstained']:.3f}", f"{p['recall']:.3f}",
                      f"{p['right_scope_answered']:.3f}")  # fmt: skip
    return table
