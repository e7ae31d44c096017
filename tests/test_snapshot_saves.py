"""Writing the vector snapshot beside searches and writes: the index's lock is held only while
the snapshot is taken, and the rows it holds are those of that moment, whatever changes next."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engramdb import Memory
from engramdb.embedders import Embedder
from engramdb.stores import snapshot_file
from engramdb.stores.vectors import IndexRow, VectorIndex, read_arrays

WAIT = 60  # seconds: a generous bound for a step that must not wait on the save at all


def _rows(first: int, n: int, dim: int, user: str, seed: int) -> list[IndexRow]:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return [
        IndexRow(first + i, f"m{first + i}", "t", user, None, None, True, float("inf"), matrix[i]) for i in range(n)
    ]


def _slots(index: VectorIndex) -> dict[str, tuple[int, bytes]]:
    """Every slot's id → (rowid, vector bytes), removed or not."""
    return {index._id_of(s): (int(index._rowid[s]), index._matrix[s].tobytes()) for s in range(index._size)}


def test_a_snapshot_holds_the_rows_of_when_it_was_taken(tmp_path: Path) -> None:
    """Taken, then written after rows were added, rewritten and removed (enough to compact the
    index, which moves rows): each row of the file is whole (its id, rowid and vector belong
    together), and every row no later change touched is there and visible. The later changes
    are the reader's to catch up: they come after the snapshot's sequence."""
    index = VectorIndex(16)
    index.upsert(_rows(1, 6_000, 16, "a", 0) + _rows(6_001, 1_000, 16, "b", 1))
    index.seq = 5
    before = _slots(index)
    snapshot = index.snapshot({})
    index.remove(range(1, 5_001))  # below half the slots in use: compacted, which moves the rows
    index.upsert(_rows(5_500, 10, 16, "a", 2))  # rows rewritten
    index.upsert(_rows(8_000, 500, 16, "b", 3))  # and appended
    snapshot.write(tmp_path / "snap")
    loaded = VectorIndex.load(tmp_path / "snap", identity={}, max_seq=5)
    assert loaded is not None and loaded.seq == 5
    held = _slots(loaded)
    assert set(held) == set(before)
    rewritten = {f"m{r}" for r in range(5_500, 5_510)}
    assert all(held[i] == before[i] for i in set(before) - rewritten)  # removed rows are only flagged
    untouched = {f"m{r}" for r in range(5_001, 7_001)} - rewritten
    visible = loaded.select("t", None, None, None, include_inactive=False, now=0)
    assert untouched <= {loaded._id_of(int(s)) for s in visible}


