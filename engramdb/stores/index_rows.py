"""The rows the vector index is built from: one at a time (``IndexRow``), or a chunk of the
file column by column (``RowBlock``), as a catch-up reads it; and their vectors as int8."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class IndexRow:
    rowid: int
    id: str
    tenant_id: str
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    active: bool
    expires: float  # epoch seconds, inf when the memory never expires
    vector: np.ndarray
    episode: bool = False  # a message (kind ``episode``), which a derived memory's neighbours leave out


@dataclass(frozen=True)
class RowBlock:
    """Many rows column by column: how a rebuild hands the index a chunk of the file, with no
    object per row (a fresh process converts every row of the file)."""

    rowids: list[int]
    ids: list[str]
    tenant_ids: list[str]
    user_ids: list[str | None]
    agent_ids: list[str | None]
    session_ids: list[str | None]
    active: list[bool]
    expires: list[float]
    matrix: np.ndarray  # one row per rowid
    episode: list[bool]

    @classmethod
    def of(cls, rows: Sequence[IndexRow]) -> RowBlock:
        matrix = np.stack([r.vector for r in rows]) if rows else np.zeros((0, 0), np.float32)
        return cls([r.rowid for r in rows], [r.id for r in rows], [r.tenant_id for r in rows],
                   [r.user_id for r in rows], [r.agent_id for r in rows], [r.session_id for r in rows],
                   [r.active for r in rows], [r.expires for r in rows], matrix, [r.episode for r in rows])  # fmt: skip

    def take(self, positions: Sequence[int]) -> RowBlock:
        def pick(values: list[Any]) -> list[Any]:
            return [values[i] for i in positions]

        return RowBlock(pick(self.rowids), pick(self.ids), pick(self.tenant_ids), pick(self.user_ids),
                        pick(self.agent_ids), pick(self.session_ids), pick(self.active), pick(self.expires),
                        self.matrix[list(positions)], pick(self.episode))  # fmt: skip


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows as int8 with one float scale each (row ≈ q8 * scale): the copy a large scope's
    scan pre-selects on."""
    peak = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0, np.float32)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q8 = np.rint(vectors / scale[:, None]).clip(-127, 127).astype(np.int8)
    return q8, scale
