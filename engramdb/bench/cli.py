"""``engramdb bench ...`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

bench_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


@bench_app.command("store")
def bench_store(
    sizes: Annotated[str, typer.Option(help="comma-separated memory counts")] = "10000,100000",
    scopes: Annotated[str, typer.Option(help="comma-separated scope counts")] = "1,1000",
    queries: int = 300,
    store: Annotated[Optional[str], typer.Option(help="store URL (default: a temporary SQLite file)")] = None,
    embedder: Optional[str] = None,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
) -> None:
    """Add throughput, search latency p50/p95/p99 and peak RSS."""
    from .store import run_store_bench, write_json

    results = []
    for size in (int(s) for s in sizes.split(",")):
        for n_scopes in (int(s) for s in scopes.split(",")):
            results.append(
                run_store_bench(size, n_scopes, store_url=store, embedder=embedder, queries=queries, console=console)
            )
    table = Table(
        "memories", "scopes", "add/s", "search p50 ms", "p95 ms", "p99 ms", "fresh 1st search s", "peak RSS MB"
    )
    for r in results:
        s = r["search_ms"]
        table.add_row(
            f"{r['memories']:,}", f"{r['scopes']:,}", f"{r['add_per_s']:,.0f}", f"{s['p50']:.2f}", f"{s['p95']:.2f}",
            f"{s['p99']:.2f}", str(r["fresh_process_first_search_s"]), str(r["peak_rss_mb"]),
        )  # fmt: skip
    Console().print(table)
    write_json(out, results)
