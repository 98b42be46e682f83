"""Progress of a long training loop (model and draft builds), never silent.

In a terminal: a rich bar (step, loss, elapsed, time left). Where rich cannot draw one (output
to a file or a pipe, CI logs): a plain line every 5 % of the steps. Display only: nothing here
touches the computation.
"""

from __future__ import annotations

import time


class TrainingProgress:
    def __init__(self, label: str, total: int, enabled: bool = True):
        from rich import get_console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = get_console()
        self.label, self.total, self.done = label, total, 0
        self.plain = enabled and not (console.is_terminal and not console.is_dumb_terminal)
        self.every = max(1, total // 20)
        self.bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            disable=self.plain or not enabled,
        )
        self.task = self.bar.add_task("train", total=total, loss=float("nan"))
        self.t0 = time.monotonic()

    def __enter__(self) -> TrainingProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def step(self, loss: float) -> None:
        self.done += 1
        self.bar.update(self.task, advance=1, loss=loss)
        if self.plain and (self.done % self.every == 0 or self.done == self.total):
            took = time.monotonic() - self.t0
            left = took / self.done * (self.total - self.done)
            print(
                f"{self.label} step {self.done}/{self.total}  loss {loss:.3f}  {_mmss(took)} elapsed, "
                f"~{_mmss(left)} left",
                flush=True,
            )


def _mmss(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s"
