"""The LLM extractor: one call to read the messages, one to reconcile with what is stored."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pydantic

from ..config import LLMConfig
from ..errors import ProviderError
from ..llm import LLM
from ..llm.prompts import prompt
from ..models import MemoryItem, Message, Usage
from .models import Candidate, Decision, ExtractionOutput, MergeOutput, ReconcileOutput
from .pipeline import Merger, Reconciler


class LLMExtractor:
    """Extracts, reconciles and merges by asking the LLM (every call is a request to it)."""

    name = "llm"
    blocking = True

    def __init__(self, llm: LLM, config: LLMConfig) -> None:
        self.llm = llm
        self.config = config
        self.reconciler: Reconciler = self
        self.merger: Merger = self

    def extract(
        self, messages: list[Message], *, reference: datetime, procedure: bool = False
    ) -> tuple[list[Candidate], Usage]:
        payload = {
            "reference_date": reference.date().isoformat(),
            "messages": [
                {"index": i, "role": m.role, "name": m.name, "content": m.content,
                 "timestamp": m.timestamp.isoformat() if m.timestamp else None}
                for i, m in enumerate(messages)
            ],
        }  # fmt: skip
        system = prompt("procedure" if procedure else "extract", self.config)
        output, usage = self._ask(system, payload, "memories", ExtractionOutput)
        candidates = [c for c in output.memories if all(0 <= s < len(messages) for s in c.sources)]
        for candidate in candidates:
            if procedure:
                candidate.kind = "procedure"
            if not candidate.sources:
                candidate.sources = list(range(len(messages)))
        return candidates, usage

    def reconcile(
        self, candidates: list[Candidate], neighbours: list[list[tuple[MemoryItem, float]]]
    ) -> tuple[dict[int, Decision], Usage]:
        payload = {
            "candidates": [
                {"index": i, "text": c.text, "subject": c.subject, "slot": c.slot, "retraction": c.retraction,
                 "existing": [{"id": m.id, "text": m.memory, "subject": m.subject, "slot": m.slot} for m, _ in near]}
                for i, (c, near) in enumerate(zip(candidates, neighbours, strict=True))
            ]
        }  # fmt: skip
        output, usage = self._ask(prompt("reconcile", self.config), payload, "decisions", ReconcileOutput)
        return {d.candidate: d for d in output.decisions if 0 <= d.candidate < len(candidates)}, usage

    def merge(self, texts: list[str]) -> tuple[str, Usage]:
        """One statement for a group of near-duplicates (consolidation)."""
        output, usage = self._ask(prompt("merge", self.config), {"memories": texts}, "merged", MergeOutput)
        return output.text, usage

    def _ask(self, system: str, payload: dict[str, Any], name: str, shape: type[Any]) -> tuple[Any, Usage]:
        reply = self.llm.complete_json(
            system, json.dumps(payload, ensure_ascii=False), schema_name=name, schema=shape.model_json_schema()
        )
        try:
            return shape.model_validate(reply.data), reply.usage
        except pydantic.ValidationError as exc:
            message = f"the LLM's {name} did not match the schema: {exc.errors()[0]['msg']}"
            raise ProviderError(message, usage=reply.usage) from exc
