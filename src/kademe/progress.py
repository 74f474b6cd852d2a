"""A run you can watch: live progress of each year's stages on stderr, never on stdout.

The stages report through four calls: ``start(label, stage, total)`` when a stage of a year
begins, ``advance(n)`` after each shard (n chunks more), ``event(text)`` for an OOM or a rung
change, ``finish()`` at the end. On a terminal a rich live display shows, per year, the stage,
chunks done of total, chunks/s and the ETA, with the events printed above the bars as they happen.
When stderr is not a terminal (a log file, a Prefect worker) each ``advance`` writes one line::

    kademe: 2011 embed 1024/11649 chunks, 1000 embedded, 24 reused, 0 committed; 812 chunks/s, ETA 14 s

(the embed stage says how the chunks done so far were done: encoded by this run, reused from an earlier
checkpoint by text hash, or already committed by an earlier run; issue 30)

and each event one ``kademe: 2011 embed: <text>`` line. Importing this module imports neither
prefect nor rich; rich is imported only for a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO


class RunProgress:
    """Progress of one run on stderr: a live display on a terminal, one line per shard elsewhere.

    Args:
        stream: where to write (default ``sys.stderr``); never stdout.
        live: force the display on (True) or off (False); default: whether ``stream`` is a terminal.
        clock: seconds as a float (a test passes a fake clock).
        console: a ``rich.console.Console`` for the live display (a test passes one writing to a StringIO).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> p = RunProgress(stream=out, live=False, clock=iter([0.0, 2.0]).__next__)
        >>> p.start("2011", "embed", 100); p.advance(50); p.finish()
        >>> out.getvalue()
        'kademe: 2011 embed 50/100 chunks, 25 chunks/s, ETA 2 s\\n'
    """

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, console=None):
        self.stream = stream or sys.stderr
        if self.stream is sys.stdout:
            raise ValueError("RunProgress writes to stderr, never to stdout")
        self.live = _isatty(self.stream) if live is None else live
        self.clock = clock
        self.label = self.stage = ""
        self.total = self.done = 0
        self.counts: dict[str, int] = {}
        self.started = 0.0
        self._console = console
        self._progress = None  # rich.progress.Progress while live
        self._task = None

    # -- the four calls the stages make --------------------------------------------------------
    def start(self, label: str, stage: str, total: int) -> None:
        """A stage of ``label`` (a year) begins with ``total`` chunks to do."""
        self.label, self.stage, self.total, self.done, self.counts = label, stage, total, 0, {}
        self.started = self.clock()
        if self.live:
            progress = self._ensure_live()
            self._task = progress.add_task(f"{label} {stage}", total=max(total, 1), stats=_rate_eta(0, total, 0))

    def advance(self, n: int, **counts: int) -> None:
        """``n`` more chunks are done (called once per shard); ``counts`` say how the done ones were done
        (the embed stage: ``embedded``, ``reused``, ``committed``), shown beside the total (issue 30)."""
        self.done += n
        self.counts = counts or self.counts
        stats = _breakdown(self.counts) + _rate_eta(self.done, self.total, self.clock() - self.started)
        if self.live:
            self._ensure_live().update(self._task, completed=self.done, total=max(self.total, 1), stats=stats)
            return
        self._line(f"{self.label} {self.stage} {self.done}/{self.total} chunks, {stats}")

    def event(self, text: str) -> None:
        """Something the operator should see as it happens: an OOM, a rung change."""
        if self.live:
            self._ensure_live().console.print(f"[yellow]{self.label} {self.stage}:[/] {text}", highlight=False)
            return
        self._line(f"{self.label} {self.stage}: {text}")

    def finish(self) -> None:
        """Stop the live display (the last frame stays on screen)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = self._task = None

    def __call__(self, done: int, total: int, **counts: int) -> None:
        """The stages' ``progress(done, total, **counts)`` callback: advance to ``done``."""
        if total != self.total:
            self.total = total
        self.advance(done - self.done, **counts)

    # -- output ----------------------------------------------------------------------------------
    def _line(self, text: str) -> None:
        self.stream.write(f"kademe: {text}\n")
        self.stream.flush()

    def _ensure_live(self):
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            console = self._console or Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks, {task.fields[stats]}"),
                console=console, transient=False,
            )
            self._progress.start()
        return self._progress


def _breakdown(counts: dict[str, int]) -> str:
    """``16 embedded, 310 reused, 0 committed; `` (nothing without counts): what the done chunks cost."""
    return ", ".join(f"{v} {k}" for k, v in counts.items()) + "; " if counts else ""


def _rate_eta(done: int, total: int, seconds: float) -> str:
    """``812 chunks/s, ETA 14 s`` (``?`` while nothing is measured yet)."""
    if done <= 0 or seconds <= 0:
        return "? chunks/s, ETA ?"
    rate = done / seconds
    return f"{rate:.0f} chunks/s, ETA {max(total - done, 0) / rate:.0f} s"


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
