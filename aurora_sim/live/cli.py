"""`aurora live` and `aurora capture` command functions (registered by aurora_sim.cli)."""

from __future__ import annotations

from pathlib import Path

import typer

from aurora_sim.cli_errors import friendly


def _view():
    """A rich Live table: requests/s, rolling AL, draft version, swaps; returns (live, update)."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    def render(p):
        t = Table(
            "done",
            "failed",
            "req/s",
            "rolling AL",
            "draft",
            "swaps",
            "refused swaps",
            "train steps",
            "elapsed",
            title="aurora live",
        )
        t.add_row(
            f"{p.finished}/{p.total}",
            str(p.failed),
            f"{p.requests_per_s:.2f}",
            f"{p.rolling_al:.3f}",
            f"v{p.version}",
            str(p.swaps),
            str(p.rejected),
            str(p.train_steps),
            f"{p.elapsed_s:.0f}s",
        )
        return t

    live = Live(console=Console(stderr=True), refresh_per_second=4, transient=False)
    return live, lambda p: live.update(render(p))


@friendly
def live_command(
    server: str = typer.Option("http://127.0.0.1:30000", help="URL of a running `aurora serve` (or SGLang) server."),
    trace: str = typer.Option("shift-ci", help="Scenario name or trace file to drive against the server."),
    out: Path = typer.Option(Path("runs/live"), "-o", "--out", help="Run directory (event log)."),
    weights_dir: Path = typer.Option(
        Path("runs/live-weights"), help="Draft versions are published here; the server's --weights-dir."
    ),
    limit: int | None = typer.Option(None, help="Only the first N requests of the trace."),
    concurrency: int = typer.Option(8, help="Requests in flight (closed loop)."),
    model: str = typer.Option("tiny", help="The learner's copy of the target (the server's model)."),
    init: str = typer.Option("static", help="Draft the learner starts from: static, scratch or a directory."),
    policy: str = typer.Option(
        "cadence",
        help="cadence, lazy, shadow or payoff (swap when the candidate's expected speedup, priced with --profile, pays for the swap's measured pause).",
    ),
    profile: Path | None = typer.Option(
        None, help="With --policy payoff: this machine's round times (`aurora calibrate -o P.json`)."
    ),
    floor: float = typer.Option(
        0.98,
        help="With --policy payoff: hold a swap whose pause would pull the last --floor-window requests below this x no-spec speed, as the --profile prices it (0 = no floor).",
    ),
    floor_window: int = typer.Option(
        200, "--floor-window", help="With --policy payoff: the floor's window, in requests."
    ),
    every: int = typer.Option(8, help="Optimizer steps between candidates."),
    rollback: bool = typer.Option(False, help="Revert a swap whose live AL falls below the pre-swap level."),
    lambda_discard: float = typer.Option(0.0, help="Weight of the discard-sampling loss."),
    discard: str = typer.Option(
        "branch", help="Which term --lambda-discard weighs (as `aurora replay --discard`; learner/discard.py)."
    ),
    no_learning: bool = typer.Option(False, "--no-learning", help="Serve the initial draft only."),
    api_key: str | None = typer.Option(None, envvar="AURORA_API_KEY", help="The server's API key."),
    timeout: float = typer.Option(60.0, help="Seconds per HTTP call."),
    retries: int = typer.Option(4, help="Retries per call (exponential backoff)."),
    seed: int = typer.Option(0),
    force: bool = typer.Option(False, help="Replace an existing run directory."),
    quiet: bool = typer.Option(False, help="No live terminal view."),
):
    """Drive a trace against a running server while the draft learns from what it served and is swapped in."""
    import json

    from aurora_sim.errors import AuroraError
    from aurora_sim.learner.discard import VARIANTS
    from aurora_sim.live.config import LiveConfig
    from aurora_sim.live.runner import LiveRunner
    from aurora_sim.replay.config import ControllerConfig, LearnerConfig

    if policy not in ("cadence", "lazy", "shadow", "payoff"):
        raise AuroraError(f"unknown policy {policy!r} (cadence, lazy, shadow or payoff)")
    if policy == "payoff" and profile is None:
        raise AuroraError("--policy payoff prices swaps in time: give --profile P.json (from `aurora calibrate`)")
    if profile is not None and not profile.is_file():
        raise AuroraError(f"{profile}: no such profile (make one with `aurora calibrate`)")
    if discard not in VARIANTS:
        raise AuroraError(f"unknown discard variant {discard!r}; choose one of {', '.join(VARIANTS)}")
    cfg = LiveConfig(
        server=server,
        trace=trace,
        limit=limit,
        concurrency=concurrency,
        model=model,
        init=init,
        seed=seed,
        weights_dir=str(weights_dir),
        learning=not no_learning,
        timeout_s=timeout,
        retries=retries,
        profile=str(profile) if profile is not None else None,
        learner=LearnerConfig(lambda_discard=lambda_discard, discard=discard),
        controller=ControllerConfig(
            policy=policy, every=every, rollback=rollback, floor=floor, floor_window=floor_window
        ),
    )
    if quiet:
        summary = LiveRunner(cfg, out, api_key=api_key, overwrite=force).run()
    else:
        live, update = _view()
        with live:
            summary = LiveRunner(cfg, out, api_key=api_key, overwrite=force, on_progress=update).run()
    print(json.dumps(summary, indent=1, sort_keys=True))


@friendly
def capture_command(
    server: str = typer.Option("http://127.0.0.1:30000", help="URL of a running `aurora serve`."),
    out: Path = typer.Option(..., "-o", "--out", help="Trace file to write (Parquet)."),
    duration: float = typer.Option(60.0, help="Seconds to record."),
    limit: int | None = typer.Option(None, help="Stop after N requests."),
    since_start: bool = typer.Option(False, help="Include requests the server still remembers from before."),
    api_key: str | None = typer.Option(None, envvar="AURORA_API_KEY"),
):
    """Record a server's live traffic as a trace (replayable later with `aurora replay`)."""
    from aurora_sim.capture import capture

    n = capture(server, out, duration_s=duration, limit=limit, since_start=since_start, api_key=api_key)
    print(f"{out}: {n} requests")
