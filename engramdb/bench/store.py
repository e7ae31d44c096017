"""``engramdb bench store``: what adds, searches and reopening cost on one store, in one run.

Texts are synthetic sentences drawn from the bundled model's word list with a fixed seed,
so runs are comparable; every search embeds its query (that is what a chat turn pays) and
no query is asked twice, so the embedder's cache answers none.

The run, in order (docs/benchmarks.md says what each figure means):
1. the bulk load: batched adds without extraction, one scope per call, alternating batch by
   batch between two handles on the store, one per durability mode, so both modes are
   measured over the same growth of the store;
2. searches in one scope and across the tenant, each timed alone (wall and process CPU);
3. one-message adds with the rules, each with a user and a session, on a sample of their
   own per durability mode (and, with strace, the disk syncs each one asks for);
4. the handles closed, reopening: in this process, in fresh ones, and after a writer killed.

Nothing the benchmark does for itself is timed: the progress bar is redrawn between calls
(``Ticker``), the texts of each batch are made before its clock starts.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import TaskID

from ..config import MemoryConfig
from ..embedders import Embedder, resolve_embedder
from ..memory import Memory
from .progress import Ticker, progress_bar
from .reopen import Target, reopen_figures, reopen_steps, syncs_countable, syncs_per_add
from .stats import peak_rss_mb, percentiles
from .texts import chat_turns, fresh_queries, sentences, word_list

MODES = ("full", "normal")
SESSION_TURNS = 10  # one-message adds per session, as a chat adds its turns
SYNC_ADDS = 50  # one-message adds per strace run


def batch_size(memories: int, scopes: int) -> int:
    """One scope per call, at most 1,000 memories, and at least one batch for each mode."""
    return max(1, min(1_000, max(1, memories // scopes), -(-memories // len(MODES))))


def default_unsaved(url: str, memories: int, scopes: int) -> int:
    """What the killed writer adds: a tenth of the store on SQLite, whose vector snapshot it
    leaves that stale; one batch on PostgreSQL, which keeps no snapshot (and adds slowly)."""
    return max(1, memories // 10) if url.startswith("sqlite:") else batch_size(memories, scopes)


def batched_load(
    handles: dict[str, Memory], memories: int, scopes: int, words: list[str], tick: Ticker, task: TaskID
) -> dict[str, Any]:
    """Add ``memories`` in batches (``infer=False``), each batch timed on its mode's handle."""
    tick.start(task)
    rng = np.random.default_rng(7)
    batch, per_scope = batch_size(memories, scopes), max(1, memories // scopes)
    seconds = dict.fromkeys(MODES, 0.0)
    added, calls = dict.fromkeys(MODES, 0), dict.fromkeys(MODES, 0)
    for number, start in enumerate(range(0, memories, batch)):
        texts = sentences(min(batch, memories - start), rng, words, start=start)
        mode, user = MODES[number % len(MODES)], f"user-{(start // per_scope) % scopes}"
        started = time.perf_counter()
        handles[mode].add(texts, user_id=user, infer=False)
        seconds[mode] += time.perf_counter() - started
        added[mode], calls[mode] = added[mode] + len(texts), calls[mode] + 1
        tick(task, len(texts))
    return {
        mode: {"adds": added[mode], "calls": calls[mode], "per_s": round(added[mode] / seconds[mode], 1)}
        for mode in MODES
    }


def timed_searches(memory: Memory, asks: list[tuple[str, str | None]], tick: Ticker, task: TaskID) -> dict[str, Any]:
    """Each (query, user) searched once; wall (perf_counter) and process CPU per call.

    The CPU time counts every thread of the process (the lexical retriever runs on a second
    one), so it can exceed the wall time; the bar is advanced outside both clocks.
    """
    tick.start(task)
    wall_ms, cpu_s = [], 0.0
    for query, user in asks:
        cpu = time.process_time()
        started = time.perf_counter()
        memory.search(query, user_id=user, limit=10, threshold=0)
        ended = time.perf_counter()
        cpu_s += time.process_time() - cpu
        wall_ms.append((ended - started) * 1000)
        tick(task)
    n = len(wall_ms)
    return {"searches": n, "ms": percentiles(wall_ms), "wall_ms_per_search": round(sum(wall_ms) / n, 3),
            "cpu_ms_per_search": round(cpu_s * 1000 / n, 3)}  # fmt: skip


def per_call_adds(memory: Memory, mode: str, calls: int, scopes: int, tick: Ticker, task: TaskID) -> dict[str, Any]:
    """``calls`` one-message adds with the rules (``infer`` as configured: on), each timed.

    Sessions of ``SESSION_TURNS`` turns each, one user per session, over the loaded scopes;
    the messages are ``bench extract``'s built-in mix of statements and small talk.
    """
    tick.start(task)
    memory.search("before the adds", user_id="user-0")  # this handle's index catches up outside the clock
    durations = []
    for i, (speaker, text) in enumerate(chat_turns(calls, 5 if mode == "full" else 6, SESSION_TURNS)):
        session = i // SESSION_TURNS
        message = [{"role": "user", "name": speaker, "content": text}]
        started = time.perf_counter()
        memory.add(message, user_id=f"user-{session % scopes}", session_id=f"{mode}-{session}")
        durations.append(time.perf_counter() - started)
        tick(task)
    return {"calls": calls, "per_s": round(calls / sum(durations), 1),
            "ms": percentiles([d * 1000 for d in durations])}  # fmt: skip


@dataclass
class _Run:
    """What one run's steps share: its sizes, texts, handles' settings and progress bars."""

    memories: int
    scopes: int
    queries: int
    add_calls: int
    config: dict[str, MemoryConfig]
    embedder: Embedder  # one model for both handles: a second copy would count in the peak RSS
    tick: Ticker
    tasks: dict[str, TaskID]
    words: list[str] = field(default_factory=word_list)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(11))
    asked: set[str] = field(default_factory=set)

    def queries_for(self, n: int) -> list[str]:
        return fresh_queries(n, self.rng, self.words, self.asked)


