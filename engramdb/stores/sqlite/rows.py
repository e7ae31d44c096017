"""Conversion between MemoryItem and SQLite rows."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from ...filters import format_datetime
from ...models import ApiKey, HistoryEntry, Job, MemoryItem, MemoryState, Provenance, trusted
from ..portable import ITEM_TIMES


def to_db_time(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def from_db_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value)  # stored as ...ffffffZ, which Python reads as UTC


def item_from_row(row: sqlite3.Row) -> MemoryItem:
    data: dict[str, Any] = dict(zip(row.keys(), row, strict=True))
    for key in ITEM_TIMES:
        data[key] = from_db_time(data[key])
    data["memory"] = data.pop("text")
    data["metadata"] = _json(data["metadata"])
    data["sources"] = _json(data["sources"])
    data["merged_from"] = _json(data["merged_from"])
    data["provenance"] = trusted(
        Provenance,
        {"role": data.pop("role"), "name": data.pop("speaker"), "message_id": data.pop("source_message_id"),
         "session_id": data.pop("source_session_id")},
    )  # fmt: skip
    data["state"] = MemoryState(data["state"])
    # rows were validated when written: rebuilding them skips a second validation (search's hot path)
    return trusted(MemoryItem, data)


def _json(text: str) -> Any:
    """Most rows hold empty JSON: skip the parser for it (search converts rows on every query)."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return json.loads(text)


def item_params(item: MemoryItem) -> dict[str, Any]:
    """Named parameters for an INSERT of every MemoryItem column."""
    p = item.provenance
    return {
        "id": item.id, "kind": item.kind, "text": item.memory, "hash": item.hash,
        "user_id": item.user_id, "agent_id": item.agent_id, "session_id": item.session_id,
        "metadata": json.dumps(item.metadata, allow_nan=False, separators=(",", ":")),
        "role": p.role, "speaker": p.name, "source_message_id": p.message_id,
        "source_session_id": p.session_id,
        **{key: to_db_time(getattr(item, key)) for key in ITEM_TIMES},
        "superseded_by": item.superseded_by, "state": item.state.value,
        "importance": item.importance, "access_count": item.access_count,
        "subject": item.subject, "slot": item.slot,
        "sources": json.dumps(item.sources), "merged_from": json.dumps(item.merged_from),
    }  # fmt: skip


def history_from_row(row: sqlite3.Row) -> HistoryEntry:
    data: dict[str, Any] = {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite3.Row)
    data["created_at"] = from_db_time(data["created_at"])
    for key in ("old_metadata", "new_metadata"):
        data[key] = json.loads(data[key]) if data[key] is not None else None
    return HistoryEntry.model_validate(data)


def key_from_row(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"], tenant_id=row["tenant_id"], name=row["name"],
        user_ids=json.loads(row["user_ids"]) if row["user_ids"] is not None else None, admin=bool(row["admin"]),
        created_at=from_db_time(row["created_at"]), revoked_at=from_db_time(row["revoked_at"]),
    )  # fmt: skip


def job_from_row(row: sqlite3.Row) -> Job:
    result = json.loads(row["result"]) if row["result"] else {}
    return Job(
        id=row["id"], state=row["state"], attempts=row["attempts"], error=row["error"],
        created_at=from_db_time(row["created_at"]), updated_at=from_db_time(row["updated_at"]),
        results=result.get("results", []), usage=result.get("usage", {}),
        user_id=row["user_id"], agent_id=row["agent_id"], session_id=row["session_id"],
        episode_ids=json.loads(row["payload"]).get("episode_ids", []),
    )  # fmt: skip
