"""``engramdb bench store``: add throughput and search latency (one user, and a whole tenant).

Texts are synthetic sentences drawn from the bundled model's word list with a fixed seed,
so runs are comparable; every search embeds its query (that is what a chat turn pays).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ..config import MemoryConfig
from ..embedders.static import BUNDLED_PATH
from ..memory import Memory
from .progress import progress_bar
from .stats import peak_rss_mb, percentiles


def word_list() -> list[str]:
    vocab = json.loads((BUNDLED_PATH / "tokenizer.json").read_text())["model"]["vocab"]
    words = vocab if isinstance(vocab, dict) else dict(vocab)
    return sorted(w for w in words if w.isalpha() and w.isascii() and len(w) > 3)


def sentences(n: int, rng: np.random.Generator, words: list[str]) -> list[str]:
    lengths = rng.integers(6, 20, size=n)
    picks = rng.integers(0, len(words), size=int(lengths.sum()))
    out, pos = [], 0
    for i, length in enumerate(lengths):
        out.append(" ".join(words[j] for j in picks[pos : pos + length]) + f" #{i}")
        pos += length
    return out


def run_store_bench(
    size: int, scopes: int, *, store_url: str | None, embedder: str | None, queries: int, console: Console
) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    words = word_list()
    texts = sentences(size, rng, words)
    tmp = tempfile.TemporaryDirectory()
    url = store_url or f"sqlite:///{tmp.name}/bench.db"
    # each run its own tenant: one database given with --store holds several runs apart
    config = MemoryConfig(
        store=url, embedder=embedder, max_batch=2_000, tenant_id=f"bench-{size}-{scopes}-{time.time_ns()}"
    )
    per_scope = max(1, size // scopes)
    with Memory(config=config) as memory, progress_bar(console) as progress:
        task = progress.add_task(f"add {size:,} in {scopes:,} scope(s)", total=size)
        started = time.perf_counter()
        for start in range(0, size, min(1_000, per_scope)):
            chunk = texts[start : start + min(1_000, per_scope)]
            memory.add(chunk, user_id=f"user-{(start // per_scope) % scopes}")
            progress.advance(task, len(chunk))
        add_seconds = time.perf_counter() - started
        memory.search("warm up", user_id="user-0")  # the first search loads the vector index
        latencies = []
        qtask = progress.add_task("search", total=queries)
        for _ in range(queries):
            query = " ".join(words[j] for j in rng.integers(0, len(words), size=6))
            user = f"user-{int(rng.integers(0, scopes))}"
            t0 = time.perf_counter()
            memory.search(query, user_id=user, limit=10)
            latencies.append((time.perf_counter() - t0) * 1000)
            progress.advance(qtask)
        unscoped = []
        utask = progress.add_task("search, whole tenant", total=max(1, queries // 3))
        for _ in range(max(1, queries // 3)):
            query = " ".join(words[j] for j in rng.integers(0, len(words), size=6))
            t0 = time.perf_counter()
            memory.search(query, limit=10)
            unscoped.append((time.perf_counter() - t0) * 1000)
            progress.advance(utask)
    first_search = fresh_process_first_search(url, embedder) if store_url is None else None
    tmp.cleanup()
    return {
        "memories": size,
        "scopes": scopes,
        "add_per_s": round(size / add_seconds, 1),
        "search_ms": percentiles(latencies),
        "unscoped_search_ms": percentiles(unscoped),
        "fresh_process_first_search_s": first_search,
        "peak_rss_mb": peak_rss_mb(),
    }


def fresh_process_first_search(url: str, embedder: str | None, runs: int = 3) -> float:
    """Wall time for a new ``engramdb search`` process to print its first result (median of runs)."""
    cmd = [sys.executable, "-m", "engramdb", "search", "hello world", "--store", url, "--json", "-u", "user-0"]
    if embedder:
        cmd += ["--embedder", embedder]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return round(sorted(times)[len(times) // 2], 3)


def write_json(path: Path | None, data: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