def run_store_bench(
    memories: int, scopes: int, *, store_url: str | None, embedder: str | None, queries: int, add_calls: int,
    unsaved: int | None, runs: int, console: Console,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of one store of ``memories`` memories over ``scopes`` users (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp, progress_bar(console, auto_refresh=False) as progress:
        url = store_url or f"sqlite:///{tmp}/bench.db"
        # each run its own tenant: one database given with --store holds several runs apart
        tenant = f"bench-{memories}-{scopes}-{time.time_ns()}"
        config = {mode: MemoryConfig(store=url, embedder=embedder, max_batch=2_000, tenant_id=tenant, durability=mode)
                  for mode in MODES}  # fmt: skip
        bars = {
            "load": (f"add {memories:,} in {scopes:,} scope(s), batched", memories),
            "scoped": ("search, one scope", queries),
            "tenant": ("search, whole tenant", max(1, queries // 3)),
            **{mode: (f"add one message a call, {mode}", add_calls) for mode in MODES},
            **({"syncs": ("fdatasync per add (strace)", 4)} if syncs_countable(url) else {}),
            "reopen": ("reopen, fresh processes", reopen_steps(runs)),
        }
        tasks = {name: progress.add_task(label, total=total, start=False) for name, (label, total) in bars.items()}
        run = _Run(memories, scopes, queries, add_calls, config, resolve_embedder(embedder), Ticker(progress), tasks)
        result = {"store": url.partition(":")[0], "memories": memories, "scopes": scopes, **_while_open(run)}
        target = Target(url, tenant, embedder, scopes)
        result["fdatasync_per_add"] = None
        if "syncs" in tasks:
            run.tick.start(tasks["syncs"])
            step = partial(run.tick, tasks["syncs"])
            result["fdatasync_per_add"] = syncs_per_add(target, min(add_calls, SYNC_ADDS), SESSION_TURNS, step)
        run.tick.start(tasks["reopen"])
        result["reopen"] = reopen_figures(
            config["full"], target, runs=runs, queries=run.queries_for(1 + 2 * runs),
            unsaved=unsaved or default_unsaved(url, memories, scopes), batch=batch_size(memories, scopes),
            step=partial(run.tick, tasks["reopen"]),
        )  # fmt: skip
    return result


def analyze_after_load(url: str) -> None:
    """On PostgreSQL, ``ANALYZE`` after the bulk load, as after any bulk import: the searches
    then run on the plans a loaded database gets once autovacuum has looked at it (without
    statistics, a tenant-wide search was seen to find its hits' rows through the wrong index)."""
    if url.startswith(("postgresql:", "postgres:")):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")


def _while_open(run: _Run) -> dict[str, Any]:
    """Load, search and one-message adds, on a handle per durability mode; both closed after."""
    with ExitStack() as stack:
        handles = {mode: stack.enter_context(Memory(embedder=run.embedder, config=run.config[mode])) for mode in MODES}
        batched = batched_load(handles, run.memories, run.scopes, run.words, run.tick, run.tasks["load"])
        analyze_after_load(str(run.config["full"].store))
        started = time.perf_counter()
        handles["full"].search("after the load", user_id="user-0")  # builds the vector index
        built = round(time.perf_counter() - started, 3)
        scoped: list[tuple[str, str | None]] = [
            (q, f"user-{int(run.rng.integers(0, run.scopes))}") for q in run.queries_for(run.queries)
        ]
        everywhere: list[tuple[str, str | None]] = [(q, None) for q in run.queries_for(max(1, run.queries // 3))]
        search = {
            "scoped": timed_searches(handles["full"], scoped, run.tick, run.tasks["scoped"]),
            "tenant_wide": timed_searches(handles["full"], everywhere, run.tick, run.tasks["tenant"]),
        }
        rss = peak_rss_mb()  # before the second handle builds a vector index of its own
        per_call = {}
        for mode in MODES:
            per_call[mode] = per_call_adds(handles[mode], mode, run.add_calls, run.scopes, run.tick, run.tasks[mode])
            handles[mode].close()  # one index in memory at a time
    add = {"batch_size": batch_size(run.memories, run.scopes), "batched": batched, "per_call": per_call}
    return {"add": add, "search": search, "peak_rss_mb": rss, "first_search_after_load_s": built}


def write_json(path: Path | None, data: Any) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))


def figure_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    """One run's figures as (what, value) rows: the table ``bench store`` prints."""
    add, search, reopen = r["add"], r["search"], r["reopen"]

    def ms(p: dict[str, float]) -> str:
        return f"{p['p50']:.2f} / {p['p95']:.2f} / {p['p99']:.2f}"

    def fresh(f: dict[str, Any]) -> str:
        return f"{f['total_s']:.2f} ({f['startup_s']:.2f} / {f['open_s']:.3f} / {f['first_search_ms']:.1f} ms)"

    syncs = r["fdatasync_per_add"]
    batch = f"{add['batch_size']:,} a call"
    rows = [(f"batched add/s ({batch}), {m}", f"{add['batched'][m]['per_s']:,.0f}") for m in MODES]
    rows += [(f"one-message add/s (rules), {m}", f"{add['per_call'][m]['per_s']:,.0f}") for m in MODES]
    rows += [(f"one-message add ms p50/95/99, {m}", ms(add["per_call"][m]["ms"])) for m in MODES]
    rows += [
        ("fdatasync per add, full / normal",
         f"{syncs['full']:.2f} / {syncs['normal']:.2f}" if syncs else "not counted"),
        ("first search after load s", f"{r['first_search_after_load_s']:.3f}"),
    ]  # fmt: skip
    for name, label in (("scoped", "scoped"), ("tenant_wide", "tenant-wide")):
        s = search[name]
        rows += [(f"{label} search ms p50/95/99", ms(s["ms"])),
                 (f"{label} ms per search: wall / CPU", f"{s['wall_ms_per_search']:.2f} / "
                  f"{s['cpu_ms_per_search']:.2f}")]  # fmt: skip
    same = reopen["same_process"]
    after_kill = reopen["fresh_process_after_kill"]
    rows += [
        ("peak RSS MB (load, searches)", f"{r['peak_rss_mb']:,.0f}"),
        ("reopen: open s / 1st search ms", f"{same['open_s']:.3f} / {same['first_search_ms']:.1f}"),
        ("fresh process s (start/open/search)", fresh(reopen["fresh_process"])),
        (f"  after a kill, {after_kill['unsaved_rows']:,} unsaved", fresh(after_kill)),
        ("fresh `engramdb search` s", f"{reopen['fresh_cli_first_result_s']:.2f}"),
    ]
    return rows
