"""``engramdb bench serve``: requests/s and latency of the REST server on loopback.

Starts ``engramdb serve`` as its own process on a temporary store with one API key, then
runs a bounded load loop (N client threads, each with a keep-alive connection) for adds,
then for searches over what was added. The load generator shares the machine's cores with
the server, as a sidecar agent process would.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import httpx
import numpy as np
from rich.console import Console

from ..memory import Memory
from ..server.auth import create_key
from .stats import percentiles
from .texts import sentences, word_list


def _start(store: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "engramdb", "serve", "--store", store, "--port", str(port), "--rate", "100000",
           "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def _load(url: str, key: str, bodies: list[tuple[str, dict[str, Any]]], threads: int) -> dict[str, Any]:
    """Send every (path, body) once, spread over ``threads`` keep-alive connections; latency per request.

    The client is the standard library's ``http.client`` with bodies encoded in advance: it
    shares the cores with the server, so the less CPU it spends per request the more the
    figure measures the server (an httpx client costs several times more per request).
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    chunks = [[(path, json.dumps(body).encode()) for path, body in bodies[i::threads]] for i in range(threads)]

    def worker(chunk: list[tuple[str, bytes]]) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        mine, failed = [], 0
        for path, payload in chunk:
            t0 = time.perf_counter()
            conn.request("POST", path, body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - t0) * 1000)
            failed += response.status >= 400
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    return {"requests": len(bodies), "per_s": round(len(bodies) / seconds, 1), "ms": percentiles(latencies),
            "errors": errors}  # fmt: skip


def run_serve_bench(
    *, adds: int, searches: int, threads: int, users: int, workers: int, console: Console
) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    words = word_list()
    texts = sentences(adds, rng, words)
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/serve.db"
        with Memory(store) as memory:
            secret, _ = create_key(memory.store, "bench")
        proc, url = _start(store, workers)
        try:
            console.print(f"server up at {url}; {threads} client threads")
            add_bodies = [("/v1/memories", {"messages": t, "user_id": f"u{i % users}"}) for i, t in enumerate(texts)]
            added = _load(url, secret, add_bodies, threads)
            queries = [" ".join(words[j] for j in rng.integers(0, len(words), size=5)) for _ in range(searches)]
            search_bodies = [("/v1/search", {"query": q, "user_id": f"u{i % users}", "limit": 10, "threshold": 0})
                             for i, q in enumerate(queries)]  # fmt: skip
            searched = _load(url, secret, search_bodies, threads)
        finally:
            proc.terminate()
            proc.wait(10)
    return {"threads": threads, "users": users, "workers": workers, "add": added, "search": searched}
