"""`aurora sweep SPEC.yaml -o DIR`: many replays, one directory each, in parallel on Ray."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError


@friendly
def sweep_command(
    spec: Path = typer.Argument(
        ...,
        help="Sweep spec (YAML): base settings, a grid and/or a list of runs; keys are "
        "`aurora replay` option names (see docs/sweep.md).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Sweep directory: runs/<name>-<config hash>/, sweep.json, summary.csv. "
        "Reused: runs already complete with the same config are skipped.",
    ),
    backend: str = typer.Option(
        "ray", help="ray (parallel; a local instance unless --address) or local (one after another in this process)."
    ),
    workers: int = typer.Option(None, help="Runs at once on a local Ray instance (default: the machine's CPU count)."),
    address: str = typer.Option(
        None,
        help="An existing Ray cluster (e.g. ray://head:10001 or auto). Runs travel back "
        "as bytes; trace files and --init paths must exist on the workers.",
    ),
    retries: int = typer.Option(2, help="Re-runs of a run whose worker process died (a replay error is not retried)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs (and which are complete) without running."),
):
    """Run every replay a spec names, each into its own run directory under OUT, skipping those
    already complete (idempotent by config hash); an overall progress bar while it runs, and a
    table of each run's key metrics at the end. Same run, same bytes: alone, in a local sweep or
    on a cluster. A failed run records its error and the sweep goes on (exit code 1 at the end)."""
    from aurora_sim.sweep import summary
    from aurora_sim.sweep.execute import BACKENDS, Job, split_done
    from aurora_sim.sweep.progress import execute_with_progress
    from aurora_sim.sweep.spec import load_spec

    if backend not in BACKENDS:
        raise AuroraError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers is not None and workers < 1:
        raise AuroraError(f"--workers must be >= 1, got {workers}")
    if out.exists() and not out.is_dir():
        raise AuroraError(f"{out}: exists and is not a directory")
    sweep = load_spec(spec)
    jobs = [Job(r.name, r.config, out / "runs" / r.name) for r in sweep.runs]
    dups = sum(len(r.also) for r in sweep.runs)
    err_console.print(f"sweep {sweep.name}: {len(jobs)} runs" + (f" ({dups} duplicate entries merged)" if dups else ""))
    if dry_run:
        _, done = split_done(jobs)
        for j in jobs:
            err_console.print(f"  {'complete' if j in done else 'to run  '}  {j.run_dir}", highlight=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    outcomes = execute_with_progress(
        jobs, f"sweep {sweep.name}", backend=backend, workers=workers, address=address, retries=retries
    )
    failed = sum(o.status == "failed" for o in outcomes)
    table = summary.rows(sweep, outcomes)
    summary.write(out, sweep, table, backend, time.perf_counter() - t0)
    summary.show(sweep, table)
    made = sum(o.status == "done" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    err_console.print(
        f"{made} made, {skipped} skipped (complete), {failed} failed in {time.perf_counter() - t0:.0f} s; "
        f"{out / 'sweep.json'}, {out / 'summary.csv'}"
    )
    if failed:
        raise typer.Exit(1)
