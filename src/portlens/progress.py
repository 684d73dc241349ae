"""Progress on long work (ingest, normalize, summarize, Spark runs): a Rich bar on stderr when
it is a terminal, nothing at all when output is piped or the user asked for --quiet.

One line per file (records read, rate, elapsed) and, for several files, an overall line (files
done, ETA). Records are counted as batches land, so the bar moves every 100,000 records or so.
A Spark run has one line of tasks done out of the tasks known so far (`tasks`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class Progress:
    """What a command reports to: `file(path)` opens a file's line, `advance(records)` counts
    what landed, `done()` closes the file's line. The silent one does nothing."""

    def file(self, path: str) -> None:
        pass

    def advance(self, records: int) -> None:
        pass

    def done(self) -> None:
        pass

    def tasks(self, done: int, total: int) -> None:
        """Work counted in tasks (a Spark run): `done` of `total` so far."""


class _Bar(Progress):
    def __init__(self, bar, files: int):
        self.bar = bar
        self.overall = bar.add_task("files", total=files, unit="files") if files > 1 else None
        self.current = None

    def file(self, path: str) -> None:
        name = path if len(path) <= 40 else "…" + path[-39:]
        self.current = self.bar.add_task(name, total=None, unit="records")

    def advance(self, records: int) -> None:
        if self.current is not None:
            self.bar.advance(self.current, records)

    def done(self) -> None:
        if self.current is not None:
            self.bar.update(self.current, visible=False)
            self.current = None
        if self.overall is not None:
            self.bar.advance(self.overall, 1)

    def tasks(self, done: int, total: int) -> None:
        if self.current is None:
            self.current = self.bar.add_task("spark", total=total, unit="tasks")
        self.bar.update(self.current, completed=done, total=total)


@contextmanager
def progress(console, files: int = 1, quiet: bool = False) -> Iterator[Progress]:
    """A progress reporter on `console` (a Rich Console, stderr): live only on a terminal."""
    if quiet or not console.is_terminal:
        yield Progress()
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, ProgressColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Records (or files) per second."""

        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} {task.fields.get('unit', '')}/s" if speed else "",
                        style="progress.data.speed")

    with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                      redirect_stdout=True, redirect_stderr=False) as bar:
        yield _Bar(bar, files)
