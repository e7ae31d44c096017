"""Commands on the store as a whole: export, import, stats, consolidate, prune, jobs, migrate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..errors import EngramError, ValidationError
from ..ingest import MAX_PAGE
from .common import AgentOpt, EmbedderOpt, JsonOpt, SessionOpt, StoreOpt, UserOpt, emit, err, failed, opened, out

commands = typer.Typer()


@commands.command()
def export(
    path: Annotated[Optional[Path], typer.Argument(help="output file (default stdout)")] = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Write every memory as JSON Lines."""
    with opened(store, embedder) as m:
        sink = path.open("w", encoding="utf-8") if path else sys.stdout
        count = 0
        for item in m.export():
            sink.write(item.model_dump_json() + "\n")
            count += 1
        if path:
            sink.close()
            err.print(f"exported {count} memories to {path}")


@commands.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="a JSON Lines file written by export (or a mem0 file)")],
    batch: int = 500,
    from_mem0: Annotated[
        bool, typer.Option("--from-mem0", help="PATH is a mem0 export (.json/.jsonl) or history database (.db)")
    ] = False,
    user: UserOpt = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read memories from JSON Lines (ids and timestamps kept; duplicates skipped)."""
    from ..bench.progress import progress_bar

    lines = _read_mem0(path, user) if from_mem0 else _read_jsonl(path)
    counts = {"ADD": 0, "NOOP": 0}
    with opened(store, embedder) as m, progress_bar(err) as progress:
        task = progress.add_task("importing", total=len(lines))
        for start in range(0, len(lines), batch):
            result = m.import_items(lines[start : start + batch])
            for r in result.results:
                counts[r.event.value] += 1
            progress.advance(task, len(lines[start : start + batch]))
    if as_json:
        sys.stdout.write(json.dumps({"added": counts["ADD"], "skipped": counts["NOOP"]}) + "\n")
    else:
        out.print(f"imported {counts['ADD']} memories, skipped {counts['NOOP']} already present")


def _read_mem0(path: Path, user: str | None) -> list[dict[str, Any]]:
    from ..compat.mem0 import read_mem0

    try:
        return read_mem0(path, user_id=user)
    except ValidationError as exc:
        raise failed(exc) from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse the whole file first, so a bad line stops the import before anything is written."""
    if not path.is_file():
        err.print(f"[red]error:[/red] no such file: {path}")
        raise typer.Exit(2)
    records = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                err.print(f"[red]error:[/red] {path}:{number}: not JSON: {exc}")
                raise typer.Exit(2) from None
            if not isinstance(record, dict):
                err.print(f"[red]error:[/red] {path}:{number}: each line must be a JSON object")
                raise typer.Exit(2)
            records.append(record)
    return records


@commands.command()
def stats(store: StoreOpt = None, embedder: EmbedderOpt = None, as_json: JsonOpt = False) -> None:
    """Counts and configuration of the store."""
    with opened(store, embedder) as m:
        s = m.stats()
        table = Table("field", "value")
        for key, value in s.model_dump().items():
            table.add_row(key, str(value))
        emit(s, as_json, table)


@commands.command()
def consolidate(
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge near-duplicate memories of a scope (the originals stay in history)."""
    with opened(store, embedder) as m:
        result = m.consolidate(user_id=user, agent_id=agent, session_id=session)
        table = Table("survivor", "memory", "merged")
        for group in result.merged:
            table.add_row(group.survivor, group.memory, str(len(group.merged_from)))
        emit(result, as_json, table, empty="no near-duplicates to merge")


@commands.command()
def prune(
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    max_memories: Annotated[Optional[int], typer.Option(help="capacity of the scope")] = None,
    ttl_days: Annotated[Optional[float], typer.Option(help="forget what is older than this")] = None,
    min_retention: Annotated[Optional[float], typer.Option(help="forget what is retained less than this")] = None,
    hard: Annotated[bool, typer.Option("--hard", help="delete instead of marking forgotten")] = False,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Forget expired memories, and those over capacity, too old or too little retained."""
    policy = {"max_memories": max_memories, "ttl_days": ttl_days, "min_retention": min_retention}
    with opened(store, embedder) as m:
        result = m.prune(user_id=user, agent_id=agent, session_id=session, hard=hard,
                         policy={k: v for k, v in policy.items() if v is not None})  # fmt: skip
        table = Table("id", "reason")
        for memory_id, reason in result.forgotten.items():
            table.add_row(memory_id, reason)
        emit(result, as_json, table, empty="nothing to forget")


@commands.command()
def jobs(
    job_id: Annotated[Optional[str], typer.Argument(help="show one job; without it, retry pending jobs")] = None,
    failed_only: Annotated[
        bool, typer.Option("--failed", help="list the failed jobs, which nothing retries by itself")
    ] = False,
    retry: Annotated[bool, typer.Option("--retry", help="run the job given again now, as one attempt")] = False,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an extraction job or retry it, list the failed ones, or retry the pending ones
    (after an LLM outage or a crash)."""
    if retry and job_id is None:
        raise failed(ValidationError("--retry needs the id of the job to run again"))
    with opened(store, embedder) as m:
        if failed_only:
            page = m.jobs(state="failed", limit=MAX_PAGE)
            table = Table("id", "user", "attempts", "error")
            for found in page.results:
                table.add_row(found.id, found.user_id or "", str(found.attempts), (found.error or "")[:80])
            emit(page, as_json, table, empty="no failed job")
            return
        if job_id is not None:
            job = m.retry_job(job_id) if retry else m.job(job_id)
            table = Table("field", "value")
            for key in ("id", "state", "attempts", "error"):
                table.add_row(key, str(getattr(job, key)))
            emit(job, as_json, table)
            return
        done = m.process_pending()
        sys.stdout.write(json.dumps({"completed": done}) + "\n") if as_json else out.print(f"{done} job(s) completed")


@commands.command()
def migrate(
    source: Annotated[str, typer.Option("--from", help="the store to copy, e.g. sqlite:///memory.db")],
    target: Annotated[str, typer.Option("--to", help="an empty store, e.g. postgresql://user@host/db")],
    as_json: JsonOpt = False,
) -> None:
    """Copy everything (embeddings, history, keys) to another store, then verify counts and checksums."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..migrate import migrate_store

    columns = (TextColumn("{task.description:<15}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, transient=as_json) as bar:
            tasks: dict[str, Any] = {}

            def progress(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=total)
                bar.update(tasks[table], completed=done)

            report = migrate_store(source, target, progress=progress)
    except EngramError as exc:
        raise failed(exc) from None
    table = Table("table", "rows", "sha256", "verified")
    for t in report.tables:
        table.add_row(t.table, str(t.target_rows), t.target_sha256[:16], "yes" if t.ok else "NO")
    emit(report, as_json, table)
