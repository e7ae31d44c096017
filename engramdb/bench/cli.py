"""``engramdb bench ...`` commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

SETTINGS = ("pooled", "per-question")  # bench longmemeval's (longmemeval.SETTINGS, not imported at start-up)
bench_app = typer.Typer(no_args_is_help=True)
ABSTENTION = "also ask every question in another's scope: threshold → share answered with nothing, R@k"

console = Console(stderr=True)


def _counts(text: str, option: str) -> list[int]:
    """``10000`` or ``10000,100000``: positive counts, or exit 2 naming the option."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        console.print(f"[red]error:[/red] {option} takes positive whole numbers separated by commas, not {text!r}")
        raise typer.Exit(2)
    return counts


@bench_app.command("store")
def bench_store(
    memories: Annotated[
        str,
        typer.Option(
            "--memories", "--sizes", help="memories loaded; a comma-separated list runs each (a growth table)"
        ),
    ] = "10000",
    scopes: Annotated[str, typer.Option(help="users the memories are spread over (comma-separated: each)")] = "100",
    queries: Annotated[int, typer.Option(min=1, help="searches in one scope; a third as many tenant-wide")] = 1000,
    add_calls: Annotated[int, typer.Option(min=1, help="one-message adds timed per durability mode")] = 1000,
    unsaved: Annotated[
        Optional[int],
        typer.Option(
            min=1, help="memories the killed writer adds (default: SQLite a tenth of --memories, PostgreSQL one batch)"
        ),
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="fresh processes per reopen figure (the median is shown)")] = 3,
    store: Annotated[Optional[str], typer.Option(help="store URL (default: a temporary SQLite file)")] = None,
    embedder: Optional[str] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON instead of a table")] = False,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
) -> None:
    """Adds/s (batched and one message a call, both durability modes), search p50/p95/p99 and CPU
    (one scope and tenant-wide), peak RSS, reopen and fresh-process times, fdatasync per add."""
    import json

    from .store import figure_rows, run_store_bench, write_json

    sizes, scope_counts = _counts(memories, "--memories"), _counts(scopes, "--scopes")
    results = [
        run_store_bench(size, n_scopes, store_url=store, embedder=embedder, queries=queries, add_calls=add_calls,
                        unsaved=unsaved, runs=runs, console=console)
        for size in sizes for n_scopes in scope_counts
    ]  # fmt: skip
    write_json(out, results)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    table = Table("figure", *(f"{r['memories']:,} in {r['scopes']:,} scopes" for r in results))
    for cells in zip(*(figure_rows(r) for r in results), strict=True):
        table.add_row(cells[0][0], *(value for _, value in cells))
    Console().print(table)


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
    abstention: Annotated[bool, typer.Option(help=ABSTENTION)] = False,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
    chart: Annotated[Optional[Path], typer.Option(help="write a PNG chart of recall@k per category")] = None,
) -> None:
    """Evidence recall@k per category, search latency and ingest throughput on LoCoMo."""
    from .locomo import chart as draw_chart
    from .locomo import render, run_locomo
    from .store import write_json

    ks, options = _recall_args(data, k, option)
    result = run_locomo(
        data,
        ks=ks,
        embedder=embedder,
        limit_conversations=limit_conversations,
        options=options,
        context_turns=context_turns,
        baseline=baseline,
        abstention=abstention,
        console=console,
    )
    Console().print(render(result, ks))
    _abstention(result, "LoCoMo")
    write_json(out, result)
    _draw(draw_chart, result, ks, chart)


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
    abstention: Annotated[bool, typer.Option(help=ABSTENTION + " (right scope: pooled)")] = False,
    out: Annotated[Optional[Path], typer.Option(help="write the figures as JSON")] = None,
    chart: Annotated[Optional[Path], typer.Option(help="write a PNG chart of turn recall@k per type")] = None,
) -> None:
    """Turn- and session-level evidence recall@k per question type on LongMemEval, pooled and per question."""
    from .longmemeval import chart as draw_chart
    from .longmemeval import render, run_longmemeval
    from .store import write_json

    settings = [s.strip() for s in setting.split(",") if s.strip()]

    def known() -> None:
        if not settings or set(settings) - set(SETTINGS):
            raise ValueError(f"--setting takes {', '.join(SETTINGS)}")

    ks, options = _recall_args(data, k, option, names="--k, --option or --setting", check=known)
    result = run_longmemeval(data, ks=ks, settings=settings, embedder=embedder, options=options, console=console,
                             limit=limit, baseline=baseline, infer=infer, abstention=abstention)  # fmt: skip
    wide = Console(width=max(Console().width, 150))  # eight figures a row: never folded into a narrow pipe
    for name in settings:
        wide.print(render(result, name, ks))
    _abstention(result, "LongMemEval")
    write_json(out, result)
    _draw(draw_chart, result, ks, chart)


def _abstention(result: dict[str, Any], title: str) -> None:
    """The trade-off table, when the run measured it."""
    from .abstention import render

    if "abstention" in result:
        Console().print(render(result["abstention"], title))


def _recall_args(
    data: Path, k: str, option: Optional[list[str]], *, names: str = "--k or --option",
    check: Optional[Callable[[], None]] = None,
) -> tuple[list[int], Any]:  # fmt: skip
    """A recall bench's data file, cut-offs and search options, checked (exit 2 on a bad one)."""
    import pydantic

    from ..config import SearchOptions

    if not data.is_file():
        console.print(f"[red]error:[/red] no such file: {data}")
        raise typer.Exit(2)
    from ..cli.common import key_values  # not at the top: importing engramdb.cli imports this module

    try:
        ks = sorted({int(x) for x in k.split(",")})
        options = SearchOptions.model_validate(key_values(option))
        if check is not None:
            check()
    except (ValueError, pydantic.ValidationError) as exc:
        console.print(f"[red]error:[/red] bad {names}: {exc}")
        raise typer.Exit(2) from None
    return ks, options


def _draw(draw: Callable[[Any, list[int], Path], None], result: Any, ks: list[int], chart: Optional[Path]) -> None:
    """The PNG a recall bench was asked for (exit 4 when matplotlib is missing)."""
    from ..errors import ConfigurationError

    if chart is None:
        return
    try:
        draw(result, ks, chart)
    except ConfigurationError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(4) from None
