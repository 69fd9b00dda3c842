"""Progress displays for the engine: a rich bar per run (images done, images/s, time left),
and an adapter for a plain callback ``fn(run_name, done, total)``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class RichProgress:
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
        self._task = self._progress.add_task(escape(run_name), total=total, completed=done, rate="")
        self._started, self._images = time.perf_counter(), 0

    def advance(self, images: int) -> None:
        self._images += images
        rate = self._images / max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(self._task, advance=images, rate=f"{rate:.1f} img/s")

    def finish(self) -> None:
        self._progress.refresh()


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
