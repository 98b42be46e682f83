"""`aurora sql RUN... "SELECT ..."` and `aurora report RUN... -o DIR` (registered in aurora_sim/cli.py)."""

from __future__ import annotations

import csv as csv_module
import math
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError
from aurora_sim.replay.eventlog import AL_CONVENTION
from aurora_sim.replay.summary import RECOVERY_WINDOW

MAX_TABLE_ROWS = 200


def _cell(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return f"{x:.6g}" if abs(x) < 1e6 else f"{x:.0f}"
    return str(x)


def run_query(con, query: str):
    """(column names, rows) of the last statement of `query` (several may be given, separated by
    ';', e.g. `SET VARIABLE aurora_window = 100; SELECT ...`). duckdb errors -> AuroraError."""
    import duckdb

    try:
        cur = con.execute(query)
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    except duckdb.Error as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise AuroraError("SQL: " + " ".join(lines[:2])) from None


def print_views(con) -> None:
    from analysis.views import list_views

    out = Console()
    t = Table(title='views (aurora sql RUN... "SELECT ... FROM VIEW")', caption=AL_CONVENTION, show_lines=True)
    t.add_column("view", style="bold")
    t.add_column("columns")
    t.add_column("description")
    for v in list_views(con):
        t.add_row(v["name"], ", ".join(c for c, _ in v["columns"]), v["doc"])
    out.print(t)
    out.print(
        "parameters: SET VARIABLE aurora_window = W (default 50), aurora_recovery_level (0.9), "
        "aurora_after_shift_head (200); or --window W",
        highlight=False,
    )


@friendly
def sql_command(
    runs: list[Path] = typer.Argument(
        None, help="Run directories (each with runs.parquet), then the query.", show_default=False
    ),
    query: str = typer.Argument(
        None,
        help="SQL over the views (see --views); several statements may be "
        "separated by ';' (the last one's result is printed).",
        show_default=False,
    ),
    csv: bool = typer.Option(False, "--csv", help="Print CSV (every row) instead of a table."),
    views: bool = typer.Option(False, "--views", help="List the views and their columns (no query)."),
    window: int = typer.Option(RECOVERY_WINDOW, help="W: the rolling window in requests (rolling AL, recovery, ramp)."),
    max_rows: int = typer.Option(MAX_TABLE_ROWS, help="Rows printed in a table (--csv prints all)."),
):
    """Query one or many runs' event logs with DuckDB: the event-log tables (runs, requests, rounds,
    train_steps, swaps, versions) over every run given, and derived views (acceptance, rolling_al,
    al_by_segment, per_position_acceptance, speedup, recovery, day0_ramp, swap_timeline, trainer_lag,
    run_summary, ...; `--views` lists them with their columns).

        aurora sql runs/cmp/* "SELECT label, spec_decode_acceptance_length FROM acceptance"
    """
    from analysis.views import connect

    runs = list(runs or [])
    if views:
        if query is not None:  # `aurora sql RUN --views`: the last positional is a run, not a query
            runs.append(Path(query))
        con = connect(runs, window=window)
        print_views(con)
        return
    if query is None or not query.strip():
        raise AuroraError('no query: aurora sql RUN... "SELECT ..." (aurora sql RUN... --views lists the views)')
    if not runs:
        hint = " (missing the query?)" if (Path(query) / "runs.parquet").is_file() else ""
        raise AuroraError(f'no run directory given{hint}: aurora sql RUN... "SELECT ..."')
    con = connect(runs, window=window)
    names, rows = run_query(con, query)
    if csv:
        w = csv_module.writer(sys.stdout, lineterminator="\n")
        if names:
            w.writerow(names)
        for r in rows:
            w.writerow(["" if x is None else x for x in r])
        return
    t = Table()
    shown = rows[:max_rows]
    for k, n in enumerate(names):
        numeric = any(r[k] is not None for r in shown) and all(
            isinstance(r[k], (int, float)) and not isinstance(r[k], bool) for r in shown if r[k] is not None
        )
        t.add_column(Text(n), overflow="fold", justify="right" if numeric else "left")
    for r in shown:  # Text: a value is never read as rich markup
        t.add_row(*(Text("NULL", style="dim") if x is None else Text(_cell(x)) for x in r))
    con_out = Console()
    con_out.print(t)
    con_out.print(f"{AL_CONVENTION}; W = {window} requests", style="dim", soft_wrap=True, highlight=False)
    if len(rows) > max_rows:
        err_console.print(f"{len(rows) - max_rows} more rows not shown ({len(rows)} in all; --max-rows N or --csv)")


@friendly
def report_command(
    runs: list[Path] = typer.Argument(
        ..., help="Run directories (e.g. the arms of `aurora replay --compare`).", show_default=False
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Report directory (replaced atomically; created if missing)."),
    window: int = typer.Option(RECOVERY_WINDOW, help="W: the rolling window in requests."),
):
    """Write a report on one or many runs: report.html (self-contained: figures embedded, tables,
    configs, definitions), REPORT.md next to it, and figures/*.png + *.svg: rolling AL vs request
    with the shifts marked, per-position acceptance rates, AL per segment, swap timeline, trainer
    loss, throughput and speedups (when no-spec / static arms are among the runs)."""
    from analysis.report import write_report

    path = write_report(runs, out, window=window)
    err_console.print(f"report in {path} ({path / 'report.html'}, {path / 'REPORT.md'})")
