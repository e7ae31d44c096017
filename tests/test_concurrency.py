"""Several processes on one file, and a writer killed mid-stream: nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from engramdb import Memory

WRITER = """
import sys
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


def test_sigkill_mid_stream_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "k", "100000"], stdout=subprocess.PIPE, text=True)
    acked = []
    assert proc.stdout is not None
    while len(acked) < 200:
        line = proc.stdout.readline()
        assert line, "writer died early"
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Memory(f"sqlite:///{path}", embedder="hash:32") as m:
        stored = {item.id for item in m.iter_all(limit=1000)}
        assert set(acked) <= stored
        assert m.search("worker k note 5", user_id="user-2").results
        m.add("life goes on after the crash", user_id="user-0")
