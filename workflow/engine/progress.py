"""Progress for `copy` and `sync`: a `rich` display on a terminal, plain log lines anywhere else.

`rich` is imported only when the stream is a terminal, so the copy job (whose output is a CodeBuild log)
never loads it.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from workflow.engine.copier import ProgressEvent


def human(nbytes: float) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB"):
        if abs(nbytes) < 1024:
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


def _rich_progress(stream: TextIO, *columns: Any) -> Any:
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*columns, console=Console(file=stream), transient=False)


class CopyLines:
    """Off a terminal: per-blob lines and an overall bytes/total/rate line, at most every `interval` seconds."""

    def __init__(self, stream: TextIO, interval: float = 0.5) -> None:
        self.stream, self.interval = stream, interval
        self.started = time.monotonic()
        self.last = 0.0
        self.moved = self.total = 0
        self.lock = threading.Lock()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            short = event.digest[:19]
            if event.kind == "blob-start":
                self.total += event.nbytes
            elif event.kind == "blob-bytes":
                self.moved += event.nbytes
                now = time.monotonic()
                if now - self.last >= self.interval:
                    self.last = now
                    rate = self.moved / max(now - self.started, 1e-6)
                    print(
                        f"  {human(self.moved)} of {human(self.total)} copied, {human(rate)}/s",
                        file=self.stream,
                    )
            elif event.kind == "blob-done":
                print(f"blob {short} {human(event.nbytes)} copied", file=self.stream)
            elif event.kind == "blob-skipped":
                print(f"blob {short} {human(event.nbytes)} already present", file=self.stream)
            elif event.kind == "manifest":
                print(f"manifest {short} put", file=self.stream)

    def close(self) -> None:
        """Nothing to end for plain lines."""


class CopyDisplay:
    """On a terminal: one bar with bytes copied, bytes known so far, rate and time left."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = _rich_progress(
            stream,
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("copy", total=0)
        self.blobs = self.skipped = self.done = 0
        self.lock = threading.Lock()
        self.progress.start()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            if event.kind == "blob-start":
                self.blobs += 1
                total = (self.progress.tasks[0].total or 0) + event.nbytes
                self.progress.update(self.task, total=total)
            elif event.kind == "blob-bytes":
                self.progress.advance(self.task, event.nbytes)
            elif event.kind == "blob-done":
                self.done += 1
            elif event.kind == "blob-skipped":
                self.skipped += 1
            described = f"blobs {self.done}/{self.blobs}" + (
                f", {self.skipped} present" if self.skipped else ""
            )
            self.progress.update(self.task, description=described)

    def close(self) -> None:
        """Stop the display (its last frame stays)."""
        self.progress.stop()


def copy_progress(stream: TextIO) -> CopyDisplay | CopyLines:
    """The copy's progress reporter for `stream`."""
    return CopyDisplay(stream) if stream.isatty() else CopyLines(stream)


class SyncProgress:
    """Items done per phase: a `rich` bar on a terminal (with failures printed above it), log lines elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self.display: Any = None
        self.tasks: dict[str, Any] = {}

    def _start(self) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        self.display = _rich_progress(
            self.stream,
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        self.display.start()
        return self.display

    def update(self, phase: str, done: int, total: int) -> None:
        """Move the bar of `phase` (terminal only)."""
        if not self.tty:
            return
        with self.lock:
            display = self.display or self._start()
            if phase not in self.tasks:
                self.tasks[phase] = display.add_task(phase, total=total)
            display.update(self.tasks[phase], completed=done, total=total)

    def log(self, line: str) -> None:
        """A log line: on a terminal only failures, above the bar; elsewhere every line."""
        with self.lock:
            if not self.tty:
                self.stream.write(line + "\n")
                self.stream.flush()
            elif line.startswith("failed"):
                if self.display is not None:
                    self.display.console.print(line, markup=False, highlight=False)
                else:
                    self.stream.write(line + "\n")

    def close(self) -> None:
        """Stop the display."""
        if self.display is not None:
            self.display.stop()
