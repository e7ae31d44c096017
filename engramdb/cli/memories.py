"""Commands on memories: add, search, context, list, get, update, delete, history."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..memory import Memory
from .common import (
    AgentOpt,
    EmbedderOpt,
    FilterOpt,
    JsonOpt,
    SessionOpt,
    StoreOpt,
    UserOpt,
    detail_table,
    emit,
    err,
    items_table,
    json_arg,
    key_values,
    opened,
    out,
)

commands = typer.Typer()


@commands.command()
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
    payload: Any = json_arg(messages, "--messages") if messages is not None else None
    if payload is None:
        if text is None:
            err.print("[red]error:[/red] give a text or --messages")
            raise typer.Exit(2)
        payload = {"role": "user", "content": text, **({"name": name} if name else {})}
    with opened(store, embedder) as m:
        result = m.add(
            payload, user_id=user, agent_id=agent, session_id=session, kind=kind,
            metadata=json_arg(metadata, "--metadata"), infer=infer,
        )  # fmt: skip
        table = Table("id", "event", "memory")
        for r in result.results:
            table.add_row(r.id, r.event.value, r.memory)
        emit(result, as_json, table)


@commands.command()
def search(
    query: str,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    filter: FilterOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-k")] = 10,
    threshold: Annotated[
        Optional[float], typer.Option(help="answer nothing when no hit's relevance reaches it (0: never)")
    ] = None,
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
            query, user_id=user, agent_id=agent, session_id=session, filters=json_arg(filter, "--filter"),
            limit=limit, threshold=threshold, explain=explain, as_of=as_of, reference_date=reference_date,
            time_range=(since, until) if since or until else None, include_invalid=include_invalid, options=options,
        )  # fmt: skip
        hits = list(result.results)
        emit(result, as_json, items_table(list(hits), [h.score for h in hits]), empty="no memories found")


@commands.command()
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
        emit(built, True)
    else:
        sys.stdout.write(built.text + "\n")  # plain: the citations [n] are not markup


@commands.command("list")
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
            user_id=user, agent_id=agent, session_id=session, filters=json_arg(filter, "--filter"),
            kind=kind, limit=limit, cursor=cursor,
        )  # fmt: skip
        emit(page, as_json, items_table(page.results), empty="no memories")
        if not as_json and page.results:
            out.print(
                f"{len(page.results)} of {page.total}"
                + (f"; next: --cursor {page.next_cursor}" if page.next_cursor else "")
            )


@commands.command()
def get(memory_id: str, store: StoreOpt = None, embedder: EmbedderOpt = None, as_json: JsonOpt = False) -> None:
    """Show one memory: every field, its scope, times, state, metadata and provenance."""
    with opened(store, embedder) as m:
        item = m.get(memory_id)
        emit(item, as_json, detail_table(item))


@commands.command()
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
        item = m.update(memory_id, text, metadata=json_arg(metadata, "--metadata"))
        emit(item, as_json, items_table([item]))


@commands.command()
def delete(
    memory_id: Annotated[Optional[str], typer.Argument()] = None,
    user: UserOpt = None,
    agent: AgentOpt = None,
    session: SessionOpt = None,
    hard: Annotated[bool, typer.Option("--hard", help="scope delete: remove history and every trace too")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="scope delete: do not ask for confirmation")] = False,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete one memory by id, or every memory of a scope (--user/--agent/--session).

    A scope delete asks first, in a terminal; elsewhere (a script, a pipe) it needs --yes."""
    with opened(store, embedder) as m:
        if memory_id is not None:
            result = m.delete(memory_id)
        else:
            if not yes and (user, agent, session) != (None, None, None):
                _confirm_scope_delete(m, user, agent, session, hard)
            result = m.delete_all(user_id=user, agent_id=agent, session_id=session, hard=hard)
        emit(result, as_json, None) if as_json else out.print(result.message)


def _confirm_scope_delete(m: Memory, user: str | None, agent: str | None, session: str | None, hard: bool) -> None:
    """Ask before deleting a scope; without a terminal to ask in, refuse (exit 2) instead of guessing."""
    named = [f"{what} {value!r}" for what, value in (("user", user), ("agent", agent), ("session", session)) if value]
    scope = ", ".join(named)
    if not sys.stdin.isatty():
        err.print(f"[red]error:[/red] deleting every memory of {scope} needs confirmation: "
                  "run it in a terminal, or pass --yes", highlight=False)  # fmt: skip
        raise typer.Exit(2)
    count = m.get_all(user_id=user, agent_id=agent, session_id=session, limit=1, include_inactive=True).total
    traces = " and every trace of them (history, jobs)" if hard else ""
    if not typer.confirm(f"Delete all {count} memories of {scope}{traces}?", default=False):
        err.print("nothing deleted")
        raise typer.Exit(1)


@commands.command()
def history(memory_id: str, store: StoreOpt = None, embedder: EmbedderOpt = None, as_json: JsonOpt = False) -> None:
    """Show every change to a memory."""
    with opened(store, embedder) as m:
        entries = m.history(memory_id)
        table = Table("when", "event", "old", "new")
        for e in entries:
            table.add_row(
                e.created_at.isoformat(timespec="seconds"), e.event.value, e.old_memory or "", e.new_memory or ""
            )
        emit(entries, as_json, table, empty="no history")
