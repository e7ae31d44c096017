"""Validate what a caller hands to ``add`` and turn it into records ready for the store.

Everything is checked before anything is written, so bad input leaves the store unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pydantic

from .config import MemoryConfig
from .errors import ValidationError
from .filters import And, Node, parse_filter
from .models import (
    MEMORY_KINDS,
    MemoryItem,
    Message,
    Provenance,
    Scope,
    as_utc,
    check_metadata_depth,
    content_hash,
    is_unicode,
    new_id,
    storable,
    utcnow,
)

MessagesInput = str | Mapping[str, Any] | Message | Sequence[Mapping[str, Any] | Message | str]
MAX_PAGE = 1000  # the most memories one call returns: a page, a search, a context section


def make_scope(user_id: str | None, agent_id: str | None, session_id: str | None, *, required: bool) -> Scope:
    """Build a scope, insisting on at least one id when ``required`` (every write)."""
    for name, value in (("user_id", user_id), ("agent_id", agent_id), ("session_id", session_id)):
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{name} must be a string, got {type(value).__name__}")
    try:
        scope = Scope(user_id=user_id, agent_id=agent_id, session_id=session_id)
    except pydantic.ValidationError as exc:
        raise ValidationError(first_error(exc)) from exc
    if required and scope.is_empty():
        raise ValidationError("at least one of user_id, agent_id or session_id is required")
    return scope


def owner_scope(scope: Scope) -> Scope:
    """Derived memories belong to the user (or agent) across sessions; the session stays in provenance.

    A memory of a session alone (no user, no agent) is owned by that session.
    """
    if scope.user_id is None and scope.agent_id is None:
        return scope
    return Scope(user_id=scope.user_id, agent_id=scope.agent_id)


def same_owner(item: MemoryItem, other: MemoryItem) -> bool:
    """Whether ``other`` lies in ``item``'s own scope (``owner_scope``): the same user and agent,
    whatever the session, or the same session for a memory of a session alone."""
    return owner_scope(_scope_of(item)) == owner_scope(_scope_of(other))


def _scope_of(item: MemoryItem) -> Scope:
    return Scope(user_id=item.user_id, agent_id=item.agent_id, session_id=item.session_id)


def normalize_messages(messages: MessagesInput, max_batch: int) -> list[Message]:
    """Accept a string, one message dict, or a list of OpenAI-style messages (or strings)."""
    if isinstance(messages, (str, Mapping, Message)):
        items: Sequence[Any] = [messages]
    elif isinstance(messages, Sequence):
        items = messages
    else:
        raise ValidationError(
            f"messages must be a string, a message dict or a list of them, not {type(messages).__name__}"
        )
    if not items:
        raise ValidationError("messages is empty")
    if len(items) > max_batch:
        raise ValidationError(f"{len(items)} messages in one add; the limit is {max_batch}")
    return [_message(item, i) for i, item in enumerate(items)]


def _message(item: Any, position: int) -> Message:
    if isinstance(item, Message):
        return item
    if isinstance(item, str):
        item = {"role": "user", "content": item}
    if not isinstance(item, Mapping):
        raise ValidationError(f"message {position} must be a string or a dict, not {type(item).__name__}")
    data = dict(item)
    if isinstance(data.get("content"), list):
        data["content"] = _text_parts(data["content"], position)
    try:
        return Message.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"message {position}: {first_error(exc)}") from exc


def _text_parts(parts: list[Any], position: int) -> str:
    """OpenAI content parts: text parts are joined; any other part is refused, not dropped."""
    texts = []
    for part in parts:
        if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ValidationError(f"message {position}: only text content parts can be stored")
        texts.append(part["text"])
    return "\n".join(texts)


def check_metadata(metadata: Any, config: MemoryConfig) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise ValidationError("metadata must be a JSON object with string keys")
    check_metadata_depth(metadata)  # before json.dumps, which would exhaust the recursion limit
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata is not JSON-serialisable: {exc}") from exc
    if "\\u0000" in encoded or not is_unicode(json.dumps(metadata, ensure_ascii=False)):
        raise ValidationError("metadata strings must be valid Unicode without NUL characters")
    if len(encoded.encode()) > config.max_metadata_bytes:
        raise ValidationError(f"metadata is over {config.max_metadata_bytes} bytes")
    return dict(json.loads(encoded))


def check_text(text: Any, config: MemoryConfig, what: str = "text") -> str:
    if not isinstance(text, str):
        raise ValidationError(f"{what} must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ValidationError(f"{what} is empty")
    if len(text) > config.max_text_chars:
        raise ValidationError(f"{what} has {len(text)} characters; the limit is {config.max_text_chars}")
    if "\x00" in text:
        raise ValidationError(f"{what} contains a NUL character")
    if not is_unicode(text):
        raise ValidationError(f"{what} is not valid Unicode (it contains a lone surrogate)")
    return text


def check_kind(kind: Any) -> str:
    if kind not in MEMORY_KINDS:
        raise ValidationError(f"unknown kind {kind!r}: use one of {', '.join(MEMORY_KINDS)}")
    return str(kind)


def page_filter(filters: dict[str, Any] | None, kind: str | None) -> Node | None:
    """A listing's filter: the caller's, and the kind it asks for (both checked, each parsed once)."""
    where = parse_filter(filters)
    if kind is None:
        return where
    wanted = parse_filter({"kind": check_kind(kind)})
    if where is None or wanted is None:
        return wanted or where
    return And((where, wanted))  # as parsing {"AND": [filters, kind]} gives


def check_importance(importance: Any) -> float:
    if isinstance(importance, bool) or not isinstance(importance, (int, float)) or not 0 <= importance <= 1:
        raise ValidationError("importance must be a number between 0 and 1")
    return float(importance)


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """An integer in [low, high]; ``True`` is refused, though Python counts it as 1."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be an integer between {low} and {high}")
    return value


