"""One overall progress bar over a sweep's runs (used by `aurora sweep` and `aurora figures`)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aurora_sim.cli_errors import err_console


def execute_with_progress(jobs, title: str, quiet: bool = False, **kwargs):
    """execute(jobs, **kwargs) with a bar: runs finished of all, failures, and what just happened
    (the local backend also shows the running replay's requests)."""
    from aurora_sim.sweep.execute import execute

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[now]}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
    )
    with bar:
        task = bar.add_task(title, total=len(jobs), failed=0, now="")
        failed = 0

        def on_outcome(o):
            nonlocal failed
            failed += o.status == "failed"
            bar.update(task, advance=1, failed=failed, now=f"{o.job.name}: {o.status}")

        def on_progress(job, p):
            bar.update(task, now=f"{job.name}: {p.finished}/{p.total} requests")

        return execute(jobs, on_outcome=on_outcome, on_progress=on_progress, **kwargs)
