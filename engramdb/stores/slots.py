"""Which slots of the vector index each scope holds, so a scoped search reads only its own.

A boolean mask over the whole index costs a pass over every row per search: ~5 ms at a
million memories, for a user who holds a thousand. Here each (tenant, user), (tenant,
agent) and (tenant, session) keeps the list of its slots, appended as rows arrive; a scoped
search takes its list and checks the other conditions on those slots alone. A list may hold
slots whose row was removed since (``VectorIndex.remove`` clears a slot's tenant, which the
search checks); ``VectorIndex`` rebuilds the lists when slots move (compaction, a snapshot).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

USER, AGENT, SESSION = 0, 1, 2  # the scope columns, in the order ``add`` takes them
LOOP_ROWS = 64  # below this many new rows a Python loop is quicker than grouping with numpy


class ScopeSlots:
    def __init__(self) -> None:
        # a list read from a snapshot stays the mapped array until a slot is appended to it
        self._lists: dict[tuple[int, int, int], array[int] | np.ndarray] = {}

    def clear(self) -> None:
        self._lists = {}

    def add(self, start: int, tenant: np.ndarray, columns: Sequence[np.ndarray]) -> None:
        """Record the slots ``start …`` whose tenant and scope codes are given (a code < 0: none)."""
        if len(tenant) < LOOP_ROWS:
            for offset, t in enumerate(tenant.tolist()):
                if t < 0:
                    continue
                for column, codes in enumerate(columns):
                    code = int(codes[offset])
                    if code >= 0:
                        self._appendable((t, column, code)).append(start + offset)
            return
        for column, codes in enumerate(columns):
            self._group(start, tenant, column, codes)

    def _group(self, start: int, tenant: np.ndarray, column: int, codes: np.ndarray) -> None:
        rows = np.flatnonzero((tenant >= 0) & (codes >= 0))
        if len(rows) == 0:
            return
        keys = (tenant[rows].astype(np.int64) << 32) | codes[rows].astype(np.int64)
        order = np.argsort(keys, kind="stable")
        keys, slots = keys[order], rows[order] + start
        bounds = np.flatnonzero(np.diff(keys)) + 1
        for first, part in zip(np.concatenate(([0], bounds)).tolist(), np.split(slots, bounds), strict=True):
            key = int(keys[first])
            self._appendable((key >> 32, column, key & 0xFFFFFFFF)).frombytes(part.astype(np.int64).tobytes())

    def _appendable(self, key: tuple[int, int, int]) -> array[int]:
        found = self._lists.get(key)
        if not isinstance(found, array):
            found = self._lists[key] = array("q", b"" if found is None else found.astype(np.int64).tobytes())
        return found

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The lists as three arrays for a snapshot: keys, where each list starts, all slots."""
        keys = sorted(self._lists)
        lengths = [len(self._lists[k]) for k in keys]
        slots = [np.asarray(self._lists[k], dtype=np.int64) for k in keys]
        return {
            "scope_keys": np.array(keys, dtype=np.int64).reshape(-1, 3),
            "scope_starts": np.concatenate(([0], np.cumsum(lengths, dtype=np.int64))),
            "scope_slots": np.concatenate(slots) if slots else np.zeros(0, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ScopeSlots:
        """The lists a snapshot holds, as views of its mapped arrays (nothing is copied)."""
        out = cls()
        starts, slots = arrays["scope_starts"].tolist(), arrays["scope_slots"].view(np.ndarray)  # plain views
        for i, key in enumerate(arrays["scope_keys"].tolist()):
            out._lists[(key[0], key[1], key[2])] = slots[starts[i] : starts[i + 1]]
        return out

    def get(self, tenant: int, column: int, code: int) -> np.ndarray:
        """The slots recorded for a scope (a copy), ascending: slots are given out in increasing
        order and each group keeps that order."""
        found = self._lists.get((tenant, column, code))
        if found is None:
            return np.empty(0, dtype=np.int64)
        if isinstance(found, np.ndarray):
            return np.array(found, dtype=np.int64)
        return np.frombuffer(found, dtype=np.int64).copy()