def check_limit(limit: Any) -> int:
    """How many memories a read returns: the one bound every read shares (``MAX_PAGE``)."""
    return check_int(limit, "limit", 1, MAX_PAGE)


def check_id(memory_id: Any) -> str:
    """A memory or job id as a caller gives it; the store answers NotFoundError for an unknown one."""
    if not isinstance(memory_id, str) or not memory_id.strip() or len(memory_id) > 64:
        raise ValidationError("memory_id must be a non-empty string of at most 64 characters")
    if not storable(memory_id):
        raise ValidationError("memory_id contains a NUL character or a lone surrogate")
    return memory_id


def required_datetime(value: datetime | str, name: str) -> datetime:
    """``check_datetime`` for a value the caller has already found to be given."""
    when = check_datetime(value, name)
    assert when is not None
    return when


def local_datetime(value: datetime | str, name: str) -> datetime:
    """A datetime with the offset it was given in (its days are that place's); naive is UTC."""
    when = parse_datetime(value, name)
    assert when is not None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def check_datetime(value: Any, name: str) -> datetime | None:
    """``value`` (a datetime or ISO 8601 text) in UTC; naive is UTC."""
    when = parse_datetime(value, name)
    return None if when is None else as_utc(when)


def parse_datetime(value: Any, name: str) -> datetime | None:
    """``value`` (a datetime or ISO 8601 text) with the offset it was given in; naive stays naive."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError(f"{name} is not an ISO 8601 datetime: {value!r}") from exc
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime")
    return value


def index_text(text: str) -> str:
    """What is embedded and indexed for a memory.

    The words alone: with a static embedder a speaker's name prefixed to every turn
    dominates the vector, so "what can alice eat?" would prefer anything Alice said over
    what she eats. The speaker is kept in its own FTS column and in provenance instead.
    """
    return text


def index_texts(texts: list[str], context_turns: int, context_words: int) -> list[str]:
    """The full-text entry of each message: it and the words of up to ``context_turns``
    messages before it, within ``context_words`` words in all, the nearest words first.

    A reply ("Yes, last May with my sister") rarely repeats what it answers; indexing it with
    the turns it follows makes it findable by the question's words. On LoCoMo one preceding
    turn lifts overall evidence recall@10 from 0.529 to 0.609, and two, with the speaker
    factor of search, to 0.77 (docs/benchmarks.md). A long turn needs no context and is
    diluted by it (its BM25 length grows, and it matches the words of what came before), so
    the budget counts the message's own words first: a long answer stands alone, and a short
    follow-up to it takes the answer's last words, nearest to it. The stored ``memory`` text
    stays verbatim, and the vector is of the message alone.
    """
    out = []
    for i, text in enumerate(texts):
        own = index_text(text)
        budget = context_words - len(own.split())
        context: list[str] = []
        for before in reversed(texts[max(0, i - context_turns) : i]):
            if budget <= 0:
                break
            words = index_text(before).split()
            context = words[-budget:] + context
            budget -= len(words)
        out.append(" ".join([*context, own]))
    return out


def build_item(
    message: Message,
    scope: Scope,
    *,
    kind: str,
    metadata: dict[str, Any],
    occurred_at: datetime | None,
    importance: float,
    expires_at: datetime | None,
) -> MemoryItem:
    now = utcnow()
    return MemoryItem(
        id=new_id(),
        memory=message.content,
        kind=kind,  # type: ignore[arg-type]
        hash=content_hash(message.content),
        user_id=scope.user_id,
        agent_id=scope.agent_id,
        session_id=scope.session_id,
        metadata=metadata,
        provenance=Provenance(role=message.role, name=message.name, message_id=message.id, session_id=scope.session_id),
        created_at=now,
        updated_at=now,
        occurred_at=as_utc(message.timestamp) if message.timestamp else occurred_at,
        valid_from=as_utc(message.timestamp) if message.timestamp else occurred_at or now,
        importance=importance,
        expires_at=expires_at,
    )


def first_error(exc: pydantic.ValidationError) -> str:
    """A pydantic error as one line naming the field: ``context_turns: Input should be ...``."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
