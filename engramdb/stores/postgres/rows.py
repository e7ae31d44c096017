"""Conversion between MemoryItem and PostgreSQL rows (dict rows, native types)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from ...models import ApiKey, HistoryEntry, Job, MemoryItem, MemoryState, Provenance, trusted
from ..portable import ITEM_TIMES, Table


def utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(timezone.utc)


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: json.dumps(v, allow_nan=False, separators=(",", ":")))


def item_from_row(row: dict[str, Any]) -> MemoryItem:
    data = dict(row)
    for key in ITEM_TIMES:
        data[key] = utc(data[key])
    data["memory"] = data.pop("text")
    data["provenance"] = trusted(
        Provenance,
        {"role": data.pop("role"), "name": data.pop("speaker"), "message_id": data.pop("source_message_id"),
         "session_id": data.pop("source_session_id")},
    )  # fmt: skip
    data["state"] = MemoryState(data["state"])
    data["importance"] = float(data["importance"])
    # rows were validated when written: rebuilding them skips a second validation (search's hot path)
    return trusted(MemoryItem, data)


def item_params(item: MemoryItem) -> dict[str, Any]:
    """Named parameters for an INSERT of every MemoryItem column."""
    p = item.provenance
    return {
        "id": item.id, "kind": item.kind, "text": item.memory, "hash": item.hash,
        "user_id": item.user_id, "agent_id": item.agent_id, "session_id": item.session_id,
        "metadata": jsonb(item.metadata),
        "role": p.role, "speaker": p.name, "source_message_id": p.message_id,
        "source_session_id": p.session_id,
        **{key: getattr(item, key) for key in ITEM_TIMES},
        "superseded_by": item.superseded_by, "state": item.state.value,
        "importance": item.importance, "access_count": item.access_count,
        "subject": item.subject, "slot": item.slot,
        "sources": jsonb(item.sources), "merged_from": jsonb(item.merged_from),
    }  # fmt: skip


def portable_row(spec: Table, row: dict[str, Any]) -> dict[str, Any]:
    """A row of a portable table as ``engramdb migrate`` carries it: UTC datetimes, float32 vectors."""
    for column in spec.datetimes:
        row[column] = utc(row[column])
    if "embedding" in row:
        row["embedding"] = np.asarray(row["embedding"].to_numpy(), dtype=np.float32)
    return row


def history_from_row(row: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry.model_validate({**row, "created_at": utc(row["created_at"])})


def key_from_row(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"], tenant_id=row["tenant_id"], name=row["name"], user_ids=row["user_ids"], admin=row["admin"],
        created_at=utc(row["created_at"]), revoked_at=utc(row["revoked_at"]),
    )  # fmt: skip


def job_from_row(row: dict[str, Any]) -> Job:
    result = row["result"] or {}
    return Job(
        id=row["id"], state=row["state"], attempts=row["attempts"], error=row["error"],
        created_at=utc(row["created_at"]), updated_at=utc(row["updated_at"]),
        results=result.get("results", []), usage=result.get("usage", {}),
        user_id=row["user_id"], agent_id=row["agent_id"], session_id=row["session_id"],
        episode_ids=(row["payload"] or {}).get("episode_ids", []),
    )  # fmt: skip