def _in_thread(step: Callable[[], Any]) -> Any:
    """Run ``step`` on another thread and wait for it a bounded time: a step stuck behind the
    save fails the test instead of hanging it."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(step()), daemon=True)
    worker.start()
    worker.join(WAIT)
    assert not worker.is_alive(), "the step waited for the snapshot being written"
    return out[0]


def test_searches_and_adds_go_on_while_a_snapshot_is_written(
    db_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engramdb.stores.sqlite.mirror.SNAPSHOT_MIN_ROWS", 50)
    url = f"sqlite:///{db_path}"
    memory = Memory(url, embedder=default_embedder)
    for start in range(0, 3_000, 1_000):
        memory.add([f"note {i} on garden topic {i % 9}" for i in range(start, start + 1_000)], user_id="a", infer=False)
    for start in range(0, 1_300, 650):
        memory.add([f"entry {i} on river trips {i % 7}" for i in range(start, start + 650)], user_id="b", infer=False)
    memory.search("garden", user_id="a")
    mirror = memory.store._vectors  # type: ignore[attr-defined]
    if mirror._saving is not None:
        mirror._saving.join()

    started, release = threading.Event(), threading.Event()
    original = snapshot_file.write_arrays

    niceness: list[int] = []

    def held(*args: Any, **kwargs: Any) -> None:
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        started.set()
        assert release.wait(WAIT)
        original(*args, **kwargs)

    monkeypatch.setattr(snapshot_file, "write_arrays", held)
    memory.add("an entry on river trips in autumn", user_id="b", infer=False)
    memory.search("river", user_id="b")  # the index changed since its snapshot: a save has work to do
    mirror._save_soon()
    assert started.wait(WAIT)
    try:
        _in_thread(lambda: memory.delete_all(user_id="a"))  # removed rows: the index compacts on the next search
        found = _in_thread(lambda: memory.search("river trips", user_id="b", limit=3))
        assert found.results and found.results[0].user_id == "b"
        _in_thread(lambda: memory.add("a later entry about river trips in spring", user_id="b", infer=False))
    finally:
        release.set()
    mirror._saving.join(WAIT)
    if sys.platform.startswith("linux"):  # the saver gives way to searches on the CPU
        assert niceness[0] >= 10
    taken = read_arrays(Path(f"{db_path}-vectors"))[0]["seq"]
    memory.close()

    monkeypatch.setattr(snapshot_file, "write_arrays", original)
    reader = Memory(url, embedder=default_embedder)  # the snapshot just written, caught up
    rebuilt_path = Path(f"{db_path}-vectors")
    loaded = reader.search("river trips in spring", user_id="b", limit=10).results
    index = reader.store._vectors.synced()  # type: ignore[attr-defined]
    assert index.seq > taken  # it did catch up from that snapshot
    with sqlite3.connect(db_path) as conn:
        listed = {r[0] for r in conn.execute("SELECT id FROM memories WHERE user_id = 'b'")}
    assert set(_contents_of(index, "b")) == listed and len(listed) == 1_302
    assert not reader.get_all(user_id="a", limit=10).results
    reader.store._vectors._closed = True  # type: ignore[attr-defined]  # keep the snapshot as it is
    reader.close()
    rebuilt_path.unlink()
    with Memory(url, embedder=default_embedder) as fresh:  # no snapshot: built from the rows
        assert [h.id for h in fresh.search("river trips in spring", user_id="b", limit=10).results] == [
            h.id for h in loaded
        ]


def _contents_of(index: VectorIndex, user: str) -> list[str]:
    slots = index.select("default", user, None, None, include_inactive=False, now=0)
    return [index._id_of(int(s)) for s in slots]


def test_a_snapshot_is_written_where_fdatasync_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS and Windows have no ``os.fdatasync``: the pacing flushes fall back to ``fsync``."""
    calls: list[int] = []
    monkeypatch.delattr(os, "fdatasync", raising=False)
    monkeypatch.setattr(os, "fsync", calls.append)
    index = VectorIndex(16)
    index.upsert(_rows(1, 100, 16, "a", 0))
    index.seq = 1
    index.snapshot({}).write(tmp_path / "snap")
    assert calls and VectorIndex.load(tmp_path / "snap", identity={}, max_seq=1) is not None


def test_a_save_taken_before_another_process_erases_rows_is_not_published(
    db_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hard delete by a process with no index of its own can only remove the snapshot file;
    a save under way elsewhere, taken before the erase, would then put its copy of the erased
    rows' ids and vectors back and record its token. Its token transaction sees the erase, and
    the copy goes."""
    monkeypatch.setattr("engramdb.stores.sqlite.mirror.SNAPSHOT_MIN_ROWS", 50)
    url = f"sqlite:///{db_path}"
    saver = Memory(url, embedder=default_embedder)
    saver.add([f"note {i} on garden topic {i % 9}" for i in range(300)], user_id="a", infer=False)
    saver.add([f"entry {i} on river trips {i % 7}" for i in range(200)], user_id="b", infer=False)
    saver.search("garden", user_id="a")
    mirror = saver.store._vectors  # type: ignore[attr-defined]
    if mirror._saving is not None:
        mirror._saving.join(WAIT)

    started, release = threading.Event(), threading.Event()
    original = snapshot_file.write_arrays

    def held(*args: Any, **kwargs: Any) -> None:
        started.set()
        assert release.wait(WAIT)
        original(*args, **kwargs)

    monkeypatch.setattr(snapshot_file, "write_arrays", held)
    saver.add("an entry on river trips in autumn", user_id="b", infer=False)
    saver.search("river", user_id="b")
    mirror._save_soon()
    assert started.wait(WAIT)
    erased = {m.id for m in saver.get_all(user_id="a", limit=1_000).results}
    eraser = Memory(url, embedder=default_embedder)  # never searched: it holds no index
    try:
        assert _in_thread(lambda: eraser.delete_all(user_id="a", hard=True)).deleted == 300
    finally:
        release.set()
    mirror._saving.join(WAIT)
    path = Path(f"{db_path}-vectors")
    if path.exists():  # a newer save's, taken after the erase, may stand; this one's may not
        kept = VectorIndex.load(path, identity={}, max_seq=1 << 62)
        assert kept is not None and not erased & set(_slots(kept)), "the snapshot holds the erased rows"
    assert not saver.search("garden topic", user_id="a").results
    eraser.close()
    saver.close()
