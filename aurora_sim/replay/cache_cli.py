"""`aurora cache ...`: list and clear the greedy trajectory cache.

Registered by aurora_sim/cli.py as ``app.add_typer(cache_app, name="cache")``; this module must
not import aurora_sim.cli (that one imports this one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from aurora_sim.cli_errors import err_console as err
from aurora_sim.cli_errors import friendly
from aurora_sim.errors import AuroraError

cache_app = typer.Typer(
    help="The greedy trajectory cache. Under greedy (temperature 0) verification a lossless "
    "speculative engine emits exactly the target's own greedy output, so each request's target "
    "trajectory (its output, finish reason and the next 16 greedy tokens) is decoded once and "
    "shared by every greedy replay of that model, whatever the draft, γ or batch. Entries live in "
    "<cache>/trajectories/<model identity>/ (cache = ~/.cache/aurora-sim; AURORA_CACHE overrides), "
    "one file per (model identity = sha256 of config.json + weights, the ordered list of request "
    "keys = sha256 of prompt ids, max_new_tokens and stop ids); entries of one model share requests "
    "with each other (a --limit slice reuses the full trace's). A bad entry is never used: it is "
    "rebuilt. Clearing is always safe (entries are rebuilt on demand).",
    no_args_is_help=True,
)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


@cache_app.command("list")
@friendly
def list_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List trajectory-cache entries: model identity, requests, tokens, size, creation time."""
    from aurora_sim.replay.trajectories import cache_root, list_entries

    root = cache_root()
    rows = list_entries(root)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    total = sum(r["bytes"] for r in rows)
    if not rows:
        err.print(f"no trajectory-cache entries in {root}", highlight=False, soft_wrap=True, markup=False)
        return
    table = Table(
        "model", "name", "requests", "tokens", "size", "created", "valid", "path", title=f"trajectory cache: {root}"
    )
    for r in rows:
        table.add_row(
            r["model"],
            r["name"] or "-",
            "-" if r["requests"] is None else f"{r['requests']:,}",
            "-" if r["tokens"] is None else f"{r['tokens']:,}",
            _size(r["bytes"]),
            r["created"] or "-",
            "yes" if r["valid"] else "[red]no[/red]",
            r["path"],
        )
    Console().print(table)
    print(f"{len(rows)} entries, {_size(total)} in {root}")


@cache_app.command("clear")
@friendly
def clear_command(
    model: str = typer.Option(
        None, "--model", help="Only the entries of this model identity (a prefix, as `aurora cache list` shows)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
):
    """Remove trajectory-cache entries (all, or one model's); they are rebuilt when next needed."""
    from aurora_sim.replay.trajectories import cache_root, clear, list_entries

    if model is not None and not re.fullmatch(r"[0-9a-fA-F]{1,64}", model):
        raise AuroraError(f"--model {model!r}: give a model identity prefix in hex (see `aurora cache list`)")
    root = cache_root()
    rows = [r for r in list_entries(root) if model is None or Path(r["path"]).parent.name.startswith(model.lower())]
    what = f"model {model.lower()}" if model else "all models"
    if not rows:
        print(f"nothing to clear ({what}) in {root}")
        clear(root, model)  # leftover temp files, empty directories
        return
    size = sum(r["bytes"] for r in rows)
    if not yes:
        typer.confirm(f"remove {len(rows)} trajectory-cache entries ({_size(size)}, {what}) from {root}?", abort=True)
    freed = clear(root, model)
    print(f"freed {_size(freed)}: {len(rows)} entries ({what}) from {root}")
