"""One rich progress bar style for long work (imports, benchmarks, re-embedding)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console | None = None, *, auto_refresh: bool = True) -> Progress:
    """``auto_refresh=False``: no drawing thread; the caller redraws (``Ticker``) between timed calls."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
        auto_refresh=auto_refresh,
    )


class Ticker:
    """Advances a bar without a drawing thread, redrawing at most ``per_s`` times a second.

    A benchmark calls it between timed calls: rich's own refresh thread would draw in the
    middle of them, taking the GIL and CPU time the figures would count as the library's.
    """

    def __init__(self, progress: Progress, per_s: float = 10.0) -> None:
        self.progress, self._every, self._drawn = progress, 1 / per_s, 0.0

    def start(self, task: TaskID) -> None:
        """A bar added with ``start=False`` counts its time from here."""
        self.progress.start_task(task)
        self.progress.refresh()
        self._drawn = time.monotonic()

    def __call__(self, task: TaskID, advance: float = 1) -> None:
        self.progress.advance(task, advance)
        now = time.monotonic()
        if now - self._drawn >= self._every:
            self.progress.refresh()
            self._drawn = now
