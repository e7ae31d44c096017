"""Request bodies and answers of mem0's platform routes (``/v1/ping/``, ``/v3/memories/...``).

mem0's SDK sends more options than engramdb has. Each one it sends is declared here: those
that change nothing here are accepted (and say why), those engramdb cannot honour are
refused by name with a 400 (``refuse_unsupported``), never ignored; anything else fails the
schema (422), as on every route.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from ..compat.mem0_wire import Mem0Change, Mem0Entity, Mem0Memory, Mem0Query, translate
from ..errors import ValidationError
from .schemas import Metadata

_UNSUPPORTED: dict[str, str] = {
    "app_id": "engramdb scopes memories by user_id, agent_id and run_id only",
    "categories": "engramdb does not categorise memories (filter on metadata)",
    "custom_categories": "engramdb does not categorise memories",
    "custom_instructions": "extraction is configured on the server (its LLM and prompts)",
    "agent_custom_instructions": "extraction is configured on the server (its LLM and prompts)",
    "structured_data_schema": "engramdb does not extract structured data",
    "includes": "extraction is configured on the server",
    "excludes": "extraction is configured on the server",
    "immutable": "every engramdb memory can be updated",
    "enable_graph": "engramdb keeps no graph of entities",
    "metadata": "a search filters on metadata through filters={'metadata': {...}}",
    "timestamp": "an update keeps when a memory was said",
    "expiration_date": "an update changes text and metadata only",
}


_ASYNC_MODE = "accepted: the messages are stored before the answer, and extraction runs as the server is configured"


def refuse(name: str) -> NoReturn:
    """Refuse, by name, an option of mem0's that engramdb cannot honour (a 400)."""
    raise ValidationError(f"mem0's {name!r} is not supported by engramdb: {_UNSUPPORTED[name]}")


def refuse_unsupported(body: BaseModel, *names: str) -> None:
    """Refuse the first of these options the body sets to something (null and false ask for nothing)."""
    for name in names:
        if name in body.model_fields_set and getattr(body, name) not in (None, False):
            refuse(name)


class Mem0Scoped(BaseModel):
    """Whose memories: entity ids at the top level (mem0's v1) or in ``filters`` (v2 and v3).

    Strict: JSON's types are the schema's (``0`` is not ``false``, ``"5"`` is not ``5``).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = Field(None, description="engramdb's session_id")
    app_id: str | None = Field(None, description="refused: engramdb has no apps")
    filters: dict[str, Any] | None = Field(None, description="mem0's filters: {'AND': [{'user_id': ...}, ...]}")

    def translated(self) -> Mem0Query:
        refuse_unsupported(self, "app_id")
        return translate(self.filters, user_id=self.user_id, agent_id=self.agent_id, run_id=self.run_id)


class Mem0AddBody(Mem0Scoped):
    messages: str | dict[str, Any] | list[dict[str, Any]]
    metadata: Metadata = None
    infer: bool | None = None
    timestamp: int | float | None = Field(None, description="Unix time the messages were said")
    expiration_date: Annotated[date | None, Field(strict=False)] = Field(
        None, description="the last day the memories are recalled (YYYY-MM-DD)"
    )
    async_mode: bool | None = Field(None, description=_ASYNC_MODE)
    output_format: str | None = Field(None, description="accepted: there is one answer shape")
    version: str | None = Field(None, description="accepted: there is one answer shape")
    custom_categories: Any = None
    custom_instructions: Any = None
    agent_custom_instructions: Any = None
    structured_data_schema: Any = None
    includes: Any = None
    excludes: Any = None
    immutable: bool | None = None
    enable_graph: bool | None = None

    def occurred_at(self) -> datetime | None:
        return None if self.timestamp is None else _unix(self.timestamp, "timestamp")


class Mem0SearchBody(Mem0Scoped):
    query: str
    top_k: int | None = Field(None, description="how many results (default 10)")
    limit: int | None = Field(None, description="mem0 1.x's name for top_k")
    threshold: float | None = None
    rerank: bool | None = Field(None, description="accepted: results are already ranked by fusion")
    keyword_search: bool | None = Field(None, description="accepted: every search is vector and full text")
    fields: list[str] | None = Field(None, description="keep only these keys of each result")
    show_expired: bool | None = Field(None, description="also return expired and superseded memories")
    latest_only: bool | None = Field(None, description="false: also return superseded and expired memories")
    reference_date: str | int | None = Field(None, description="'now' for time phrases: YYYY-MM-DD or Unix time")
    categories: Any = None
    metadata: Any = None

    def include_invalid(self) -> bool:
        return bool(self.show_expired) or self.latest_only is False

    def count(self) -> int:
        return next((n for n in (self.top_k, self.limit) if n is not None), 10)

    def reference(self) -> datetime | str | None:
        if isinstance(self.reference_date, int):
            return _unix(self.reference_date, "reference_date")
        return self.reference_date


class Mem0ListBody(Mem0Scoped):
    start_date: str | None = Field(None, description="created on or after (ISO 8601)")
    end_date: str | None = Field(None, description="created on or before (ISO 8601)")
    show_expired: bool | None = Field(None, description="also return expired and superseded memories")
    latest_only: bool | None = Field(None, description="false: also return superseded and expired memories")
    categories: Any = None

    def include_invalid(self) -> bool:
        return bool(self.show_expired) or self.latest_only is False

    def where(self, query: Mem0Query) -> dict[str, Any] | None:
        """The translated filters with the date range ANDed to them."""
        span = {op: d for op, d in (("gte", self.start_date), ("lte", self.end_date)) if d is not None}
        parts = [p for p in (query.filters, {"created_at": span} if span else None) if p]
        return parts[0] if len(parts) == 1 else ({"AND": parts} if parts else None)


class Mem0UpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = None
    metadata: Metadata = None
    timestamp: int | float | str | None = None
    expiration_date: str | None = None


def _unix(value: float, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValidationError(f"{name} is not a Unix time engramdb can represent: {value!r}") from exc


# --- answers ---------------------------------------------------------------------------------


class Mem0Ping(BaseModel):
    """What mem0's clients check a key with; org and project are the key's tenant."""

    status: Literal["ok"] = "ok"
    message: str = "pong"
    org_id: str
    project_id: str
    user_email: str | None = None


class Mem0Added(BaseModel):
    results: list[Mem0Change]
    status: Literal["SUCCEEDED", "PENDING", "FAILED"]
    event_id: str | None = Field(None, description="the extraction job, when there is one")
    message: str


class Mem0Page(BaseModel):
    count: int
    next: str | None = None
    previous: str | None = None
    results: list[Mem0Memory]


class Mem0Results(BaseModel):
    results: list[dict[str, Any]] = Field(description="Mem0Memory objects, or the keys asked for by fields")


class Mem0Users(BaseModel):
    count: int
    next: str | None = None
    previous: str | None = None
    results: list[Mem0Entity]


class Mem0Message(BaseModel):
    message: str
    deleted: int | None = Field(None, description="how many memories were deleted")
