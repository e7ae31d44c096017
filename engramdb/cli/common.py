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
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigurationError, EngramError, NotFoundError, ValidationError
from ..memory import Memory
from ..models import MemoryItem, ScoreDetail
from ..settings import load_settings

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
    err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)  # "pip install 'engramdb[otel]'" is no markup
    return typer.Exit(code)


@contextmanager
def opened(store: str | None, embedder: str | None) -> Iterator[Memory]:
    """Open a Memory from settings, turning engramdb errors into a message and an exit code."""
    try:
        overrides = {k: v for k, v in (("store", store), ("embedder", embedder)) if v is not None}
        settings = load_settings(**overrides)
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


def emit(
    model: BaseModel | list[Any], as_json: bool, table: Table | None = None, empty: str = "nothing to show"
) -> None:
    """The result as one line of JSON (with ``--json``, or when there is no table), else the table,
    or the line ``empty`` when it has no rows (a table of headers alone reads as a fault)."""
    if as_json or table is None:
        if isinstance(model, list):
            sys.stdout.write(json.dumps([m.model_dump(mode="json") for m in model]) + "\n")
        else:
            sys.stdout.write(model.model_dump_json() + "\n")
    elif table.row_count == 0:
        out.print(empty, highlight=False)
    else:
        out.print(table)


def items_table(items: list[MemoryItem], scores: list[float] | None = None) -> Table:
    """Memories as rows; with scores, a score column, and a ``why`` column when they were explained."""
    table = Table(show_lines=False)
    for name in ("id", "kind", "memory", "scope", "created"):
        table.add_column(name, overflow="fold")
    explained = [getattr(item, "explain", None) for item in items]
    if scores is not None:
        table.add_column("score", justify="right")
    if any(explained):
        table.add_column("why", overflow="fold")
    for i, item in enumerate(items):
        scope = "/".join(x for x in (item.user_id, item.agent_id, item.session_id) if x)
        row = [item.id, item.kind, item.memory, scope, item.created_at.strftime("%Y-%m-%d %H:%M")]
        if scores is not None:
            row.append(f"{scores[i]:.3f}")
        if any(explained):
            row.append(score_parts(explained[i]))
        table.add_row(*row)
    return table


def score_parts(detail: ScoreDetail | None) -> str:
    """A hit's score in its parts, as ``--explain`` gives them: each retriever's rank (fusion
    reads ranks), the fused score, then each factor that lowered it (``--json`` has them all)."""
    if detail is None:
        return ""
    parts = []
    if detail.dense_rank is not None:
        parts.append(f"dense #{detail.dense_rank} (cosine {detail.dense_similarity or 0:.2f})")
    if detail.lexical_rank is not None:
        parts.append(f"bm25 #{detail.lexical_rank}")
    parts.append(f"fused {detail.fused:.3f}")
    factors = {"recency": detail.recency, "importance": detail.importance, "speaker": detail.speaker,
               "when": detail.when}  # fmt: skip
    parts += [f"× {name} {value:.2f}" for name, value in factors.items() if value is not None and value != 1]
    return ", ".join(parts)


def detail_table(item: MemoryItem) -> Table:
    """Every field of one memory, one per row, what it says first (an unset one as ``-``; objects as JSON)."""
    table = Table(show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    fields = item.model_dump(mode="json")
    first = {name: fields.pop(name) for name in ("id", "memory", "kind", "state")}
    for name, value in {**first, **fields}.items():
        if isinstance(value, (dict, list)):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = "-" if value is None else str(value)
        table.add_row(name, shown)
    return table
