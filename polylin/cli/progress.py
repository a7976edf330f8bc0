"""The progress bar of ``polylin fit``: epochs, steps and the running loss.

It is drawn with rich (``pip install 'polylin[cli]'``) only when the output
is a terminal and ``--no-progress`` is not given; otherwise, or without rich,
the command prints its lines and nothing else. The bar moves once per epoch:
:func:`polylin.fit` reports after each epoch (``on_epoch``), and the steps
inside an epoch run on the device with no host synchronisation, so the step
count shown is ``epochs done × steps per epoch``.
"""

from __future__ import annotations

import math
import sys
from types import TracebackType
from typing import Any, TextIO

from polylin.cli.output import installed


def wanted(stream: TextIO, disabled: bool) -> bool:
    """Whether to draw a bar: not disabled, the output is a terminal, and rich is installed."""
    isatty = getattr(stream, "isatty", None)
    return not disabled and callable(isatty) and bool(isatty()) and installed("rich")


class EpochProgress:
    """A context manager that prints epoch lines, above a live bar when there is one.

    ``lines`` is where the epoch lines go (stdout); ``bar`` is the stream the
    bar is drawn on, or ``None`` for no bar.
    """

    def __init__(
        self,
        *,
        label: str,
        epochs: int,
        steps_per_epoch: int,
        start_epoch: int = 0,
        lines: TextIO | None = None,
        bar: TextIO | None = None,
    ) -> None:
        self.label = label
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.start_epoch = start_epoch
        self.lines = lines if lines is not None else sys.stdout
        self.bar_stream = bar
        self._progress: Any = None
        self._task: Any = None
        self._console: Any = None

    def __enter__(self) -> EpochProgress:
        if self.bar_stream is None:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console = Console(file=self.bar_stream)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TextColumn("steps"),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._progress.start()
        done = self.start_epoch * self.steps_per_epoch
        self._task = self._progress.add_task(
            self.label,
            total=self.epochs * self.steps_per_epoch,
            completed=done,
            epoch=self.start_epoch,
            epochs=self.epochs,
            loss="-",
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def print(self, text: str) -> None:
        """A line of output, above the bar when it is drawn on the same stream."""
        if self._progress is not None and self.bar_stream is self.lines:
            self._console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.lines, flush=True)

    def epoch_done(self, epoch: int, loss: float) -> None:
        """Move the bar to the end of ``epoch`` (1-based) and show its loss."""
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=epoch * self.steps_per_epoch,
                epoch=epoch,
                loss=f"{loss:.6g}" if math.isfinite(loss) else "not evaluated",
            )
