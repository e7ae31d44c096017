"""``engramdb bench ...`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

SETTINGS = ("pooled", "per-question")  # bench longmemeval's (longmemeval.SETTINGS, not imported at start-up)
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
        "memories", "scopes", "add/s", "search p50 ms", "p95 ms", "p99 ms", "tenant-wide p50 ms", "p95 ms",
        "fresh 1st search s", "peak RSS MB",
    )  # fmt: skip
    for r in results:
        s = r["search_ms"]
        table.add_row(
            f"{r['memories']:,}", f"{r['scopes']:,}", f"{r['add_per_s']:,.0f}", f"{s['p50']:.2f}", f"{s['p95']:.2f}",
            f"{s['p99']:.2f}", f"{r['unscoped_search_ms']['p50']:.2f}", f"{r['unscoped_search_ms']['p95']:.2f}",
            str(r["fresh_process_first_search_s"]), str(r["peak_rss_mb"]),
        )  # fmt: skip
    Console().print(table)
    write_json(out, results)


@bench_app.command("extract")
def bench_extract(
    data: Annotated[Optional[Path], typer.Option(help="LoCoMo JSON to take messages from (default: built-in)")] = None,
    adds: Annotated[int, typer.Option(help="messages added, one per add, with the rule extractor")] = 2000,
    llm_adds: Annotated[int, typer.Option(help="of those, how many go through the scripted LLM")] = 200,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
) -> None:
    """Adds/s and share of adds that produce memories (rules); LLM calls and tokens per add (scripted)."""
    from .extract import run_extract_bench
    from .store import write_json

    result = run_extract_bench(data=data, adds=adds, llm_adds=llm_adds, console=console)
    table = Table("extractor", "adds", "adds/s", "adds read", "adds with new memories", "new/add", "LLM calls/add",
                  "prompt tok/add", "completion tok/add")  # fmt: skip
    for name in ("rules", "scripted_llm"):
        r = result[name]
        table.add_row(
            name, str(r["adds"]), f"{r['adds_per_s']:,.0f}", f"{r['share_of_adds_read']:.1%}",
            f"{r['share_of_adds_with_memories']:.1%}",
            f"{r['derived_per_add']:.2f}", f"{r['llm_calls_per_add']:.2f}", f"{r['prompt_tokens_per_add']:.0f}",
            f"{r['completion_tokens_per_add']:.0f}",
        )  # fmt: skip
    Console().print(table)
    write_json(out, result)


@bench_app.command("serve")
def bench_serve(
    adds: Annotated[int, typer.Option(help="add requests")] = 2000,
    searches: Annotated[int, typer.Option(help="search requests")] = 5000,
    threads: Annotated[int, typer.Option(help="concurrent client connections")] = 8,
    users: Annotated[int, typer.Option(help="distinct user ids")] = 50,
    workers: Annotated[int, typer.Option(help="server processes")] = 1,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
) -> None:
    """Requests/s and p50/p95 of add and search against `engramdb serve` on loopback."""
    from .serve import run_serve_bench
    from .store import write_json

    result = run_serve_bench(
        adds=adds, searches=searches, threads=threads, users=users, workers=workers, console=console
    )
    table = Table("route", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors")
    for name in ("add", "search"):
        r = result[name]
        table.add_row(name, str(r["requests"]), f"{r['per_s']:,.0f}", f"{r['ms']['p50']:.1f}", f"{r['ms']['p95']:.1f}",
                      f"{r['ms']['p99']:.1f}", str(r["errors"]))  # fmt: skip
    Console().print(table)
    write_json(out, result)


@bench_app.command("locomo")
def bench_locomo(
    data: Annotated[Path, typer.Option(help="LoCoMo JSON (a list of conversations)")],
    k: Annotated[str, typer.Option("--k", help="comma-separated cut-offs")] = "1,5,10",
    embedder: Optional[str] = None,
    limit_conversations: Optional[int] = None,
    option: Annotated[
        Optional[list[str]], typer.Option("--option", "-o", help="search option as key=value, repeatable")
    ] = None,
    context_turns: Annotated[
        Optional[int], typer.Option(min=0, max=8, help="preceding turns indexed with each (default: config)")
    ] = None,
    baseline: Annotated[bool, typer.Option(help="also measure BM25 alone (bm25s) per category")] = False,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
    chart: Annotated[Optional[Path], typer.Option(help="write a PNG chart of recall@k per category")] = None,
) -> None:
    """Evidence recall@k per category, search latency and ingest throughput on LoCoMo."""
    import pydantic

    from ..config import SearchOptions
    from ..errors import ConfigurationError
    from .locomo import chart as draw_chart
    from .locomo import render, run_locomo
    from .store import write_json

    if not data.is_file():
        console.print(f"[red]error:[/red] no such file: {data}")
        raise typer.Exit(2)
    from ..cli.common import key_values  # not at the top: importing engramdb.cli imports this module

    try:
        ks = sorted({int(x) for x in k.split(",")})
        options = SearchOptions.model_validate(key_values(option))
    except (ValueError, pydantic.ValidationError) as exc:
        console.print(f"[red]error:[/red] bad --k or --option: {exc}")
        raise typer.Exit(2) from None
    result = run_locomo(
        data,
        ks=ks,
        embedder=embedder,
        limit_conversations=limit_conversations,
        options=options,
        context_turns=context_turns,
        baseline=baseline,
        console=console,
    )
    Console().print(render(result, ks))
    write_json(out, result)
    if chart is not None:
        try:
            draw_chart(result, ks, chart)
        except ConfigurationError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(4) from None


@bench_app.command("longmemeval")
def bench_longmemeval(
    data: Annotated[Path, typer.Option(help="LongMemEval JSON (a list of questions)")],
    k: Annotated[str, typer.Option("--k", help="comma-separated cut-offs")] = "1,5,10",
    setting: Annotated[
        str, typer.Option(help="pooled, per-question, or both (comma-separated)")
    ] = "pooled,per-question",
    embedder: Optional[str] = None,
    limit: Annotated[Optional[int], typer.Option(help="the first N questions only")] = None,
    option: Annotated[
        Optional[list[str]], typer.Option("--option", "-o", help="search option as key=value, repeatable")
    ] = None,
    infer: Annotated[bool, typer.Option(help="derive facts on add, as the default configuration does")] = True,
    baseline: Annotated[bool, typer.Option(help="also measure BM25 alone (bm25s) per question type")] = False,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
    chart: Annotated[Optional[Path], typer.Option(help="write a PNG chart of turn recall@k per type")] = None,
) -> None:
    """Turn- and session-level evidence recall@k per question type on LongMemEval, pooled and per question."""
    import pydantic

    from ..config import SearchOptions
    from ..errors import ConfigurationError
    from .longmemeval import chart as draw_chart
    from .longmemeval import render, run_longmemeval
    from .store import write_json

    if not data.is_file():
        console.print(f"[red]error:[/red] no such file: {data}")
        raise typer.Exit(2)
    from ..cli.common import key_values  # not at the top: importing engramdb.cli imports this module

    settings = [s.strip() for s in setting.split(",") if s.strip()]
    try:
        ks = sorted({int(x) for x in k.split(",")})
        options = SearchOptions.model_validate(key_values(option))
        if not settings or set(settings) - set(SETTINGS):
            raise ValueError(f"--setting takes {', '.join(SETTINGS)}")
    except (ValueError, pydantic.ValidationError) as exc:
        console.print(f"[red]error:[/red] bad --k, --option or --setting: {exc}")
        raise typer.Exit(2) from None
    result = run_longmemeval(data, ks=ks, settings=settings, embedder=embedder, options=options, console=console,
                             limit=limit, baseline=baseline, infer=infer)  # fmt: skip
    wide = Console(width=max(Console().width, 150))  # eight figures a row: never folded into a narrow pipe
    for name in settings:
        wide.print(render(result, name, ks))
    write_json(out, result)
    if chart is not None:
        try:
            draw_chart(result, ks, chart)
        except ConfigurationError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(4) from None
