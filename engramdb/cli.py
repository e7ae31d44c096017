"""The ``engramdb`` command line: every Memory operation, human output or ``--json``.

Configuration comes from ``ENGRAMDB_*`` variables and the config file, read here (the
edge) and passed down; ``--store``/``--embedder`` override them. Exit codes: 0 ok,
2 bad input, 3 not found, 4 configuration, 5 store or provider failure.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from .config import Settings
from .errors import ConfigurationError, EngramError, NotFoundError, ValidationError
from .memory import Memory
from .models import MemoryItem

app = typer.Typer(help="engramdb: long-term memory for AI agents.", no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)

EXIT_CODES: dict[type[EngramError], int] = {ValidationError: 2, NotFoundError: 3, ConfigurationError: 4}

StoreOpt = Annotated[Optional[str], typer.Option("--store", "-s", help="store URL or path (ENGRAMDB_STORE)")]
EmbedderOpt = Annotated[Optional[str], typer.Option("--embedder", help="'provider:model' (ENGRAMDB_EMBEDDER)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
UserOpt = Annotated[Optional[str], typer.Option("--user", "-u", help="user_id scope")]
AgentOpt = Annotated[Optional[str], typer.Option("--agent", "-a", help="agent_id scope")]
SessionOpt = Annotated[Optional[str], typer.Option("--session", help="session_id scope")]
FilterOpt = Annotated[Optional[str], typer.Option("--filter", "-f", help="filter as a JSON object")]


@contextmanager
def opened(store: str | None, embedder: str | None) -> Iterator[Memory]:
    """Open a Memory from settings, turning engramdb errors into a message and an exit code."""
    try:
        overrides = {k: v for k, v in (("store", store), ("embedder", embedder)) if v is not None}
        settings = Settings(**overrides)  # type: ignore[arg-type]
        with Memory(config=settings.memory_config()) as memory:
            yield memory
    except EngramError as exc:
        code = next((c for cls, c in EXIT_CODES.items() if isinstance(exc, cls)), 5)
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code) from None


def key_values(pairs: list[str] | None) -> dict[str, str]:
    """Repeated ``-o key=value`` as a dict; a bare ``key`` gets an empty value, which validation refuses."""
    return dict(pair.partition("=")[::2] for pair in pairs or [])


def _json_arg(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] {what} is not valid JSON: {exc}")
        raise typer.Exit(2) from None


def _emit(model: BaseModel | list[Any], as_json: bool, table: Table | None = None) -> None:
    if as_json or table is None:
        if isinstance(model, list):
            sys.stdout.write(json.dumps([m.model_dump(mode="json") for m in model]) + "\n")
        else:
            sys.stdout.write(model.model_dump_json() + "\n")
    else:
        out.print(table)


def _items_table(items: list[MemoryItem], scores: list[float] | None = None) -> Table:
    table = Table(show_lines=False)
    for name in ("id", "kind", "memory", "scope", "created"):
        table.add_column(name, overflow="fold")
    if scores is not None:
        table.add_column("score", justify="right")
    for i, item in enumerate(items):
        scope = "/".join(x for x in (item.user_id, item.agent_id, item.session_id) if x)
        row = [item.id, item.kind, item.memory, scope, item.created_at.strftime("%Y-%m-%d %H:%M")]
        if scores is not None:
            row.append(f"{scores[i]:.3f}")
        table.add_row(*row)
    return table


@app.command()
def add(
    text: Annotated[Optional[str], typer.Argument(help="the text to remember (or use --messages)")] = None,
    messages: Annotated[Optional[str], typer.Option(help="a JSON list of chat messages")] = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    kind: Annotated[str, typer.Option(help="fact | preference | episode | task | procedure")] = "episode",
    metadata: Annotated[Optional[str], typer.Option(help="metadata as a JSON object")] = None,
    name: Annotated[Optional[str], typer.Option(help="speaker name")] = None,
    infer: Annotated[Optional[bool], typer.Option("--infer/--no-infer", help="derive facts (default: config)")] = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remember a text or a list of chat messages."""
    payload: Any = _json_arg(messages, "--messages") if messages is not None else None
    if payload is None:
        if text is None:
            err.print("[red]error:[/red] give a text or --messages")
            raise typer.Exit(2)
        payload = {"role": "user", "content": text, **({"name": name} if name else {})}
    with opened(store, embedder) as m:
        result = m.add(
            payload, user_id=user, agent_id=agent, session_id=session, kind=kind,
            metadata=_json_arg(metadata, "--metadata"), infer=infer,
        )  # fmt: skip
        table = Table("id", "event", "memory")
        for r in result.results:
            table.add_row(r.id, r.event.value, r.memory)
        _emit(result, as_json, table)


