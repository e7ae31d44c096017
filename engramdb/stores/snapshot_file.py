"""The snapshot file of the vector index: raw arrays at known offsets, mapped by a new process
instead of read, and the clean-up of copies a crashed save left behind."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def remove_stale_copies(path: Path) -> None:
    """Delete the half-written snapshots of processes that died while saving (``<name>.<pid>.tmp``):
    each is as large as the index, and nothing else would ever remove it."""
    for stale in path.parent.glob(f"{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 1 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


MAGIC = b"ENGRAMVX"
ALIGN = 64


def write_arrays(
    path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray], *, rows: dict[str, int] | None = None
) -> None:
    """One file: magic, a JSON header describing each array, then the arrays 64-byte aligned.

    Raw arrays at known offsets let a new process map the index instead of reading it.
    ``rows`` gives an array more rows than it has: the file holds a hole there (zeros, no
    disk blocks), which the mapping exposes as rows to append into.
    """
    layout: dict[str, dict[str, Any]] = {}
    offset = 0
    for name, array in arrays.items():
        shape = [max(len(array), (rows or {}).get(name, 0)), *array.shape[1:]] if array.ndim else []
        layout[name] = {"dtype": array.dtype.str, "shape": shape, "offset": offset}
        nbytes = int(np.prod(shape, dtype=np.int64)) * array.dtype.itemsize
        offset += -(-nbytes // ALIGN) * ALIGN
    blob = json.dumps({**header, "arrays": layout}).encode()
    start = -(-(len(MAGIC) + 8 + len(blob)) // ALIGN) * ALIGN
    with open(path, "wb") as handle:
        handle.write(MAGIC + len(blob).to_bytes(8, "little") + blob)
        for name, array in arrays.items():
            handle.seek(start + layout[name]["offset"])
            _write_rows(handle, array)
        handle.truncate(start + offset)
        handle.flush()
        _sync(handle.fileno())


def _sync(fd: int) -> None:
    """fdatasync where there is one (Linux); macOS and Windows have fsync alone."""
    getattr(os, "fdatasync", os.fsync)(fd)


CHUNK_BYTES = 8 << 20  # written a slice at a time: the file's write releases the GIL, one big write would not
SYNC_EVERY = 8  # chunks between flushes to disk


def _write_rows(handle: Any, array: np.ndarray) -> None:
    """An array's bytes in slices of about ``CHUNK_BYTES``, so that a process's searches run
    between them (a million rows are 1.5 GB: ``tofile`` held the interpreter for seconds).

    Every ``SYNC_EVERY`` slices the file is flushed to disk. Left to pile up, a gigabyte of
    dirty pages made the next commit of the database (its fdatasync) wait for all of them,
    holding the connection every search needs for 0.4 s; flushed as it goes, a commit waits
    for one flush at most. The snapshot needs no durability of its own: this is pacing."""
    if array.ndim == 0 or len(array) == 0:
        handle.write(np.ascontiguousarray(array).tobytes())
        return
    step = max(1, CHUNK_BYTES // max(1, array[0].nbytes))
    for number, first in enumerate(range(0, len(array), step), start=1):
        handle.write(np.ascontiguousarray(array[first : first + step]).data.cast("B"))
        if number % SYNC_EVERY == 0:
            handle.flush()
            _sync(handle.fileno())


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """A file's JSON header and where its arrays start, nothing mapped."""
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a vector snapshot")
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
    return header, -(-(len(MAGIC) + 8 + size) // ALIGN) * ALIGN


def read_arrays(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Map a file written by ``write_arrays`` copy-on-write (pages load on first use)."""
    header, start = read_header(path)
    arrays = {}
    for name, spec in header.pop("arrays").items():
        shape = tuple(spec["shape"])
        if 0 in shape:
            arrays[name] = np.zeros(shape, dtype=np.dtype(spec["dtype"]))
            continue
        dtype, offset = np.dtype(spec["dtype"]), start + int(spec["offset"])
        mapped = np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape)
        arrays[name] = mapped.view(np.ndarray)  # the same pages; a plain array slices without memmap's overhead
    return header, arrays


ID_SLICE = 8192  # ids converted at a time while a snapshot is written (~2 ms each)


def _longest(ids: Sequence[Any]) -> int:
    return max((len(i) for i in ids), default=1)


@dataclass(frozen=True)
class Snapshot:
    """A snapshot taken (``VectorIndex.snapshot``), still to be written: its header and arrays."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    spare: dict[str, int]
    ids: list[str | None] | list[np.ndarray]  # the slots' ids, or a loaded snapshot's ids and those after

    @property
    def seq(self) -> int:
        return int(self.header["seq"])

    def _id_array(self) -> np.ndarray:
        """The ids as one fixed-width array, filled a slice at a time: converting a million
        strings at once held the interpreter for 0.3 s, which a search beside it waited out."""
        parts = self.ids if self.ids and isinstance(self.ids[0], np.ndarray) else [self.ids]
        n = sum(len(p) for p in parts)
        if n == 0:
            return np.zeros(0, dtype="U1")
        width = max(p.dtype.itemsize // 4 if isinstance(p, np.ndarray) else _longest(p) for p in parts if len(p))
        out = np.empty(n, dtype=f"U{max(1, width)}")
        at = 0
        for part in parts:
            for first in range(0, len(part), ID_SLICE):
                piece = part[first : first + ID_SLICE]
                out[at : at + len(piece)] = piece
                at += len(piece)
        return out

    def write(self, path: Path) -> None:
        """Into a copy of this process's own, then renamed over ``path``: readers see the old
        file or the new one, never half of it."""
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        remove_stale_copies(path)
        write_arrays(tmp, self.header, {**self.arrays, "ids": self._id_array()}, rows=self.spare)
        os.replace(tmp, path)
