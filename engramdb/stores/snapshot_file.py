"""The snapshot file of the vector index: raw arrays at known offsets, mapped by a new process
instead of read, and the clean-up of copies a crashed save left behind."""

from __future__ import annotations

import json
import os
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
        os.fdatasync(handle.fileno())


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
            os.fdatasync(handle.fileno())


def read_arrays(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Map a file written by ``write_arrays`` copy-on-write (pages load on first use)."""
    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a vector snapshot")
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
    start = -(-(len(MAGIC) + 8 + size) // ALIGN) * ALIGN
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
