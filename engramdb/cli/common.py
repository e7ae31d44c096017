"""What every command shares: the consoles and options, opening a Memory, output.

Nothing here imports a command module or ``engramdb.bench``, so those can import this
without a cycle.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from ..config import Settings
from ..errors import ConfigurationError, EngramError, NotFoundError, ValidationError
from ..memory import Memory
from ..models import MemoryItem

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error names a path: never broken across lines

EXIT_CODES: dict[type[EngramError], int] = {ValidationError: 2, NotFoundError: 3, ConfigurationError: 4}

StoreOpt = Annotated[Optional[str], typer.Option("--store", "-s", help="store URL or path (ENGRAMDB_STORE)")]
EmbedderOpt = Annotated[Optional[str], typer.Option("--embedder", help="'provider:model' (ENGRAMDB_EMBEDDER)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
UserOpt = Annotated[Optional[str], typer.Option("--user", "-u", help="user_id scope")]
AgentOpt = Annotated[Optional[str], typer.Option("--agent", "-a", help="agent_id scope")]
SessionOpt = Annotated[Optional[str], typer.Option("--session", help="session_id scope")]
FilterOpt = Annotated[Optional[str], typer.Option("--filter", "-f", help="filter as a JSON object")]


def failed(exc: EngramError) -> typer.Exit:
    """Print an engramdb error; the exit to raise, its code chosen by who is at fault (5: a failure)."""
    code = next((c for cls, c in EXIT_CODES.items() if isinstance(exc, cls)), 5)
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    return typer.Exit(code)


@contextmanager
def opened(store: str | None, embedder: str | None) -> Iterator[Memory]:
    """Open a Memory from settings, turning engramdb errors into a message and an exit code."""
    try:
        overrides = {k: v for k, v in (("store", store), ("embedder", embedder)) if v is not None}
        settings = Settings(**overrides)  # type: ignore[arg-type]
        with Memory(config=settings.memory_config()) as memory:
            yield memory
    except EngramError as exc:
        raise failed(exc) from None


def key_values(pairs: list[str] | None) -> dict[str, str]:
    """Repeated ``-o key=value`` as a dict; a bare ``key`` gets an empty value, which validation refuses."""
    return dict(pair.partition("=")[::2] for pair in pairs or [])


def json_arg(text: str | None, what: str) -> Any:
    """An option given as JSON, parsed; bad JSON exits with 2 before any store is opened."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] {what} is not valid JSON: {exc}")
        raise typer.Exit(2) from None


def emit(model: BaseModel | list[Any], as_json: bool, table: Table | None = None) -> None:
    """The result as one line of JSON (with ``--json``, or when there is no table), else the table."""
    if as_json or table is None:
        if isinstance(model, list):
            sys.stdout.write(json.dumps([m.model_dump(mode="json") for m in model]) + "\n")
        else:
            sys.stdout.write(model.model_dump_json() + "\n")
    else:
        out.print(table)


def items_table(items: list[MemoryItem], scores: list[float] | None = None) -> Table:
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
