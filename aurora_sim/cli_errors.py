"""The CLI's error contract, shared by every sub-app: AuroraError -> `error: ...` on one line of
stderr and exit code 2. Kept apart from aurora_sim.cli so sub-apps import it without a cycle."""

import functools

import typer
from rich.console import Console
from rich.markup import escape

from aurora_sim.errors import AuroraError

err_console = Console(stderr=True)


def friendly(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AuroraError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper
