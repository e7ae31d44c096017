"""An exact, in-memory vector index mirrored from the store file.

Why not HNSW: recall is per user, so a search scans one scope, which is small (hundreds to
tens of thousands of memories); a masked matrix-vector product over it needs no tuning and
costs a few milliseconds. Filtering happens *before* scoring (a boolean mask from scope
columns, or the row ids a SQL filter allowed), so a filtered search never comes back short
the way a post-filtered ANN search does.

Large scopes: above ``COARSE_MIN_ROWS`` visible rows the scan runs on an int8 copy of the
matrix (one scale per row) with a SIMD kernel (numkong), keeps ``COARSE_FACTOR`` times the
requested candidates, and rescores those exactly in float32. The returned similarities are
always exact; only the pre-selection is approximate, with a wide margin.

The file stays the source of truth: the index is rebuilt from it on open (or loaded from a
snapshot taken at a known change sequence, then brought forward) and kept current through
the change sequence, so several processes may share one file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import rowid_search
from .index_rows import IndexRow as IndexRow
from .index_rows import RowBlock as RowBlock
from .index_rows import quantize as quantize
from .slots import AGENT, SESSION, USER, ScopeSlots
from .snapshot_file import Snapshot
from .snapshot_file import read_arrays as read_arrays
from .snapshot_file import write_arrays as write_arrays

NO_VALUE = -1
COARSE_MIN_ROWS = 20_000
COARSE_FACTOR = 4
SNAPSHOT_FORMAT = 5  # 4: spare rows (``SPARE_*``), the row count, the scope lists; 5: which rows are messages
SPARE_FRACTION = 1  # a snapshot leaves room for as many rows again (at least SPARE_MIN), so that rows
SPARE_MIN = 4096  # written after it are appended into the mapped arrays instead of copying them all;
# the room is a hole in the file: no disk blocks, and no memory until a row is written into it
CHUNK_ROWS = 8192
LOOKUPS_WITHOUT_MAP = 64  # rows a catch-up looks up in the rowid column before building the map

try:  # a SIMD int8 dot-product kernel; numpy float32 is the exact fallback
    import numkong as _nk
except ImportError:  # pragma: no cover - numkong ships wheels for the common platforms
    _nk = None  # type: ignore[assignment]


_COLUMNS: dict[str, tuple[Any, Any]] = {
    "_tenant": (np.int32, NO_VALUE),
    "_user": (np.int32, NO_VALUE),
    "_agent": (np.int32, NO_VALUE),
    "_session": (np.int32, NO_VALUE),
    "_active": (np.bool_, False),
    "_episode": (np.bool_, False),
    "_expires": (np.float64, np.inf),
    "_rowid": (np.int64, NO_VALUE),
    "_scale": (np.float32, 0.0),
}
_ARRAYS = ("_matrix", "_q8", *_COLUMNS)


class VectorIndex:
    """Rows live in slots of growable numpy arrays; removed slots are masked, then compacted."""

    _matrix: np.ndarray
    _q8: np.ndarray
    _tenant: np.ndarray
    _user: np.ndarray
    _agent: np.ndarray
    _session: np.ndarray
    _active: np.ndarray
    _episode: np.ndarray
    _expires: np.ndarray
    _rowid: np.ndarray
    _scale: np.ndarray

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.seq = -1
        self._codes: dict[str, int] = {}
        self._slot_map: dict[int, int] | None = {}
        self._id_list: list[str | None] | None = []
        self._id_array: np.ndarray | None = None  # a loaded snapshot's ids, until the list is needed
        self._id_tail: list[str | None] = []  # ids of the slots appended after it meanwhile
        self._max_rowid = -1
        self._sorted_upto: int | None = None  # the rowid column's sorted prefix, while the map is unbuilt
        self._size = 0
        self._scopes = ScopeSlots()
        self._alloc(1024)

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` more rows in one allocation: a rebuild knows how many it will read,
        where growing by doubling would copy the index about once more in all."""
        if self._size + rows > len(self._active):
            self._alloc(self._size + rows)

    def _alloc(self, capacity: int) -> None:
        def grow(name: str, shape: tuple[int, ...], dtype: Any, fill: Any) -> None:
            # zeros come from the OS untouched: room not yet written costs no memory
            new: np.ndarray = np.zeros(shape, dtype=dtype) if fill == 0 else np.full(shape, fill, dtype=dtype)
            old = self.__dict__.get(name)
            if old is not None:
                new[: self._size] = old[: self._size]
            setattr(self, name, new)

        grow("_matrix", (capacity, self.dimension), np.float32, 0)
        grow("_q8", (capacity, self.dimension), np.int8, 0)
        for name, (dtype, fill) in _COLUMNS.items():
            grow(name, (capacity,), dtype, fill)

    def _code(self, value: str | None, *, create: bool = True) -> int:
        if value is None:
            return NO_VALUE
        code = self._codes.get(value)
        if code is None:
            if not create:
                return -2  # matches nothing
            code = self._codes[value] = len(self._codes)
        return code

    def _codes_of(self, values: Sequence[str | None]) -> list[int]:
        """The codes of a column's values, new ones made: a dict lookup per row, the rare new
        value through ``_code`` (a catch-up converts every row it reads through here)."""
        known = self._codes.get
        out = [NO_VALUE if v is None else known(v, -3) for v in values]
        if -3 in out:
            out = [self._code(v) for v in values]
        return out

    @property
    def _slot(self) -> dict[int, int]:
        """rowid → slot. Built on first use after a snapshot is loaded: a million entries cost
        a third of a second, and a search on a current snapshot needs none."""
        if self._slot_map is None:
            self._slot_map = dict(zip(self._rowid[: self._size].tolist(), range(self._size), strict=True))
        return self._slot_map

    @_slot.setter
    def _slot(self, value: dict[int, int]) -> None:
        self._slot_map = value

    @property
    def _ids(self) -> list[str | None]:
        """Each slot's memory id (None once removed); a loaded snapshot's, listed on first change."""
        if self._id_list is None:
            head = self._id_array.tolist() if self._id_array is not None else []
            self._id_list, self._id_array, self._id_tail = head + self._id_tail, None, []
        return self._id_list

    @_ids.setter
    def _ids(self, value: list[str | None]) -> None:
        self._id_list, self._id_array, self._id_tail = value, None, []

    def _id_of(self, slot: int) -> str:
        if self._id_list is None and self._id_array is not None:
            head = len(self._id_array)
            return str(self._id_array[slot] if slot < head else self._id_tail[slot - head])
        return str(self._ids[slot])

    def _held_slots(self, rowids: Sequence[int]) -> dict[int, int]:
        """The slots of the rows among ``rowids`` the index holds. While the map is unbuilt (a
        loaded snapshot, nothing removed since), a row above every rowid held is new, and the
        others are looked up in the rowid column (``rowid_search``): catching up a reopened
        store's rows builds no map. More than ``LOOKUPS_WITHOUT_MAP`` of them where the column
        is unsorted, and the map is built."""
        if self._slot_map is None:
            maybe = [r for r in rowids if r <= self._max_rowid]
            column = self._rowid[: self._size]
            if self._sorted_upto is None:
                self._sorted_upto = rowid_search.sorted_prefix(column)
            if len(maybe) <= LOOKUPS_WITHOUT_MAP or self._size - self._sorted_upto <= rowid_search.SCANNED_TAIL:
                return rowid_search.find(column, self._sorted_upto, maybe)
        slot = self._slot
        return {r: slot[r] for r in rowids if r in slot}

    def __len__(self) -> int:
        # an unbuilt map means nothing changed since the snapshot, which holds no removed row
        return self._size if self._slot_map is None else len(self._slot_map)

    def upsert(self, rows: Iterable[IndexRow]) -> None:
        """Add or replace rows, consumed in chunks so a full rebuild never holds every row twice."""
        batch: list[IndexRow] = []
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK_ROWS:
                self.upsert_block(RowBlock.of(batch))
                batch = []
        if batch:
            self.upsert_block(RowBlock.of(batch))

    def upsert_block(self, block: RowBlock) -> None:
        """Add or replace the block's rows: the new ones appended, the known ones rewritten in place."""
        held = self._held_slots(block.rowids)
        if held:
            known = [i for i, rowid in enumerate(block.rowids) if rowid in held]
            slots = np.array([held[block.rowids[i]] for i in known], dtype=np.int64)
            self._rewrite_slots(slots, block.take(known))
            block = block.take([i for i, rowid in enumerate(block.rowids) if rowid not in held])
        fresh = block
        count = len(fresh.rowids)
        if not count:
            return
        if self._size + count > len(self._active):
            self._alloc(max(len(self._active) * 2, self._size + count))
        start = self._size
        if self._slot_map is not None:  # else built from the rowid column when needed
            self._slot_map.update(zip(fresh.rowids, range(start, start + count), strict=True))
        if self._id_list is None:
            self._id_tail.extend(fresh.ids)
        else:
            self._id_list.extend(fresh.ids)
        if (  # kept only while lookups need it: once the map is built, it answers them
            self._slot_map is None
            and self._sorted_upto == start
            and rowid_search.extends(int(self._rowid[start - 1]) if start else -1, fresh.rowids)
        ):
            self._sorted_upto = start + count
        self._max_rowid = max(self._max_rowid, *fresh.rowids)
        self._size += count
        self._write_slots(start, fresh)
        self._index_scopes(start, self._size)

    def _index_scopes(self, start: int, end: int) -> None:
        columns = (self._user[start:end], self._agent[start:end], self._session[start:end])
        self._scopes.add(start, self._tenant[start:end], columns)

    def _reindex_scopes(self) -> None:
        """After slots moved or codes changed: every list built again from the columns."""
        self._scopes.clear()
        self._index_scopes(0, self._size)

    def _write_slots(self, start: int, block: RowBlock) -> None:
        """Write consecutive slots from ``start``, one column at a time."""
        end = start + len(block.rowids)
        self._matrix[start:end] = block.matrix
        self._q8[start:end], self._scale[start:end] = quantize(self._matrix[start:end])
        self._tenant[start:end] = self._codes_of(block.tenant_ids)
        self._user[start:end] = self._codes_of(block.user_ids)
        self._agent[start:end] = self._codes_of(block.agent_ids)
        self._session[start:end] = self._codes_of(block.session_ids)
        self._active[start:end] = block.active
        self._episode[start:end] = block.episode
        self._expires[start:end] = block.expires
        self._rowid[start:end] = block.rowids

    def _rewrite_slots(self, slots: np.ndarray, block: RowBlock) -> None:
        """Rows the index holds, written again where they are: only the values that changed.

        A loaded snapshot's columns are mapped copy-on-write, so the first write into a page
        of each column costs a page fault and a copy: writing a row's ten columns took 0.3 ms
        (17 µs once written), and a catch-up that rewrote 800 rows spent most of a reopened
        1M store's first search on it. A row is rewritten mostly for one column (its state,
        when a newer fact supersedes it); reading the others costs no copy."""
        moved = np.flatnonzero(np.any(self._matrix[slots] != block.matrix, axis=1))
        if len(moved):
            at = slots[moved]
            self._matrix[at] = block.matrix[moved]
            self._q8[at], self._scale[at] = quantize(block.matrix[moved])
        values = {
            "_tenant": self._codes_of(block.tenant_ids), "_user": self._codes_of(block.user_ids),
            "_agent": self._codes_of(block.agent_ids), "_session": self._codes_of(block.session_ids),
            "_active": block.active, "_episode": block.episode, "_expires": block.expires,
        }  # fmt: skip
        for name, given in values.items():
            column = getattr(self, name)
            new = np.asarray(given, dtype=column.dtype)
            changed = column[slots] != new
            if changed.any():
                column[slots[changed]] = new[changed]

    def remove(self, rowids: Iterable[int]) -> None:
        rowids = list(rowids)
        if not rowids:
            return
        for rowid in rowids:
            slot = self._slot.pop(rowid, None)
            if slot is not None:
                self._active[slot] = False
                self._tenant[slot] = NO_VALUE
                self._ids[slot] = None
        if self._size > 4096 and len(self) < self._size // 2:
            self._compact()

    def _compact(self) -> None:
        """The rows kept, in new arrays (never moved in place: a snapshot may be writing the old
        ones, outside the lock, while the index goes on changing; see ``snapshot``)."""
        keep = np.array(sorted(self._slot.values()), dtype=np.int64)
        for name in _ARRAYS:
            setattr(self, name, getattr(self, name)[keep])
        self._ids = [self._ids[i] for i in keep]
        self._size = len(keep)
        self._slot = {int(self._rowid[i]): i for i in range(self._size)}
        self._reindex_scopes()

    def select(
        self,
        tenant_id: str,
        user_id: str | None,
        agent_id: str | None,
        session_id: str | None,
        *,
        include_inactive: bool,
        now: float,
        episodes: bool = True,
    ) -> np.ndarray:
        """Slots visible to a query, in order: same tenant, matching scope ids, active and unexpired;
        without the messages when ``episodes`` is False (a derived memory's neighbours).

        A scoped query starts from its scope's slots (``slots``: the user's, else the session's,
        else the agent's); only one naming no scope passes over the whole index.
        """
        tenant = self._code(tenant_id, create=False)
        named = [(column, self._code(value, create=False)) for column, value in
                 ((USER, user_id), (SESSION, session_id), (AGENT, agent_id)) if value is not None]  # fmt: skip
        if named:
            slots = self._scopes.get(tenant, *named[0])
            keep = self._tenant[slots] == tenant
        else:
            slots = np.arange(self._size)
            keep = self._tenant[: self._size] == tenant
        columns = {USER: self._user, AGENT: self._agent, SESSION: self._session}
        for column, code in named[1:]:
            keep &= columns[column][slots] == code
        if not include_inactive:
            keep &= self._active[slots]
            keep &= self._expires[slots] > now
        if not episodes:
            keep &= ~self._episode[slots]
        visible: np.ndarray = slots[keep]  # ascending: a scope's slots are recorded in the order rows arrive
        return visible

    def restrict(self, slots: np.ndarray, rowids: Iterable[int]) -> np.ndarray:
        """Narrow selected slots to the given row ids (those a SQL filter allowed)."""
        allowed = np.fromiter((self._slot[r] for r in rowids if r in self._slot), dtype=np.int64)
        return slots[np.isin(slots, allowed)]

    def search(self, vector: np.ndarray, slots: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top-k (id, cosine similarity) among the selected slots, best first; similarities exact."""
        if len(slots) == 0 or k <= 0:
            return []
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        if _nk is not None and len(slots) >= COARSE_MIN_ROWS and len(slots) > k * COARSE_FACTOR:
            slots = self._coarse(vector, slots, k * COARSE_FACTOR)
        if len(slots) * 3 <= self._size:
            sims = self._matrix[slots] @ vector
        else:
            sims = (self._matrix[: self._size] @ vector)[slots]
        k = min(k, len(slots))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(self._id_of(int(slots[i])), float(sims[i])) for i in top]

    def _coarse(self, vector: np.ndarray, slots: np.ndarray, keep: int) -> np.ndarray:
        """The ``keep`` visible slots with the best int8 scores (a superset of the exact top-k)."""
        q8, _ = quantize(vector[None, :])
        if len(slots) * 3 > self._size:
            raw = np.asarray(_nk.cdist(q8, self._q8[: self._size], metric="dot", out_dtype="float32"))[0]
            scores = np.full(self._size, -np.inf, dtype=np.float32)
            scores[slots] = raw[slots] * self._scale[slots]
            best = np.argpartition(-scores, keep - 1)[:keep]
            return np.sort(best)
        raw = np.asarray(_nk.cdist(q8, self._q8[slots], metric="dot", out_dtype="float32"))[0]
        best = np.argpartition(-(raw * self._scale[slots]), keep - 1)[:keep]
        return np.sort(slots[best])

    # --- snapshots ------------------------------------------------------------------------

    def save(self, path: Path, *, identity: dict[str, Any]) -> None:
        """Write the index to ``path`` atomically (a cache: losing it only costs a rebuild)."""
        self.snapshot(identity).write(path)

    def snapshot(self, identity: dict[str, Any]) -> Snapshot:
        """What a snapshot of the index at this moment writes, taken in milliseconds.

        The rows are views of the live arrays, written later without the index's lock (a
        million rows take seconds to write, and searches waited on them). That is safe because
        nothing moves a row in place: compaction and code changes make new arrays, appends go
        past the views' end, and a row rewritten or removed meanwhile belongs to a change
        after ``seq``, which the snapshot's reader catches up from anyway.
        """
        if self._size != len(self):
            self._compact()
        self._drop_unused_codes()
        n = self._size
        arrays = {name.lstrip("_"): getattr(self, name)[:n] for name in _ARRAYS}
        spare = {name.lstrip("_"): n + max(SPARE_MIN, n // SPARE_FRACTION) for name in _ARRAYS}
        if self._id_list is None and self._id_array is not None:  # a loaded snapshot's ids, never changed in place
            ids: list[str | None] | list[np.ndarray] = [self._id_array, np.array(self._id_tail, dtype=str)]
        else:
            ids = list(self._ids)  # the list itself changes as rows go: a copy (pointers only)
        arrays["codes"] = np.array(list(self._codes), dtype=str) if self._codes else np.zeros(0, dtype="U1")
        arrays.update(self._scopes.to_arrays())  # so that a process opening it need not group a million rows
        header = {"format": SNAPSHOT_FORMAT, "seq": self.seq, "dimension": self.dimension, "rows": n, **identity}
        return Snapshot(header, arrays, spare, ids)

    @classmethod
    def load(cls, path: Path, *, identity: dict[str, Any], max_seq: int, min_seq: int = 0) -> VectorIndex | None:
        """The snapshot at ``path`` if it belongs to this file (every ``identity`` value matches)
        and was taken between ``min_seq`` and ``max_seq``: not from the file's future, and
        not so old that the changes since have been pruned."""
        try:
            header, arrays = read_arrays(path)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if header.get("format") != SNAPSHOT_FORMAT or not max(min_seq, 0) <= header.get("seq", -1) <= max_seq:
            return None
        if any(header.get(key) != value for key, value in identity.items()):
            return None
        index = cls(int(header["dimension"]))
        index._restore(arrays, int(header["rows"]))
        index.seq = int(header["seq"])
        return index

    def _drop_unused_codes(self) -> None:
        """Forget the scope ids no row uses any more: a deleted user's id must not stay in a snapshot."""
        n = self._size
        columns = (self._tenant, self._user, self._agent, self._session)
        seen = np.zeros(len(self._codes) + 1, dtype=np.bool_)  # a mark per code (slot 0: no value): no sort
        for column in columns:
            seen[column[:n] + 1] = True  # codes start at 0, NO_VALUE is -1
        used = np.flatnonzero(seen[1:])
        if len(used) == len(self._codes):
            return
        new_code = np.full(len(self._codes), NO_VALUE, dtype=np.int32)
        new_code[used] = np.arange(len(used), dtype=np.int32)
        for name in ("_tenant", "_user", "_agent", "_session"):  # new arrays, as ``_compact`` makes
            column = getattr(self, name).copy()
            part = column[:n]
            column[:n] = np.where(part >= 0, new_code[np.maximum(part, 0)], part)
            setattr(self, name, column)
        kept = sorted((int(new_code[code]), value) for value, code in self._codes.items() if new_code[code] >= 0)
        self._codes = {value: code for code, value in kept}
        self._reindex_scopes()

    def _restore(self, arrays: dict[str, np.ndarray], n: int) -> None:
        """Adopt the mapped arrays as they are: rows written since go into their spare rows
        (copy-on-write pages of their own); only growth beyond them copies the arrays."""
        for name in _ARRAYS:
            setattr(self, name, arrays[name.lstrip("_")])
        self._id_list, self._id_array, self._id_tail = None, arrays["ids"], []  # listed, and mapped, on first need
        self._max_rowid = int(self._rowid[:n].max()) if n else -1
        self._codes = {c: i for i, c in enumerate(arrays["codes"].tolist())}
        self._scopes = ScopeSlots.from_arrays(arrays)
        self._size = n
        self._slot_map, self._sorted_upto = None, None
