"""`aurora figures --paper -o DIR [--quick] [--only 1,4] [--seed N] [--backend ray|local]` (registered in aurora_sim/cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError


@friendly
def figures_command(
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Directory for the figures, their commands, traces and runs "
        "(reused: complete runs with the same config are skipped).",
    ),
    paper: bool = typer.Option(
        False,
        "--paper",
        help="The Aurora paper's figure set (1 ordered, 2 three shifts, "
        "3 mixed, 4 batch size, 5 day-0, 6 discard sampling, 7 swap policies).",
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Short traces (a few hundred requests per segment, 32 new tokens): "
        "the whole set in minutes on 2 cores. Default: the named "
        "scenarios (ordered, shift-paper, mixed): many hours.",
    ),
    only: str = typer.Option(None, "--only", help="Comma-separated figure numbers, e.g. 1,4 (default: all)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the traces and of every replay's random streams."),
    backend: str = typer.Option(
        "ray",
        help="How the runs are made: ray (in parallel, as `aurora sweep`; a local "
        "instance unless --address) or local (one after another in this process).",
    ),
    workers: int = typer.Option(None, help="Runs at once on a local Ray instance (default: the CPU count)."),
    address: str = typer.Option(None, help="An existing Ray cluster to run on (e.g. ray://head:10001)."),
):
    """Reproduce the Aurora paper's figures on our models: each figure from a named scenario and seed,
    drawn as PNG + SVG with the exact commands that made it (figN_NAME.md, COMMANDS.md, INDEX.md,
    index.html). Tiny proxy tier, h100 + llama3-8b cost model, static draft = the offline recipe's."""
    from analysis.paper import make_paper_figures
    from analysis.paper_plan import parse_only, plan

    if not paper:
        raise AuroraError("nothing to draw: pass --paper (the paper's figure set, the only set so far)")
    if seed < 0:
        raise AuroraError(f"--seed must be >= 0, got {seed}")
    figs = parse_only(only)
    if backend not in ("ray", "local"):
        raise AuroraError(f"--backend must be ray or local, got {backend!r}")
    result = make_paper_figures(
        out,
        plan("quick" if quick else "full", seed),
        figs,
        log=lambda m: err_console.print(m, highlight=False, soft_wrap=True),
        backend=backend,
        workers=workers,
        address=address,
    )
    err_console.print(
        f"{len(result['made'])} runs made, {len(result['skipped'])} skipped (complete), "
        f"{result['wall_s']:.0f} s; index: {Path(result['out']) / 'INDEX.md'} and index.html"
    )
