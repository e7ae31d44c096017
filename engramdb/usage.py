"""What calls to an LLM cost: a value shared by results and by the errors that interrupt them.

Its own module so that ``errors`` can carry it without importing the models.
"""

from __future__ import annotations

from pydantic import BaseModel


class Usage(BaseModel):
    """LLM calls and tokens spent."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )
