"""`aurora validate TRACE [--profile P.json]` (registered in aurora_sim/cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError

ROWS = (  # label, section, key, unit digits
    ("throughput (tok/s)", None, "throughput_tok_s", 1),
    ("makespan (s)", None, "makespan_s", 3),
    ("latency mean (ms)", "latency_ms", "mean", 1),
    ("latency p50 (ms)", "latency_ms", "p50", 1),
    ("latency p99 (ms)", "latency_ms", "p99", 1),
    ("TTFT mean (ms)", "ttft_ms", "mean", 1),
    ("TTFT p50 (ms)", "ttft_ms", "p50", 1),
    ("TTFT p99 (ms)", "ttft_ms", "p99", 1),
    ("round mean (ms)", "round_ms", "mean", 2),
    ("round p50 (ms)", "round_ms", "p50", 2),
    ("round p90 (ms)", "round_ms", "p90", 2),
    ("round p99 (ms)", "round_ms", "p99", 2),
)


def _get(d: dict, section, key):
    return d[key] if section is None else d[section][key]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f} %"


def print_arm(s: dict) -> None:
    t = Table(
        title=f"{s['arm']}: batch {s['batch']}, γ {s['gamma']} ({s['trace']}, {s['predicted']['requests']} requests)"
    )
    t.add_column("")
    t.add_column("predicted", justify="right")
    t.add_column("measured", justify="right")
    t.add_column("rel. error", justify="right")
    p, m = s["predicted"], s["measured"]
    for label, section, key, digits in ROWS:
        err = s["relative_error"][key if section is None else f"{section}.{key}"]
        t.add_row(label, f"{_get(p, section, key):.{digits}f}", f"{_get(m, section, key):.{digits}f}", _pct(err))
    t.add_row("rounds", str(p["rounds"]), str(m["rounds"]), "")
    t.add_row("round cv (std/mean)", f"{p['round_ms']['cv']:.2f}", f"{m['round_ms']['cv']:.2f}", "")
    t.add_row("acceptance length", f"{p['acceptance_length'] or 1:.3f}", f"{m['acceptance_length'] or 1:.3f}", "")
    if s["trainer"]:
        t.add_row("swaps / train steps", f"{p['swaps']} / {p['train_steps']}", f"{m['swaps']} / {m['train_steps']}", "")
    Console().print(t)
    b = s["breakdown"]
    parts = b["makespan_error_parts"]
    out = s["lookups_outside"]["predicted"]
    lines = [
        f"makespan error = round costs {_pct(parts['round_cost'])} + server loop {_pct(parts['server_loop'])} "
        f"+ schedule {_pct(parts['schedule'])}; same rounds on both clocks: {'yes' if b['same_rounds'] else 'no'}",
        f"contention: serving thread on a core {_fmt_share(b['serving_cpu_share'])} of its round time; "
        f"round p99/p50 measured {_fmt(b['round_spread']['measured_p99_over_p50'])} vs predicted "
        f"{_fmt(b['round_spread']['predicted_p99_over_p50'])}; load average {s['machine']['loadavg_before'][0]} -> "
        f"{s['machine']['loadavg_after'][0]} on {s['machine']['cpus']} CPUs",
        _reference_line(s["machine"]["reference"]),
        f"look-ups outside the profiled table: {out['outside']} of {out['lookups']}"
        + (f" ({', '.join(f'{k} {v}' for k, v in out['by_axis'].items())})" if out["by_axis"] else ""),
    ]
    for e in out["examples"][:3]:
        lines.append(f"  e.g. {e['axis']} {e['value']}: {e['why']}; shape {e['shape']}")
    if s["trainer"]:
        tr = s["trainer"]
        lines.append(
            f"trainer thread busy {tr['thread_busy_s']:.1f} s beside {tr['rounds_s']:.1f} s of engine rounds; "
            f"teacher passes on the serving thread {tr['teacher_passes_s']:.2f} s; swaps "
            f"{p['swaps']} predicted, {m['swaps']} measured"
        )
    for line in lines:
        err_console.print(line, highlight=False, soft_wrap=True)


def _reference_line(ref: dict) -> str:
    return (
        f"machine vs calibration: a steady round (γ {ref['gamma']}, batch {ref['batch']}, context {ref['context']}) "
        f"took {ref['before_ns'] / 1e6:.2f} ms before serving and {ref['after_ns'] / 1e6:.2f} ms after, "
        f"{ref['profile_ns'] / 1e6:.2f} ms in the profile: drift {_pct(ref['drift'])}"
    )


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _fmt_share(x) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


@friendly
def validate_command(
    trace: str = typer.Argument(
        "shift-ci", help="A scenario name (shift-ci, shift-paper, ...) or a trace file, as for `aurora replay`."
    ),
    profile: Path = typer.Option(
        None,
        help="A profile from `aurora calibrate` on this machine, for every arm. Default: before each arm, "
        "calibrate the shapes it meets (batches up to --batch, its γ, the trace's prompt and context lengths) "
        "into OUT/<arm>/profile.json, so the machine is measured as close as possible to its state when serving.",
    ),
    limit: int = typer.Option(48, help="Serve only the first N requests of the trace (real time: keep it short)."),
    batch: int = typer.Option(8, help="Max batch (concurrent requests in the engine), on both clocks."),
    gamma: int = typer.Option(4, help="Draft tokens per round for the static and online arms."),
    arms: str = typer.Option(
        "no-spec,static,online-static",
        help="Arms, comma-separated: no-spec (target only), static (the offline draft, frozen), online-static "
        "(the static draft learning online, its trainer thread on the second core).",
    ),
    every: int = typer.Option(
        None, help="Online arm: trainer steps between candidate drafts [recipe fast: 8; 2 swaps within a short slice]."
    ),
    static_draft: Path = typer.Option(
        None, help="The static and online arms' starting draft directory (default: the offline recipe's static draft)."
    ),
    model: str = typer.Option("tiny", help="Proxy target: tiny or smollm2."),
    draft: str = typer.Option("eagle3", help="Draft kind: eagle3 or lm."),
    seed: int = typer.Option(0, help="Seed of every random stream (trace, learner)."),
    rounds: int = typer.Option(12, help="Without --profile: measured rounds per calibration cell."),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Output directory (default runs/validate-<trace>-b<batch>-g<gamma>-s<seed>; a previous validation "
        "there is replaced). Layout: aurora_sim/validate/store.py, docs/validate.md.",
    ),
    json_out: Path = typer.Option(None, "--json", help="Also write validate.json's content to this file."),
    quiet: bool = typer.Option(False, help="No progress bars."),
):
    """Check the simulator against this machine's clock: replay the trace in virtual time under a
    profiled cost model, serve the same requests (same arrivals, batch and γ) through the
    round-by-round engine on the real clock, and print both side by side with the relative error
    of throughput, mean / p50 / p99 latency, time to first token and round times, per arm;
    which cost look-ups fell outside the profiled table; and how busy the machine was (wall-clock
    numbers move with other load). Figures: `aurora report OUT/*/measured -o DIR`."""
    from aurora_sim.replay.config import ReplayConfig
    from aurora_sim.validate.run import check_arms, validate

    arm_list = check_arms(tuple(a.strip() for a in arms.split(",") if a.strip()))
    if limit is not None and limit < 1:
        raise AuroraError(f"--limit must be >= 1, got {limit}")
    if gamma < 1:
        raise AuroraError(f"--gamma must be >= 1, got {gamma} (the no-spec arm is the one without a draft)")
    explicit = {"controller_every": every} if every is not None else {}
    base = ReplayConfig(trace=trace, limit=limit, model=model, draft=draft, batch=batch, seed=seed).with_recipe(
        "fast", gamma=gamma, learner_enabled=True, **explicit
    )
    stem = Path(trace).stem if Path(trace).suffix else trace
    out = out or Path("runs") / f"validate-{stem}-b{batch}-g{gamma}-s{seed}"
    if static_draft is not None and not (static_draft / "config.json").is_file():
        raise AuroraError(f"{static_draft}: not a draft directory (no config.json)")
    doc = validate(
        base,
        out,
        arm_list,
        profile=profile,
        calibrate_rounds=rounds,
        progress=not quiet,
        static=str(static_draft) if static_draft else "static",
    )
    for arm in arm_list:
        print_arm(doc["arms"][arm])
    if json_out is not None:
        from aurora_sim.validate.store import write_json

        write_json(json_out, doc)
    err_console.print(f"validation in {out} (validate.json); figures: aurora report {out}/*/measured -o {out}/report")
