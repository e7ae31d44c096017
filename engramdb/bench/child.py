"""The processes ``bench store`` starts beside itself: a fresh reader, a writer to kill, an adder.

Run as ``python -m engramdb.bench.child read|write|adds ...`` (``reopen.py`` starts them).
Each is its own process because that is what it measures: a reader pays the interpreter,
the imports and opening the store as a new program would; a writer is killed with SIGKILL
so the vector snapshot it would have refreshed is left stale; an adder runs under strace,
which counts the disk syncs of that process alone.

A reader prints one JSON line and leaves with ``os._exit``, without closing the store:
closing may rewrite the snapshot or flush access counts, and the next reader must find the
file exactly as this one did, so that every run measures the same state.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..config import MemoryConfig
from ..memory import Memory

READY = "ready"


def _config(args: argparse.Namespace, durability: str = "full") -> MemoryConfig:
    return MemoryConfig(
        store=args.store, embedder=args.embedder, tenant_id=args.tenant, durability=durability, max_batch=2_000
    )


def read(args: argparse.Namespace) -> None:
    """Open the store and run one scoped search: open and first search timed apart."""
    started = time.perf_counter()
    memory = Memory(config=_config(args))
    opened = time.perf_counter()
    hits = memory.search(args.query, user_id=args.user, limit=10, threshold=0).results  # the whole ranking
    searched = time.perf_counter()
    figures = {"open_s": opened - started, "first_search_ms": (searched - opened) * 1000, "hits": len(hits)}
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()
    os._exit(0)  # the store stays as found: see the module docstring


def write(args: argparse.Namespace) -> None:
    """Add ``count`` memories (batched, no extraction), search once, say so, and wait to be killed.

    The search brings this process's vector index up to date, as a live server's would be,
    so what the kill loses is exactly what a crash loses: the snapshot it would write on close.
    """
    import numpy as np  # here, not at the top: a reader imports only what a program using engramdb would

    from .texts import sentences, word_list

    words = word_list()
    rng = np.random.default_rng(args.seed)
    memory = Memory(config=_config(args))
    for start in range(0, args.count, args.batch):
        n = min(args.batch, args.count - start)
        user = f"user-{(start // args.batch) % args.scopes}"
        memory.add(sentences(n, rng, words, start=start), user_id=user, infer=False)
    memory.search("after the writes", user_id="user-0")
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # blocks until the parent kills this process (or goes away itself)
    os._exit(0)


def adds(args: argparse.Namespace) -> None:
    """``count`` one-message adds with the rules, as ``bench store`` times them: strace counts their syncs."""
    from .texts import chat_turns

    with Memory(config=_config(args, args.durability)) as memory:
        for i, (speaker, text) in enumerate(chat_turns(args.count, args.seed, args.session_turns)):
            message = {"role": "user", "name": speaker, "content": text}
            memory.add([message], user_id=args.user, session_id=f"syncs-{args.durability}-{i // args.session_turns}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engramdb.bench.child")
    parser.add_argument("--store", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--embedder")
    commands = parser.add_subparsers(dest="command", required=True)
    reader = commands.add_parser("read")
    reader.add_argument("--query", required=True)
    reader.add_argument("--user", required=True)
    writer = commands.add_parser("write")
    adder = commands.add_parser("adds")
    for sub in (writer, adder):
        sub.add_argument("--count", type=int, required=True)
        sub.add_argument("--seed", type=int, default=0)
    writer.add_argument("--batch", type=int, required=True)
    writer.add_argument("--scopes", type=int, required=True)
    adder.add_argument("--user", required=True)
    adder.add_argument("--durability", choices=["full", "normal"], required=True)
    adder.add_argument("--session-turns", type=int, required=True)
    args = parser.parse_args(argv)
    {"read": read, "write": write, "adds": adds}[args.command](args)


if __name__ == "__main__":
    main()
