"""`aurora regress` (registered in aurora_sim/cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError

DEFAULT_BASELINES = Path("baselines")


def _fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


@friendly
def regress_command(
    scenario: str = typer.Option("shift-mini", help="CI scenario to replay (its four arms)."),
    baselines: Path = typer.Option(DEFAULT_BASELINES, help="Directory of committed baselines (<scenario>.json)."),
    update: bool = typer.Option(False, help="Rewrite the baseline with this run's numbers (needs --reason)."),
    reason: str = typer.Option(None, help="Why the baseline changes (recorded in its history)."),
    limit: int = typer.Option(None, help="Replay only the first N requests (quick checks; baselines record it)."),
    static_draft: Path = typer.Option(None, help="The static arms' draft (default: the offline recipe's)."),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="Override a replay setting, KEY=VALUE (e.g. learner_lr=0): how a deliberate regression is staged.",
    ),
    out: Path = typer.Option(Path("runs/regress"), "--out", "-o", help="Where the arms' run directories go."),
):
    """Replay the CI scenario (no-spec, static, online-static, online-scratch), compare acceptance
    length per segment, speedup vs no-spec and vs static, recovery requests per shift and the
    learner's final loss with the committed baseline; print metric / baseline / now / verdict and
    exit 1 on a regression beyond tolerance."""
    from analysis.regress import (
        baseline_path,
        check_reference,
        collect_metrics,
        describe_tolerances,
        judge,
        load_baseline,
        parse_overrides,
        run_arms,
        write_baseline,
    )
    from aurora_sim.replay.cli import run_with_progress
    from aurora_sim.replay.config import ReplayConfig

    if update and not reason:
        raise AuroraError('--update needs --reason "why the baseline changes"')
    path = baseline_path(baselines, scenario)
    previous = None
    if not update:
        base_metrics, previous = load_baseline(path)
        check_reference(previous, path)
    cfg = ReplayConfig(trace=scenario, limit=limit)
    overrides = parse_overrides(set_)
    if overrides:
        try:
            cfg = cfg.with_(**overrides)
        except TypeError as exc:
            raise AuroraError(f"--set: {exc}") from None
    summaries = run_arms(
        cfg,
        out,
        lambda c, d, arm: run_with_progress(c, d, f"regress {arm}", force=True),
        static=str(static_draft) if static_draft else "static",
    )
    now = collect_metrics(summaries)
    if update:
        old = load_baseline(path)[1] if path.is_file() else None
        write_baseline(path, now, cfg.to_dict(), reason, old)
        err_console.print(f"baseline written: {path} ({len(now)} metrics)")
        return
    if previous.get("config", {}).get("limit") != limit:
        raise AuroraError(
            f"{path}: baseline was recorded with --limit {previous['config'].get('limit')}, this run uses {limit}"
        )
    verdicts = judge(base_metrics, now)
    t = Table(
        title=f"aurora regress: {scenario} vs {path}",
        caption=f"tolerances: {describe_tolerances()}; only changes for the worse fail",
    )
    for col in ("metric", "baseline", "now", "verdict"):
        t.add_column(col, justify="right" if col in ("baseline", "now") else "left")
    style = {"REGRESSION": "bold red", "improved": "green", "ok": "", "new": "yellow", "missing": "yellow"}
    for v in verdicts:
        t.add_row(
            v.metric,
            _fmt(v.baseline),
            _fmt(v.now),
            f"[{style[v.verdict]}]{v.verdict}" if style[v.verdict] else v.verdict,
        )
    Console().print(t)
    bad = [v for v in verdicts if v.verdict in ("REGRESSION", "missing")]
    if bad:
        err_console.print(f"[red]{len(bad)} regression(s)[/red]: " + ", ".join(v.metric for v in bad))
        raise typer.Exit(1)
    err_console.print("[green]no regression[/green]")
