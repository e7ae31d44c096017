"""The ``engramdb`` command line: every Memory operation, human output or ``--json``.

Configuration comes from ``ENGRAMDB_*`` variables and the config file, read here (the
edge) and passed down; ``--store``/``--embedder`` override them. Exit codes: 0 ok,
2 bad input, 3 not found, 4 configuration, 5 store or provider failure.

The commands live by concern (``memories``, ``data``, ``admin``), each module with a Typer
of its own that ``app`` takes in unnamed, so they stay top-level commands; ``--help`` lists
them in the order they are added here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from ..bench.cli import bench_app
from . import admin, data, memories

__all__ = ["app", "main"]

app = typer.Typer(help="engramdb: long-term memory for AI agents.", no_args_is_help=True, add_completion=False)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"engramdb {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Options of engramdb itself, before any command."""


app.add_typer(memories.commands)
app.add_typer(data.commands)
app.add_typer(admin.commands)
app.add_typer(bench_app, name="bench", help="Benchmarks that print figures (not tests).")


def main() -> None:
    app()
