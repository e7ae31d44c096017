"""Decide what a candidate does to the store, and hold an LLM's decisions to the same rules.

The rules, whoever proposes: an exact or near duplicate is a NOOP; a new value for a
single-valued slot (residence, occupation…) of the same subject supersedes the old one
(UPDATE: the old version stays, with ``valid_to`` and ``superseded_by``); a retraction
invalidates what it names and adds nothing; an INVALIDATE without a retraction in the
messages is read as an UPDATE whose replacement is the candidate; a target must be one of
the memories the candidate was shown.
"""

from __future__ import annotations

import re

from ..models import MemoryItem
from ..retrieval.lexical import lexical_terms
from .models import Candidate, Decision

NEAR_DUPLICATE_COSINE = 0.95
NEAR_DUPLICATE_WORDS = 0.75
RETRACTION_COSINE = 0.8


def _normal(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.casefold()).strip()


def word_overlap(a: str, b: str) -> float:
    """Jaccard overlap of content words: "lives in Paris" and "lives in Berlin" share half."""
    wa, wb = set(lexical_terms(a)), set(lexical_terms(b))
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def is_near_duplicate(a: str, b: str, cosine: float) -> bool:
    """Same words up to case and punctuation, or both very close vectors and mostly the same words.

    Cosine alone is not enough: a static embedder puts "lives in Paris" and "lives in
    Berlin" close together, and those must not merge.
    """
    if _normal(a) == _normal(b):
        return True
    return cosine >= NEAR_DUPLICATE_COSINE and word_overlap(a, b) >= NEAR_DUPLICATE_WORDS


def _same_slot(candidate: Candidate, item: MemoryItem) -> bool:
    return bool(candidate.slot) and item.slot == candidate.slot and item.subject == candidate.subject


def rule_decision(index: int, candidate: Candidate, similar: list[tuple[MemoryItem, float]]) -> Decision:
    """The decision without an LLM."""
    if candidate.retraction:
        for item, cosine in similar:
            named = _same_slot(candidate, item) and word_overlap(candidate.text, item.memory) >= 0.5
            if (
                named
                or is_near_duplicate(candidate.text, item.memory, cosine)
                or (
                    not candidate.slot
                    and cosine >= RETRACTION_COSINE
                    and word_overlap(candidate.text, item.memory) >= 0.5
                )
            ):
                return Decision(candidate=index, action="INVALIDATE", target_id=item.id, reason="retracted")
        return Decision(candidate=index, action="NOOP", reason="nothing to retract")
    for item, cosine in similar:
        if is_near_duplicate(candidate.text, item.memory, cosine):
            return Decision(candidate=index, action="NOOP", target_id=item.id, reason="already known")
    for item, _ in similar:
        if _same_slot(candidate, item):
            return Decision(candidate=index, action="UPDATE", target_id=item.id, reason=f"new {candidate.slot}")
    return Decision(candidate=index, action="ADD")


def validate(
    index: int, candidate: Candidate, proposed: Decision | None, similar: list[tuple[MemoryItem, float]]
) -> Decision:
    """An LLM's decision, corrected where it breaks the rules (falls back to ``rule_decision``)."""
    fallback = rule_decision(index, candidate, similar)
    if proposed is None:
        return fallback
    shown = {item.id: (item, cosine) for item, cosine in similar}
    if fallback.action == "NOOP" and not candidate.retraction:
        return fallback  # a duplicate stays a NOOP whatever the model says
    action, target = proposed.action, proposed.target_id
    if action in ("UPDATE", "INVALIDATE") and target not in shown:
        action, target = ("NOOP", None) if candidate.retraction else ("ADD", None)
    if candidate.retraction and action in ("ADD", "UPDATE"):
        action = "INVALIDATE" if target in shown else "NOOP"
    if action == "INVALIDATE" and not candidate.retraction:
        action = "UPDATE"  # no retraction in the messages: the candidate is the replacement
    if action == "NOOP" and target not in shown:
        target = None
    return Decision(candidate=index, action=action, target_id=target, reason=proposed.reason)