@app.command()
def search(
    query: str,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    filter: FilterOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-k")] = 10,
    threshold: Optional[float] = None,
    explain: bool = False,
    as_of: Annotated[Optional[str], typer.Option(help="answer as of this ISO 8601 time")] = None,
    since: Annotated[Optional[str], typer.Option(help="only memories from this ISO 8601 time on")] = None,
    until: Annotated[Optional[str], typer.Option(help="only memories before this ISO 8601 time")] = None,
    reference_date: Annotated[Optional[str], typer.Option(help="what 'last week' counts from (default now)")] = None,
    include_invalid: Annotated[bool, typer.Option(help="also superseded and forgotten memories")] = False,
    option: Annotated[Optional[list[str]], typer.Option("--option", "-o", help="search option key=value")] = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the memories most relevant to a query."""
    options = key_values(option) or None
    with opened(store, embedder) as m:
        result = m.search(
            query, user_id=user, agent_id=agent, session_id=session, filters=_json_arg(filter, "--filter"),
            limit=limit, threshold=threshold, explain=explain, as_of=as_of, reference_date=reference_date,
            time_range=(since, until) if since or until else None, include_invalid=include_invalid, options=options,
        )  # fmt: skip
        hits = list(result.results)
        _emit(result, as_json, _items_table(list(hits), [h.score for h in hits]))


@app.command()
def context(
    query: str,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    max_tokens: Annotated[int, typer.Option(help="the budget, counted with --encoding")] = 1500,
    recent_turns: Annotated[int, typer.Option(help="the session's last turns to include")] = 8,
    reference_date: Annotated[Optional[str], typer.Option(help="what 'last week' counts from (default now)")] = None,
    encoding: Annotated[str, typer.Option(help="cl100k_base or o200k_base")] = "o200k_base",
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The block an agent would add to its prompt for this query (--json: with its parts)."""
    with opened(store, embedder) as m:
        built = m.context(query, user_id=user, agent_id=agent, session_id=session, max_tokens=max_tokens,
                          recent_turns=recent_turns, reference_date=reference_date, encoding=encoding)  # fmt: skip
    if as_json:
        _emit(built, True)
    else:
        sys.stdout.write(built.text + "\n")  # plain: the citations [n] are not markup


@app.command("list")
def list_(
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    filter: FilterOpt = None,
    kind: Optional[str] = None,
    limit: int = 100,
    cursor: Optional[str] = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List memories page by page (the next cursor is printed after the table)."""
    with opened(store, embedder) as m:
        page = m.get_all(
            user_id=user, agent_id=agent, session_id=session, filters=_json_arg(filter, "--filter"),
            kind=kind, limit=limit, cursor=cursor,
        )  # fmt: skip
        _emit(page, as_json, _items_table(page.results))
        if not as_json:
            out.print(
                f"{len(page.results)} of {page.total}"
                + (f"; next: --cursor {page.next_cursor}" if page.next_cursor else "")
            )


@app.command()
def get(memory_id: str, store: StoreOpt = None, embedder: EmbedderOpt = None, as_json: JsonOpt = False) -> None:
    """Show one memory."""
    with opened(store, embedder) as m:
        item = m.get(memory_id)
        _emit(item, as_json, _items_table([item]))


@app.command()
def update(
    memory_id: str,
    text: Annotated[Optional[str], typer.Argument()] = None,
    metadata: Annotated[Optional[str], typer.Option(help="new metadata as a JSON object")] = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a memory's text and/or metadata (the old version stays in history)."""
    with opened(store, embedder) as m:
        item = m.update(memory_id, text, metadata=_json_arg(metadata, "--metadata"))
        _emit(item, as_json, _items_table([item]))


@app.command()
def delete(
    memory_id: Annotated[Optional[str], typer.Argument()] = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    hard: Annotated[bool, typer.Option("--hard", help="scope delete: remove history and every trace too")] = False,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete one memory by id, or every memory of a scope (--user/--agent/--session)."""
    with opened(store, embedder) as m:
        if memory_id is not None:
            result = m.delete(memory_id)
        else:
            result = m.delete_all(user_id=user, agent_id=agent, session_id=session, hard=hard)
        _emit(result, as_json, None) if as_json else out.print(result.message)


@app.command()
def history(memory_id: str, store: StoreOpt = None, embedder: EmbedderOpt = None, as_json: JsonOpt = False) -> None:
    """Show every change to a memory."""
    with opened(store, embedder) as m:
        entries = m.history(memory_id)
        table = Table("when", "event", "old", "new")
        for e in entries:
            table.add_row(
                e.created_at.isoformat(timespec="seconds"), e.event.value, e.old_memory or "", e.new_memory or ""
            )
        _emit(entries, as_json, table)


@app.command()
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


@app.command("import")
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
    from .bench.progress import progress_bar

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
    from .compat.mem0 import read_mem0

    try:
        return read_mem0(path, user_id=user)
    except ValidationError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


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


@app.command()
def stats(store: StoreOpt = None, embedder: EmbedderOpt = None, as_json: JsonOpt = False) -> None:
    """Counts and configuration of the store."""
    with opened(store, embedder) as m:
        s = m.stats()
        table = Table("field", "value")
        for key, value in s.model_dump().items():
            table.add_row(key, str(value))
        _emit(s, as_json, table)


@app.command()
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
        _emit(result, as_json, table)


@app.command()
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
        _emit(result, as_json, table)


@app.command()
def jobs(
    job_id: Annotated[Optional[str], typer.Argument(help="show one job; without it, retry pending jobs")] = None,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an extraction job, or retry the pending ones (after an LLM outage or a crash)."""
    with opened(store, embedder) as m:
        if job_id is not None:
            job = m.job(job_id)
            table = Table("field", "value")
            for key in ("id", "state", "attempts", "error"):
                table.add_row(key, str(getattr(job, key)))
            _emit(job, as_json, table)
            return
        done = m.process_pending()
        sys.stdout.write(json.dumps({"completed": done}) + "\n") if as_json else out.print(f"{done} job(s) completed")


keys_app = typer.Typer(no_args_is_help=True, help="API keys of the server.")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="the tenant the key belongs to")],
    user: Annotated[Optional[list[str]], typer.Option("--user", "-u", help="limit the key to these users")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="may manage keys")] = False,
    name: Annotated[Optional[str], typer.Option(help="a label")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; its secret is printed once and never stored."""
    from .server import create_key

    with opened(store, None) as m:
        secret, key = create_key(m.store, tenant, user_ids=user or None, admin=admin, name=name)
        if as_json:
            sys.stdout.write(json.dumps({"secret": secret, **key.model_dump(mode="json")}) + "\n")
        else:
            out.print(f"key {key.id} for tenant {tenant!r}: [bold]{secret}[/bold]  (shown once)")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[Optional[str], typer.Option("--tenant", "-t")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (never their secrets)."""
    with opened(store, None) as m:
        keys = m.store.list_keys(tenant)
        table = Table("id", "tenant", "users", "admin", "created", "revoked")
        for k in keys:
            table.add_row(k.id, k.tenant_id, ",".join(k.user_ids or ["*"]), str(k.admin), str(k.created_at),
                          str(k.revoked_at or ""))  # fmt: skip
        _emit(keys, as_json, table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a key at once."""
    with opened(store, None) as m:
        key = m.store.revoke_key(key_id)
        _emit(key, as_json, None) if as_json else out.print(f"revoked {key.id}")


@app.command()
def migrate(
    source: Annotated[str, typer.Option("--from", help="the store to copy, e.g. sqlite:///memory.db")],
    target: Annotated[str, typer.Option("--to", help="an empty store, e.g. postgresql://user@host/db")],
    as_json: JsonOpt = False,
) -> None:
    """Copy everything (embeddings, history, keys) to another store, then verify counts and checksums."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .migrate import migrate_store

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
        code = next((c for cls, c in EXIT_CODES.items() if isinstance(exc, cls)), 5)
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code) from None
    table = Table("table", "rows", "sha256", "verified")
    for t in report.tables:
        table.add_row(t.table, str(t.target_rows), t.target_sha256[:16], "yes" if t.ok else "NO")
    _emit(report, as_json, table)


NoAuthOpt = Annotated[bool, typer.Option("--no-auth", help="no API keys (loopback only)")]


def _loopback_without_auth(host: str, no_auth: bool) -> None:
    """Without API keys a server answers whoever reaches it: serve, proxy and MCP over HTTP then
    bind to loopback only."""
    from .server.auth import LOOPBACK

    if no_auth and host not in LOOPBACK:
        err.print("[red]error:[/red] --no-auth serves only on loopback (127.0.0.1, ::1)")
        raise typer.Exit(2)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8420,
    no_auth: NoAuthOpt = False,
    rate: Annotated[float, typer.Option(help="requests per second per key")] = 100.0,
    workers: Annotated[int, typer.Option(help="server processes sharing the store")] = 1,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Serve the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from .server import ServerSettings, create_app
    from .server.factory import ENV

    _loopback_without_auth(host, no_auth)
    settings = ServerSettings(auth=not no_auth, rate_per_second=rate, burst=max(1, int(rate * 2)))
    with opened(store, embedder) as m:  # validates the configuration and migrates the store once
        if workers <= 1:
            uvicorn.run(create_app(m, settings), host=host, port=port, log_level="warning")
            return
    os.environ[ENV] = json.dumps({**settings.model_dump(), "memory": {"store": store, "embedder": embedder}})
    uvicorn.run("engramdb.server.factory:make_app", factory=True, workers=workers, host=host, port=port,
                log_level="warning")  # fmt: skip


@app.command()
def proxy(
    upstream: Annotated[
        str, typer.Option(help="the OpenAI-compatible API to forward to, e.g. http://localhost:11434/v1")
    ],
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8421,
    max_tokens: Annotated[int, typer.Option(help="token budget of the context block added to each request")] = 1000,
    no_auth: NoAuthOpt = False,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Memory for an existing chat app: context in, turns recorded, per user (X-Engram-User or `user`).

    Callers send an engramdb key (X-API-Key; their Authorization goes upstream)."""
    import uvicorn

    from .server.proxy import create_proxy

    if not upstream.startswith(("http://", "https://")):
        err.print("[red]error:[/red] --upstream must be an http(s) URL")
        raise typer.Exit(2)
    _loopback_without_auth(host, no_auth)
    with opened(store, embedder) as m:
        app_ = create_proxy(m, upstream, max_tokens=max_tokens, auth=not no_auth)
        uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command("mcp")
def mcp_(
    transport: Annotated[str, typer.Option(help="stdio | http (streamable HTTP at /mcp)")] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP interface")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 8421,
    user: UserOpt = None,
    agent: AgentOpt = None,
    no_auth: NoAuthOpt = False,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Serve memory tools over MCP; --user/--agent fix the scope the tools may act on.

    Over stdio the caller is the local process that started it. Over HTTP every request needs
    an API key (Authorization: Bearer or X-API-Key), and the tools act in the key's tenant,
    for its users only."""
    from .server.mcp_tools import build_mcp, serve_http

    if transport not in ("stdio", "http"):
        err.print("[red]error:[/red] --transport is stdio or http")
        raise typer.Exit(2)
    if transport == "http":
        _loopback_without_auth(host, no_auth)
    with opened(store, embedder) as m:
        server = build_mcp(m, user_id=user, agent_id=agent)
        if transport == "stdio":
            server.run("stdio")
        else:
            serve_http(server, m, host=host, port=port, auth=not no_auth)


def _register_bench() -> None:
    from .bench.cli import bench_app

    app.add_typer(bench_app, name="bench", help="Benchmarks that print figures (not tests).")


_register_bench()


def main() -> None:
    app()
