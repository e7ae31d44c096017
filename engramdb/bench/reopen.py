"""What a store costs to come back to: reopening it, a fresh process, a crash, disk syncs.

``bench store`` runs these after its handles are closed (``reopen_figures``) or, for the
sync count, beside them. Every figure from a process of its own is the median of ``runs``
(the state each one finds is left unchanged, see ``child.py``); times are wall clock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import MemoryConfig
from ..memory import Memory
from .child import READY

Step = Callable[[], None]
"""Called after each process the figures started, to move the progress bar."""


@dataclass(frozen=True)
class Target:
    """The store under test as a child process is told about it."""

    store: str
    tenant: str
    embedder: str | None
    scopes: int

    def child(self, *args: str) -> list[str]:
        cmd = [sys.executable, "-m", "engramdb.bench.child", "--store", self.store, "--tenant", self.tenant]
        return [*cmd, *(["--embedder", self.embedder] if self.embedder else []), *args]


def same_process_reopen(config: MemoryConfig, query: str, user: str) -> dict[str, float]:
    """A new ``Memory`` on the closed store in this process: opening, then its first search."""
    started = time.perf_counter()
    memory = Memory(config=config)
    opened = time.perf_counter()
    try:
        memory.search(query, user_id=user, limit=10, threshold=0)
        searched = time.perf_counter()
    finally:
        memory.close()
    return {"open_s": round(opened - started, 4), "first_search_ms": round((searched - opened) * 1000, 2)}


def fresh_reads(target: Target, queries: list[str], step: Step) -> dict[str, float]:
    """A new process per query, timed from its start to its first result (medians).

    ``total_s`` is measured here, up to the line the child prints; ``open_s`` and
    ``first_search_ms`` by the child, so ``startup_s`` is what is left: the interpreter
    and the imports.
    """
    runs = []
    for i, query in enumerate(queries):
        started = time.perf_counter()
        proc = subprocess.Popen(
            target.child("read", "--query", query, "--user", f"user-{i % target.scopes}"),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline()
        total = time.perf_counter() - started
        if proc.wait(60) != 0 or not line:
            raise RuntimeError("the reader process failed")
        figures = json.loads(line)
        if not figures["hits"]:  # a scope of the run always answers: nothing means another store or tenant
            raise RuntimeError("the reader process found nothing")
        runs.append({**figures, "total_s": total})
        step()
    median = {key: statistics.median(r[key] for r in runs) for key in ("total_s", "open_s", "first_search_ms")}
    return {
        "runs": len(runs), "total_s": round(median["total_s"], 3), "open_s": round(median["open_s"], 4),
        "first_search_ms": round(median["first_search_ms"], 2),
        "startup_s": round(max(0.0, median["total_s"] - median["open_s"] - median["first_search_ms"] / 1000), 3),
    }  # fmt: skip


def killed_writer(target: Target, count: int, batch: int) -> None:
    """Write ``count`` memories in a child and kill it with SIGKILL once they are committed."""
    proc = subprocess.Popen(
        target.child("write", "--count", str(count), "--batch", str(batch), "--scopes", str(target.scopes),
                     "--seed", "13"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != READY:
            raise RuntimeError("the writer process failed")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)


def cli_first_result(target: Target, runs: int, step: Step) -> float:
    """Wall time for a new ``engramdb search`` process to exit with its result (median)."""
    cmd = [sys.executable, "-m", "engramdb", "search", "hello world", "--store", target.store, "--json", "-u",
           "user-0", "--threshold", "0", *(["--embedder", target.embedder] if target.embedder else [])]  # fmt: skip
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAMDB_")}  # only what is given here
        env |= {"ENGRAMDB_TENANT_ID": target.tenant, "ENGRAMDB_CONFIG": str(Path(tmp) / "none.toml")}
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=120)
            times.append(time.perf_counter() - started)
            if not json.loads(done.stdout)["results"]:
                raise RuntimeError("the search process found nothing")
            step()
    return round(statistics.median(times), 3)


SYNC_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync\s*$", re.M)
"""A row of ``strace -c``'s table for fsync or fdatasync: % time, seconds, usecs/call, calls, [errors], name."""


def syncs_countable(store: str) -> bool:
    """A SQLite file (PostgreSQL syncs in its server's processes) and strace to count with."""
    return store.startswith("sqlite:") and shutil.which("strace") is not None


def syncs_per_add(target: Target, adds: int, session_turns: int, step: Step) -> dict[str, float] | None:
    """fsync + fdatasync calls per one-message add, per durability mode (SQLite, strace on PATH).

    Counted by difference: a child doing ``adds`` adds against one doing none, so opening
    and closing the store do not count. None when it cannot be counted here.
    """
    if not syncs_countable(target.store):
        return None
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("full", "normal"):
            counts = []
            for n in (0, adds):
                out = Path(tmp) / f"{mode}-{n}.txt"
                child = target.child("adds", "--count", str(n), "--user", "user-0", "--durability", mode,
                                     "--session-turns", str(session_turns))  # fmt: skip
                done = subprocess.run(["strace", "-f", "-c", "-o", str(out), "-e", "trace=fsync,fdatasync", *child],
                                      capture_output=True, timeout=300, check=False)  # fmt: skip
                if done.returncode != 0:
                    return None  # e.g. ptrace is not permitted in this container
                counts.append(sum(int(m.group(1)) for m in SYNC_ROW.finditer(out.read_text())))
                step()
            figures[mode] = round((counts[1] - counts[0]) / adds, 2)
    return figures


def reopen_figures(
    config: MemoryConfig, target: Target, *, runs: int, queries: list[str], unsaved: int, batch: int, step: Step
) -> dict[str, Any]:
    """Every reopen figure of a closed store, in an order that leaves each the state it names.

    Clean close first (this process, then fresh ones), then a writer killed after
    ``unsaved`` rows, then fresh processes on what it left. ``queries``: 1 + 2 × ``runs``
    of them, each asked once, so no answer comes from a cache.
    """
    if len(queries) != 1 + 2 * runs:
        raise ValueError("one query for this process and one per fresh process")
    figures: dict[str, Any] = {"same_process": same_process_reopen(config, queries[0], "user-0")}
    step()
    figures["fresh_process"] = fresh_reads(target, queries[1 : 1 + runs], step)
    figures["fresh_cli_first_result_s"] = cli_first_result(target, runs, step)
    killed_writer(target, unsaved, batch)
    step()
    figures["fresh_process_after_kill"] = {"unsaved_rows": unsaved, **fresh_reads(target, queries[1 + runs :], step)}
    return figures


def reopen_steps(runs: int) -> int:
    """How many times ``reopen_figures`` calls its ``step``."""
    return 2 + 3 * runs
