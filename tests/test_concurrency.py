"""Several processes on one file, and a writer killed mid-stream: nothing acknowledged is lost."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from engramdb import Memory

WRITER = """
import sys
import pytest

from engramdb import Memory
path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Memory(f"sqlite:///{path}", embedder="hash:32") as m:
    for i in range(count):
        result = m.add(f"worker {worker} note {i}", user_id=f"user-{i % 3}", metadata={"worker": worker})
        print(result.results[0].id, flush=True)
        if i % 10 == 0:
            m.search(f"note {i}", user_id="user-0")
"""


def test_four_processes_write_one_file_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Memory(f"sqlite:///{path}", embedder="hash:32").close()  # create the schema once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w), "120"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    acked: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "locked" not in err
        acked.extend(out.split())
    assert len(acked) == 480 and len(set(acked)) == 480
    with Memory(f"sqlite:///{path}", embedder="hash:32") as m:
        stored = {item.id for item in m.iter_all(limit=1000)}
        assert stored == set(acked)
        for worker in range(4):
            assert m.get_all(filters={"metadata.worker": str(worker)}).total == 120
        assert len(m.search("worker 2 note 7", user_id="user-1", limit=5).results) == 5


KILLER = """
import sys
from engramdb import Memory, MemoryConfig
path, durability, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Memory(f"sqlite:///{path}", embedder="hash:32", config=MemoryConfig(durability=durability)) as m:
    for i in range(start, start + 100_000):
        said = [{"role": "user", "name": "Ana", "content": f"I adopted a dog called Rex{i} and I love hiking"}]
        result = m.add(said, user_id=f"user-{i % 3}", session_id=f"s{i // 50}")
        print(" ".join(r.id for r in result.results), flush=True)  # the message and what it derived
"""
KILLS = int(os.environ.get("ENGRAMDB_TEST_KILLS", "8"))  # per durability mode; 100 by hand (docs/benchmarks.md)


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_sigkill_mid_write_loses_no_acknowledged_write(tmp_path: Path, durability: str) -> None:
    """Writers killed at random points, again and again on one file: every acknowledged add —
    the message and the facts derived from it, written in one transaction — is there after."""
    path, rng, acked = tmp_path / "killed.db", random.Random(7), set()
    for kill in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, str(path), durability, str(kill * 1000)],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout is not None
        for _ in range(rng.randint(3, 40)):
            line = proc.stdout.readline()
            assert line, "writer died early"
            acked.update(line.split())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Memory(f"sqlite:///{path}", embedder="hash:32") as m:
        stored = {item.id for item in m.iter_all(limit=1000)}
        assert acked <= stored
        assert any(i.kind != "episode" for i in m.iter_all(limit=1000))  # derived facts were among them
        assert m.search("Rex5 dog", user_id="user-2").results
        m.add("life goes on after the crash", user_id="user-0")
