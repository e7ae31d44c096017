"""Rows found by rowid in a loaded snapshot's column, before the index builds its rowid map.

Building the map costs a third of a second at a million rows, which a reopened store's first
catch-up would pay for a few rows; scanning the column for each row instead cost 0.1-0.2 ms a
row at that size, on every catch-up that rewrote a row (a fact superseded). Rows arrive in
rowid order, so the column is sorted but for what a reused rowid appended out of order: a
binary search over its sorted prefix, and a scan of the rest only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCANNED_TAIL = 4096  # unsorted rows past the prefix up to which a lookup costs no more than a seek


def sorted_prefix(column: np.ndarray) -> int:
    """How many leading entries of ``column`` are strictly increasing."""
    bad = np.flatnonzero(column[1:] <= column[:-1])
    return int(bad[0]) + 1 if len(bad) else len(column)


def extends(last: int, rowids: Sequence[int]) -> bool:
    """Whether ``rowids``, appended after a sorted prefix ending at ``last``, keep it sorted."""
    return all(b > a for a, b in zip([last, *rowids], rowids, strict=False))


def find(column: np.ndarray, prefix: int, rowids: Sequence[int]) -> dict[int, int]:
    """The positions in ``column`` of those of ``rowids`` it holds."""
    head, tail = column[:prefix], column[prefix:]
    out: dict[int, int] = {}
    for rowid, at in zip(rowids, np.searchsorted(head, rowids).tolist(), strict=True):
        if at < prefix and head[at] == rowid:
            out[rowid] = at
        elif len(tail):
            hit = np.flatnonzero(tail == rowid)
            if len(hit):
                out[rowid] = prefix + int(hit[0])
    return out
