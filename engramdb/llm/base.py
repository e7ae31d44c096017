"""The LLM protocol: one structured call, a JSON object back, the tokens it cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..models import Usage


@dataclass
class LLMReply:
    data: dict[str, Any]
    usage: Usage


class LLM(Protocol):
    """Anything that answers a prompt with a JSON object matching ``schema``.

    Implementations raise ``ProviderError`` when no valid object could be had (after their
    own retries): callers then keep the raw messages and retry the extraction later.
    """

    name: str

    def complete_json(self, system: str, user: str, *, schema_name: str, schema: dict[str, Any]) -> LLMReply: ...
