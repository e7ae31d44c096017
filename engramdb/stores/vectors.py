"""An exact, in-memory vector index mirrored from the store file.

Why exact and not HNSW: recall is per user, so a search scans one scope, which is small
(hundreds to tens of thousands of memories); a masked matrix-vector product over it is
exact, needs no tuning, and costs a few milliseconds even at 100k rows of 256 floats.
Filtering happens *before* scoring (a boolean mask from scope columns, or the row ids a
SQL filter allowed), so a filtered search never comes back short the way a post-filtered
ANN search does. The file stays the source of truth: the index is rebuilt from it on open
and kept current through a change sequence, so several processes may share one file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

NO_VALUE = -1


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


class VectorIndex:
    """Rows live in slots of growable numpy arrays; removed slots are masked, then compacted."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.seq = -1
        self._codes: dict[str, int] = {}
        self._slot: dict[int, int] = {}
        self._ids: list[str | None] = []
        self._size = 0
        self._alloc(1024)

    def _alloc(self, capacity: int) -> None:
        def grow(old: np.ndarray | None, shape: tuple[int, ...], dtype: type, fill: object) -> np.ndarray:
            new: np.ndarray = np.full(shape, fill, dtype=dtype)
            if old is not None:
                new[: self._size] = old[: self._size]
            return new

        get = self.__dict__.get
        self._matrix = grow(get("_matrix"), (capacity, self.dimension), np.float32, 0)
        self._tenant = grow(get("_tenant"), (capacity,), np.int32, NO_VALUE)
        self._user = grow(get("_user"), (capacity,), np.int32, NO_VALUE)
        self._agent = grow(get("_agent"), (capacity,), np.int32, NO_VALUE)
        self._session = grow(get("_session"), (capacity,), np.int32, NO_VALUE)
        self._active = grow(get("_active"), (capacity,), np.bool_, False)
        self._expires = grow(get("_expires"), (capacity,), np.float64, np.inf)
        self._rowid = grow(get("_rowid"), (capacity,), np.int64, NO_VALUE)

    def _code(self, value: str | None, *, create: bool = True) -> int:
        if value is None:
            return NO_VALUE
        code = self._codes.get(value)
        if code is None:
            if not create:
                return -2  # matches nothing
            code = self._codes[value] = len(self._codes)
        return code

    def __len__(self) -> int:
        return len(self._slot)

    def upsert(self, rows: Iterable[IndexRow]) -> None:
        for row in rows:
            slot = self._slot.get(row.rowid)
            if slot is None:
                if self._size == len(self._active):
                    self._alloc(len(self._active) * 2)
                slot = self._size
                self._size += 1
                self._slot[row.rowid] = slot
                self._ids.append(row.id)
            self._matrix[slot] = row.vector
            self._tenant[slot] = self._code(row.tenant_id)
            self._user[slot] = self._code(row.user_id)
            self._agent[slot] = self._code(row.agent_id)
            self._session[slot] = self._code(row.session_id)
            self._active[slot] = row.active
            self._expires[slot] = row.expires
            self._rowid[slot] = row.rowid

    def remove(self, rowids: Iterable[int]) -> None:
        for rowid in rowids:
            slot = self._slot.pop(rowid, None)
            if slot is not None:
                self._active[slot] = False
                self._tenant[slot] = NO_VALUE
                self._ids[slot] = None
        if self._size > 4096 and len(self._slot) < self._size // 2:
            self._compact()

    def _compact(self) -> None:
        keep = np.array(sorted(self._slot.values()), dtype=np.int64)
        for name in ("_matrix", "_tenant", "_user", "_agent", "_session", "_active", "_expires", "_rowid"):
            array = getattr(self, name)
            array[: len(keep)] = array[keep]
        self._ids = [self._ids[i] for i in keep]
        self._size = len(keep)
        self._slot = {int(self._rowid[i]): i for i in range(self._size)}

    def mask(
        self,
        tenant_id: str,
        user_id: str | None,
        agent_id: str | None,
        session_id: str | None,
        *,
        include_inactive: bool,
        now: float,
    ) -> np.ndarray:
        """Slots visible to a query: same tenant, matching scope ids, active and unexpired."""
        n = self._size
        mask = self._tenant[:n] == self._code(tenant_id, create=False)
        for value, column in ((user_id, self._user), (agent_id, self._agent), (session_id, self._session)):
            if value is not None:
                mask &= column[:n] == self._code(value, create=False)
        if not include_inactive:
            mask &= self._active[:n]
            mask &= self._expires[:n] > now
        return np.asarray(mask, dtype=np.bool_)

    def restrict(self, mask: np.ndarray, rowids: Iterable[int]) -> np.ndarray:
        """Narrow a mask to the given row ids (those a SQL filter allowed)."""
        allowed = np.zeros_like(mask)
        slots = [self._slot[r] for r in rowids if r in self._slot]
        allowed[slots] = True
        return np.asarray(mask & allowed, dtype=np.bool_)

    def search(self, vector: np.ndarray, mask: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top-k (id, cosine similarity) among masked slots, best first."""
        slots = np.flatnonzero(mask)
        if len(slots) == 0 or k <= 0:
            return []
        if len(slots) * 3 > self._size:
            sims = (self._matrix[: self._size] @ vector)[slots]
        else:
            sims = self._matrix[slots] @ vector
        k = min(k, len(slots))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(str(self._ids[slots[i]]), float(sims[i])) for i in top]
