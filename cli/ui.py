"""Terminal output for the CLI: messages, rich progress bars, or JSON lines for scripts.

The library never prints; it reports progress through a plain callable `(done, total) -> None`. This module turns
that into a rich progress bar on stderr, JSON lines on stderr (`--json-progress`), or nothing (`--quiet`).
Tests inject their own `Console`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Advance = Callable[[int], None]


@dataclass
class UI:
    quiet: bool = False
    verbose: bool = False
    json_progress: bool = False
    err: Console = field(default_factory=lambda: Console(stderr=True))
    out: Console = field(default_factory=Console)

    def event(self, kind: str, **fields: object) -> None:
        """One JSON line on stderr (only with --json-progress)."""
        if self.json_progress:
            print(json.dumps({"event": kind, **fields}, default=str), file=sys.stderr, flush=True)

    def info(self, message: str) -> None:
        if self.json_progress:
            self.event("info", message=message)
        elif not self.quiet:
            self.err.print(escape(message), highlight=False)

    def debug(self, message: str) -> None:
        if self.verbose and not self.json_progress:
            self.err.print(f"[dim]{escape(message)}[/dim]", highlight=False)

    def error(self, message: str, code: int) -> None:
        if self.json_progress:
            self.event("error", message=message, exit_code=code)
        # Messages are plain text from the library: `pip install 'reenact[arcface]'` must not lose its brackets.
        self.err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        if self.json_progress:
            self.event("warning", message=message)
        elif not self.quiet:
            self.err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def progress(self, label: str, total: int | None) -> Iterator[Advance]:
        """Yield `advance(n)`; shows a bar (or JSON lines at most every 0.5 s) while the block runs."""
        if self.json_progress:
            done, last = 0, 0.0

            def advance_json(n: int = 1) -> None:
                nonlocal done, last
                done += n
                now = time.monotonic()
                if now - last >= 0.5 or (total is not None and done >= total):
                    last = now
                    self.event("progress", stage=label, done=done, total=total)

            yield advance_json
            self.event("progress", stage=label, done=done, total=total, finished=True)
            return
        if self.quiet:
            yield lambda n=1: None
            return
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn()]
        with Progress(*columns, console=self.err, transient=False) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n=1: bar.advance(task, n)
