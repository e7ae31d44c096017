"""Derived memories: extractors (rules offline, an LLM when configured), reconciliation, jobs."""

from __future__ import annotations

from ..config import MemoryConfig
from .models import Candidate, Decision
from .pipeline import Deriver, Extractor, Merger, Reconciler
from .rules import RuleExtractor


def make_extractor(config: MemoryConfig) -> Extractor:
    """The LLM extractor when an LLM is configured, else the rule-based one (no network)."""
    if config.llm is None:
        return RuleExtractor()
    from ..llm import OpenAIChat
    from .llm import LLMExtractor

    return LLMExtractor(OpenAIChat(config.llm), config.llm)


__all__ = ["Candidate", "Decision", "Deriver", "Extractor", "Merger", "Reconciler", "RuleExtractor", "make_extractor"]
