"""WAL checkpoints run beside the writer (``stores.sqlite.checkpoint``), not inside its commits."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from engramdb import Memory
from engramdb.embedders import Embedder
from engramdb.stores.sqlite import checkpoint


def _rows_in_file_alone(db: Path, copy: Path) -> int:
    """The memories the database file holds without its WAL: what checkpoints have moved there."""
    shutil.copy(db, copy)
    with sqlite3.connect(copy) as conn:
        return int(conn.execute("SELECT count(*) FROM memories").fetchone()[0])


def test_a_writers_pages_reach_the_file_without_its_own_checkpoint(
    db_path: Path, tmp_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint, "CHECKPOINT_ROWS", 50)
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        for i in range(20):  # a few hundred WAL pages: far below the writer's own threshold
            memory.add(f"memory {i} about gardening and the sea", user_id="u", infer=False)
        deadline = time.monotonic() + 20
        while _rows_in_file_alone(db_path, tmp_path / "copy.db") < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _rows_in_file_alone(db_path, tmp_path / "copy.db") >= 10
        thread = memory.store._checkpoints._thread  # type: ignore[attr-defined]
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()  # stopped on close
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        assert len(memory.get_all(user_id="u", limit=50).results) == 20


def test_few_changes_start_no_thread(db_path: Path, default_embedder: Embedder) -> None:
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        memory.add("one memory", user_id="u", infer=False)
        assert memory.store._checkpoints._thread is None  # type: ignore[attr-defined]


def test_a_dead_checkpoint_thread_is_started_again(
    db_path: Path, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process forked from a writer inherits the thread object but not the thread."""
    import threading

    monkeypatch.setattr(checkpoint, "CHECKPOINT_ROWS", 20)
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder) as memory:
        checkpoints = memory.store._checkpoints  # type: ignore[attr-defined]
        dead = threading.Thread(target=lambda: None)
        dead.start()
        dead.join()
        checkpoints._thread = dead
        for i in range(5):
            memory.add(f"memory {i} about the garden", user_id="u", infer=False)
        assert checkpoints._thread is not dead and checkpoints._thread.is_alive()
