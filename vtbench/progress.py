"""Progress displays for the engine: a rich bar per run on a terminal (run k/N, images done,
images/s, time left), plain log lines where output is piped (a CI job), and an adapter for a
plain callback ``fn(run_name, done, total)``.

A display may also have ``at_run(k, n)``: :func:`~vtbench.engine.evaluate_all` calls it
before the k-th of n runs (skipped ones included)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: a short, log-friendly duration."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _RunCounter:
    """The "run k/N" prefix shared by the displays."""

    run_index, run_count = 0, 0

    def at_run(self, index: int, count: int) -> None:
        self.run_index, self.run_count = index, count

    def _prefix(self, run_name: str) -> str:
        return f"run {self.run_index}/{self.run_count} {run_name}" if self.run_count > 1 else run_name


class RichProgress(_RunCounter):
    """One rich progress display for the session, a bar per run: images done, images/s, ETA.
    Use as a context manager; a resumed run says where it resumes."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self._task: Any = None
        self._started = 0.0
        self._images = 0

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, run_name: str, total: int, done: int) -> None:
        from rich.markup import escape

        if done:
            self._progress.console.print(f"{escape(run_name)}: resuming at {done}/{total}")
        self._task = self._progress.add_task(escape(self._prefix(run_name)), total=total, completed=done, rate="")
        self._started, self._images = time.perf_counter(), 0

    def advance(self, images: int) -> None:
        self._images += images
        rate = self._images / max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(self._task, advance=images, rate=f"{rate:.1f} img/s")

    def finish(self) -> None:
        self._progress.refresh()


class LogProgress(_RunCounter):
    """Plain lines for a log (output not a terminal): one when a run starts, one every
    ``every`` seconds with images done, rate and time left, one when it stops."""

    def __init__(self, stream: TextIO | None = None, every: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.every, self.clock = stream, every, clock
        self.run_name, self.total, self.done, self.first = "", 0, 0, 0
        self._started = self._last = 0.0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _say(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(f"{self._prefix(self.run_name)}: {text}\n")
        stream.flush()

    def start(self, run_name: str, total: int, done: int) -> None:
        self.run_name, self.total, self.done, self.first = run_name, total, done, done
        self._started = self._last = self.clock()
        self._say(f"resuming at {done}/{total} images" if done else f"started, {total} images")

    def _rate(self) -> float:
        return (self.done - self.first) / max(self.clock() - self._started, 1e-9)

    def advance(self, images: int) -> None:
        self.done += images
        if self.clock() - self._last < self.every:
            return
        self._last = self.clock()
        rate = self._rate()
        left = f", {duration((self.total - self.done) / rate)} left" if rate > 0 else ""
        self._say(f"{self.done}/{self.total} images, {rate:.1f} img/s{left}")

    def finish(self) -> None:
        elapsed = duration(self.clock() - self._started)
        if self.done >= self.total:
            self._say(f"finished {self.total} images in {elapsed} ({self._rate():.1f} img/s)")
        else:
            self._say(f"stopped at {self.done}/{self.total} images after {elapsed}")


def for_this_output() -> RichProgress | LogProgress:
    """The display for where output goes: rich bars on a terminal, log lines when piped."""
    return RichProgress() if sys.stdout.isatty() else LogProgress()


class CallbackProgress:
    """Calls ``callback(run_name, done, total)`` when a run starts (``done`` > 0 on a resume)
    and after every batch."""

    def __init__(self, callback: Callable[[str, int, int], Any]) -> None:
        self.callback = callback
        self.run_name, self.done, self.total = "", 0, 0

    def start(self, run_name: str, total: int, done: int) -> None:
        self.run_name, self.total, self.done = run_name, total, done
        self.callback(run_name, done, total)

    def advance(self, images: int) -> None:
        self.done += images
        self.callback(self.run_name, self.done, self.total)

    def finish(self) -> None:
        pass
