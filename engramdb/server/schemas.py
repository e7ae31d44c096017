"""Request bodies of the REST API: one pydantic model per route, validated before any handler runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..config import SearchOptions
from ..models import MAX_METADATA_DEPTH, check_metadata_depth


class NDJSONResponse(StreamingResponse):
    """One JSON document per line (the export), so the OpenAPI document names its real type."""

    media_type = "application/x-ndjson"


def _shallow(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refused with the request: metadata too deep to serialise, once stored, would fail every read of it."""
    check_metadata_depth(metadata)
    return metadata


Metadata = Annotated[
    dict[str, Any] | None,
    AfterValidator(_shallow),
    Field(description=f"a JSON object nested at most {MAX_METADATA_DEPTH} levels deep"),
]


class ScopeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    run_id: str | None = Field(None, description="mem0's name for session_id")

    @property
    def session(self) -> str | None:
        return self.session_id or self.run_id


class AddBody(ScopeBody):
    messages: str | dict[str, Any] | list[dict[str, Any]]
    metadata: Metadata = None
    kind: str = "episode"
    infer: bool | None = None
    occurred_at: datetime | None = None
    expires_at: datetime | None = None
    importance: float = 0.5


class SearchBody(ScopeBody):
    query: str
    filters: dict[str, Any] | None = None
    limit: int = 10
    threshold: float | None = Field(
        None, description="nothing is returned when no hit's relevance reaches it; null: the server's default, 0: never"
    )
    include_invalid: bool = False
    as_of: datetime | None = None
    time_range: tuple[datetime | None, datetime | None] | None = Field(None, description="[start, end), either null")
    reference_date: datetime | None = None
    explain: bool = False
    options: SearchOptions | None = Field(None, description="fusion weights and factors for this search")


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    memory: str | None = Field(None, description="mem0's name for text")
    data: str | None = Field(None, description="mem0's older name for text")
    metadata: Metadata = None


class ContextBody(ScopeBody):
    query: str
    max_tokens: int = 1500
    recent_turns: int = 8
    relevant: int = 10
    profile: int = 20
    reference_date: datetime | None = None
    encoding: str = "o200k_base"


class SummaryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    agent_id: str | None = None
    sentences: int = 3


class PruneBody(ScopeBody):
    policy: dict[str, Any] | None = None
    hard: bool = False
