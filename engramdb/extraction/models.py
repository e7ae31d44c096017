"""Shapes exchanged between extractors, the reconciler and the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..models import MemoryItem

DerivedKind = Literal["fact", "preference", "task", "procedure", "episode"]
Action = Literal["ADD", "UPDATE", "INVALIDATE", "NOOP"]


class Candidate(BaseModel):
    """One memory an extractor read in the messages, before it is compared with the store."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(..., min_length=1, max_length=2000)
    kind: DerivedKind = "fact"
    subject: str | None = Field(None, description="who it is about, by name")
    slot: str | None = Field(None, description="single-valued attribute it fills, e.g. 'residence'")
    occurred_at: datetime | None = None
    sources: list[int] = Field(default_factory=list, description="indices of the supporting messages")
    retraction: bool = Field(False, description="the messages take this back ('I no longer live in Paris')")

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _lenient_date(cls, value: object) -> object:
        return None if value in ("", "null", "unknown") else value


class ExtractionOutput(BaseModel):
    memories: list[Candidate] = Field(default_factory=list)


class Decision(BaseModel):
    """What to do with candidate ``candidate`` (an index); ``target_id`` names an existing memory."""

    model_config = ConfigDict(extra="ignore")

    candidate: int
    action: Action
    target_id: str | None = None
    reason: str | None = None


class ReconcileOutput(BaseModel):
    decisions: list[Decision] = Field(default_factory=list)


@dataclass
class Neighbourhood:
    """The memories a candidate is compared with: similar ones and those filling its slot."""

    similar: list[tuple[MemoryItem, float]]

    def ids(self) -> set[str]:
        return {item.id for item, _ in self.similar}


class MergeOutput(BaseModel):
    text: str = Field(..., min_length=1, max_length=4000)
