"""`aurora replay`: the main job. A live progress bar while it runs, a table when it ends."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aurora_sim.cli_errors import err_console, friendly
from aurora_sim.errors import AuroraError


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("AL {task.fields[al]:.2f}"),
        TextColumn("draft v{task.fields[version]}"),
        TextColumn("swaps {task.fields[swaps]}"),
        TextColumn("steps {task.fields[steps]}"),
        TextColumn("virtual {task.fields[vt]:.1f}s"),
        TimeElapsedColumn(),
        console=err_console,
    )


@contextlib.contextmanager
def replay_progress(label: str, quiet: bool = False):
    """A live bar for one replay; yields the `on_progress` callback to give it."""
    with _progress() as bar:
        task = bar.add_task(label, total=None, al=1.0, version=0, swaps=0, steps=0, vt=0.0, visible=not quiet)

        def update(p):
            bar.update(
                task,
                completed=p.finished,
                total=p.total,
                al=p.rolling_al,
                version=p.version,
                swaps=p.swaps,
                steps=p.train_steps,
                vt=p.now_ns / 1e9,
            )

        yield update


def run_with_progress(
    cfg, out: Path, label: str, resume: bool = False, force: bool = False, quiet: bool = False
) -> dict:
    from aurora_sim.replay.loop import Replay

    with replay_progress(label, quiet) as update:
        return Replay(cfg, out, resume=resume, overwrite=force, on_progress=update).run()


def _fmt(x, digits=3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def print_summary(s: dict, wall: dict | None) -> None:
    con = Console()
    t = Table(title=f"{s['name']}  ({s['hardware']}, {s['deployment']})", caption=s["acceptance_length_convention"])
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("acceptance length (all)", _fmt(s["acceptance_length"]))
    for seg in s["segments"]:
        t.add_row(f"  segment {seg['segment']} {seg['domain']} ({seg['requests']} req)", _fmt(seg["acceptance_length"]))
    t.add_row("throughput (virtual tok/s)", _fmt(s["throughput_tok_s"], 1))
    for k in ("speedup_vs_no-spec", "speedup_vs_static"):
        if k in s:
            t.add_row(k.replace("_", " "), _fmt(s[k]) + "x")
    t.add_row("train steps (dropped)", f"{s['train_steps']} ({s['train_steps_dropped']})")
    t.add_row("swaps / rollbacks / holds", f"{s['swaps']} / {s['rollbacks']} / {s['holds']}")
    t.add_row("trainer lag (ms, capture -> live)", _fmt(s["trainer_lag_ms_mean"], 1))
    tm = s.get("time")
    if tm:
        t.add_row(
            "virtual time: serving (drafting) / swap pauses (s)",
            f"{_fmt(tm['serving_s'], 2)} ({_fmt(tm['drafting_s'], 2)}) / {_fmt(tm['pause_s'], 2)}",
        )
        if tm["swaps"]:
            t.add_row(
                f"  {tm['mechanism']} swap: pause / interval (s), break-even AL gain",
                f"{_fmt(tm['pause_per_swap_s'], 3)} / {_fmt(tm['swap_interval_s'], 2)}, +{_fmt(tm['break_even_al_gain'], 3)}",
            )
    for sh in s["shifts"]:
        t.add_row(
            f"shift @{sh['shift_at']} -> {sh['to_domain']}: recovery requests (W={sh['window']})",
            _fmt(sh["recovery_requests"]),
        )
        t.add_row(
            f"  AL over first {sh['head']} after / level before",
            f"{_fmt(sh['al_after_head'])} / {_fmt(sh['level_before'])}",
        )
    if wall:
        rps = wall.get("requests_per_s")
        t.add_row(
            f"replay wall time (s) / requests/s ({wall.get('engine', 'exact')} engine)",
            f"{wall.get('replay_s', wall['wall_s']):.1f} / {rps:.1f}" if rps else f"{wall['wall_s']:.1f}",
        )
        if "setup_s" in wall:
            t.add_row(
                "  set-up: models, drafts, trajectory cache (s)",
                f"{wall['setup_s']:.1f} (cache {wall.get('trajectory_cache_s', 0.0):.1f})",
            )
    con.print(t)


def print_compare(result: dict) -> None:
    from aurora_sim.replay.eventlog import AL_CONVENTION

    arms = result["arms"]
    names = list(arms)
    t = Table(title=f"--compare on {result['trace']} (seed {result['seed']})", caption=AL_CONVENTION)
    t.add_column("metric")
    for n in names:
        t.add_column(n, justify="right")
    t.add_row("acceptance length", *(_fmt(arms[n]["acceptance_length"]) for n in names))
    for k, seg in enumerate(arms[names[0]]["segments"]):
        t.add_row(f"  seg {k} {seg['domain']}", *(_fmt(arms[n]["segments"][k]["acceptance_length"]) for n in names))
    t.add_row("speedup vs no-spec", *(_fmt(arms[n].get("speedup_vs_no-spec")) for n in names))
    t.add_row("speedup vs static", *(_fmt(arms[n].get("speedup_vs_static")) for n in names))
    t.add_row("swaps", *(str(arms[n]["swaps"]) for n in names))
    t.add_row("swap pauses (s)", *(_fmt((arms[n].get("time") or {}).get("pause_s"), 2) for n in names))
    t.add_row("drafting (s)", *(_fmt((arms[n].get("time") or {}).get("drafting_s"), 2) for n in names))
    for k, sh in enumerate(arms[names[0]]["shifts"]):
        t.add_row(
            f"recovery @{sh['shift_at']} (requests)", *(_fmt(arms[n]["shifts"][k]["recovery_requests"]) for n in names)
        )
    Console().print(t)


@friendly
def replay_command(
    trace: str = typer.Argument(
        "shift-ci", help="A scenario name (shift-ci, shift-paper, ordered, mixed, drift, sharp, phase) or a trace file."
    ),
    model: str = typer.Option("tiny", help="Proxy target whose tokens and acceptances are real: tiny or smollm2."),
    draft: str = typer.Option("eagle3", help="Draft kind: eagle3 (a one-layer head on target features) or lm."),
    draft_width: float = typer.Option(
        1.0,
        "--draft-width",
        help="With --init scratch: the EAGLE-3 head's MLP width relative to the target's (0.5 half, 2 twice).",
    ),
    draft_vocab: int = typer.Option(
        0,
        "--draft-vocab",
        help="With --init scratch: the EAGLE-3 head's hot vocabulary, the N most frequent target tokens "
        "(EAGLE-3's d2t; Aurora's drafts use a quarter of the target's, 1024 on tiny). 0 = all. "
        "The LM head, most of a small head's training cost, shrinks with it.",
    ),
    init: str = typer.Option(
        "static",
        help="Starting draft: none (no speculation), static (offline-trained on code, finance and chat), static-full (its longer recipe), static-general (the paper's situation: trained on general chat only), ceiling-code / ceiling-finance / ceiling-chat (the same budget on one domain: what a fully adapted draft reaches there), scratch (day-0), or a draft directory.",
    ),
    policy: str = typer.Option(
        "cadence",
        help="Swap policy: cadence (every N steps, as Aurora), lazy (held-out gain >= delta), shadow (no worse on recent traffic), payoff (swap when the candidate's expected speedup under the cost model and --depth policy, until the next candidate, pays for the swap's pause, and the pause keeps the last --floor-window requests at >= --floor x no speculation).",
    ),
    floor: float = typer.Option(
        0.98,
        help="With --policy payoff: hold a swap whose pause would pull the last --floor-window requests below this x no-spec speed (0 = no floor). See docs/depth.md.",
    ),
    floor_window: int = typer.Option(
        200, "--floor-window", help="With --policy payoff: the floor's window, in requests."
    ),
    recipe: str = typer.Option(
        "fast",
        help="Learner recipe: fast (this project's CPU-sized defaults: γ 4, lr 1e-3 from scratch / 1e-4 from a trained draft, unroll 4, a candidate every 8 steps, in-place swaps) or paper (Aurora's: γ 5, lr 1e-4 from scratch / 1e-5 from a trained draft, unroll 5, a candidate every 50 steps); the options below override it.",
    ),
    every: int = typer.Option(None, help="Trainer steps between candidate drafts [recipe: fast 8, paper 50]."),
    floor_draft: str = typer.Option(
        "",
        "--floor-draft",
        help="The two-draft arm (after ATLAS): this frozen head (a static init name such as static-general, or a "
        "draft directory) drafts beside the online one, and each domain is drafted by the online head only once its "
        "held-out acceptance there beats the floor's by 2 % (controller/router.py); rounds whose rows use both heads "
        "pay for both. Fast path (greedy traces) only.",
    ),
    swap: str = typer.Option(
        None,
        "--swap",
        help="How a new draft goes live: in-place (copy the weights into the buffers the CUDA graphs read, "
        "hot-token map included: ≈1 ms on the H100 model) or recapture (Aurora's: reload, then recapture the "
        "draft's graphs for every captured batch size, 2.24 s each as SGLang logged it: 17.9 s at batch 8) "
        "[recipe: fast in-place, paper recapture].",
    ),
    rollback: bool = typer.Option(False, help="Revert a swap whose live acceptance falls below the pre-swap level."),
    lambda_discard: float = typer.Option(
        0.0,
        "--lambda-discard",
        help="Weight of the term from rejected proposals (0 = Aurora's code; > 0 = the paper's discard sampling; --discard says which term).",
    ),
    discard: str = typer.Option(
        "branch",
        "--discard",
        help="How rejected proposals train the draft, weighted by --lambda-discard: branch (KL on the rejected branch's states: the off-trajectory tail), reach-weighted (branch, each state weighted by the target's probability of reaching it at the request's temperature: nothing at T = 0), reject-point (extra KL weight at the state where the draft was wrong), unlikelihood (-log(1 - q(rejected token)) there), lk (-log sum min(p, q) on served states: acceptance directly), expected-length (the chain's differentiable expected accepted length), control (reject-point's extra weight at random served states: the compute-matched control), none. See aurora_sim/learner/discard.py.",
    ),
    learn: bool = typer.Option(True, help="Train the draft online (--no-learn: serve the starting draft frozen)."),
    lr: float = typer.Option(
        None,
        help="Learner AdamW learning rate, for every starting draft [recipe: fast 1e-3 from scratch and 1e-4 from a trained draft, paper 1e-4 and 1e-5].",
    ),
    unroll: int = typer.Option(
        None, help="TTT unroll steps of the EAGLE head's loss, weights 0.8^i [recipe: fast 4, paper 5]."
    ),
    learner_precision: str = typer.Option(
        "fp32",
        "--learner-precision",
        help="The trainer's arithmetic: fp32 (the default: the same numbers on every CPU); bf16 (autocast, weights "
        "and optimizer fp32: ~2x faster steps on CPUs with native bf16, emulated and slower elsewhere; it changes "
        "the learner's numbers, docs/reference.md); auto (bf16 where native, else fp32). Recorded in the run.",
    ),
    depth: str = typer.Option(
        "fixed",
        help="Speculation depth per round (0 = a plain decode step; --gamma is the maximum): fixed (γ every round, as before); ema (a model of SGLang's adaptive speculative decoding: batch-size tiers of speculative_num_steps switched on an EMA of accepted drafts); cost (the γ in 0..max with the most expected tokens per unit of the cost model's round time, priced by walking the requests served so far again at every depth, so each depth is priced where its own rounds would start; 0 where drafting does not pay); confidence (γ max, but a chain stops where the draft's top probability falls below --depth-threshold; round-by-round engine only).",
    ),
    depth_threshold: float = typer.Option(
        0.5, "--depth-threshold", help="With --depth confidence: the top draft probability below which a chain stops."
    ),
    batch: int = typer.Option(8, help="Max batch (concurrent requests in the engine)."),
    gamma: int = typer.Option(None, help="Draft tokens per round (chain length) [recipe: fast 4, paper 5]."),
    hardware: str = typer.Option(
        "h100", help="Hardware whose time is modelled: h100, h200, a100, cpu, or profiled (with --profile)."
    ),
    deployment: str = typer.Option(
        "llama3-8b",
        help="Target/draft sizes whose time is modelled (e.g. llama3-8b, qwen3-8b, llama3-70b, proxy) or a JSON file.",
    ),
    profile: Path = typer.Option(None, help="A table from `aurora calibrate` (implies --hardware profiled)."),
    seed: int = typer.Option(0, help="Seed of every random stream (trace, learner, draft init)."),
    limit: int = typer.Option(None, help="Replay only the first N requests of the trace."),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Run directory (default runs/<trace>-<init>-<policy>-s<seed>-<config hash>; an existing complete run there is shown, not replayed).",
    ),
    compare: bool = typer.Option(
        False, help="Run the paper's four arms (no-spec, static, online-static, online-scratch) into OUT/<arm>."
    ),
    alone: bool = typer.Option(
        False,
        "--alone",
        help="Replay only this run. By default a learning run is shown beside its starting draft frozen on the "
        "same traffic (replayed into OUT-frozen, or found there): AL and speedup vs frozen per segment.",
    ),
    static_draft: Path = typer.Option(
        None,
        help="With --compare: the static arms' draft directory, or static-full (the offline recipe's longer flavour) (default: the offline recipe's, trained if missing).",
    ),
    resume: Path = typer.Option(
        None, help="Continue a killed run in this directory (same config; ends with the same log)."
    ),
    force: bool = typer.Option(False, help="Replace an existing run directory."),
    json_out: Path = typer.Option(None, "--json", help="Also write the summary numbers to this file."),
    engine: str = typer.Option(
        "auto",
        help="auto: the fast path for greedy traces (target trajectories decoded once into a shared cache, `aurora cache list`; rounds by bookkeeping), the round-by-round engine otherwise; fast; exact (always the round-by-round torch engine; `torch` is an alias); sglang (CUDA + SGLang; docs/sglang.md).",
    ),
):
    """Replay a trace through the real speculative engine in deterministic virtual time, with the
    draft learning online and a controller hot-swapping it; writes an event log (Parquet) and
    prints acceptance length per segment, speedup, swaps and recovery after each shift.

    With no arguments: the shift-ci scenario on the tiny tier (models built if missing)."""
    from aurora_sim.replay.config import INITS, STATIC_INITS, ReplayConfig
    from aurora_sim.replay.summary import summarize
    from aurora_sim.sglang.runtime import check_replay_engine

    if engine not in ("auto", "fast", "exact", "torch", "sglang"):
        raise AuroraError(f"unknown engine {engine!r} (auto, fast, exact, torch or sglang)")
    if engine == "sglang":
        check_replay_engine(engine)
    engine = {"torch": "exact"}.get(engine, engine)
    if resume is not None:
        from aurora_sim.replay.eventlog import read_table

        runs_file = resume / "runs.parquet"
        if not runs_file.is_file():
            raise AuroraError(f"{runs_file}: not a run directory (no runs.parquet)")
        cfg = ReplayConfig.from_dict(json.loads(read_table(resume, "runs")["config_json"][0]))
        wall = run_with_progress(cfg, resume, "resume", resume=True)
        summary = summarize(resume)
        print_summary(summary, wall)
        if wall.get("resume_mismatch"):
            err_console.print(
                f"[yellow]warning: recomputed part differs from the one on disk: {wall['resume_mismatch']} (replaced)"
            )
        _write_json(json_out, summary)
        return
    if profile is not None:
        hardware = "profiled"
    explicit = {
        k: v
        for k, v in {
            "gamma": gamma,
            "learner_lr": lr,
            "learner_unroll": unroll,
            "controller_every": every,
            "swap": swap,
        }.items()
        if v is not None
    }
    cfg = ReplayConfig(
        trace=trace,
        limit=limit,
        model=model,
        draft=draft,
        draft_width=draft_width,
        draft_vocab=draft_vocab,
        init=init,
        batch=batch,
        hardware=hardware,
        deployment=deployment,
        profile=str(profile) if profile else None,
        seed=seed,
        engine=engine,
        floor_draft=floor_draft,
    ).with_recipe(
        recipe,
        learner_enabled=learn,
        learner_lambda_discard=lambda_discard,
        learner_discard=discard,
        controller_policy=policy,
        controller_rollback=rollback,
        controller_floor=floor,
        controller_floor_window=floor_window,
        depth_policy=depth,
        depth_threshold=depth_threshold,
        learner_precision=learner_precision,
        **explicit,
    )
    if floor_draft and floor_draft not in STATIC_INITS and not Path(floor_draft).is_dir():
        raise AuroraError(f"{floor_draft}: floor draft not found (a static init name or a draft directory)")
    stem = Path(trace).stem if Path(trace).suffix else trace
    if compare:
        from aurora_sim.replay.compare import run_compare

        out = out or Path("runs") / f"{stem}-compare-s{seed}"
        result = run_compare(
            cfg,
            out,
            lambda c, d, arm: run_with_progress(c, d, arm, force=force),
            static=str(static_draft) if static_draft else "static",
        )
        print_compare(result)
        _write_json(json_out, result)
        err_console.print(f"runs and compare.json in {out}")
        return
    kind = init if init in INITS else "path"
    default_out = out is None
    if default_out:
        # the default directory names the config, so running the same command again finds its
        # (deterministic) result instead of failing on an existing directory
        out = Path("runs") / f"{stem}-{kind}-{policy}-s{seed}-{cfg.config_hash()[:8]}"
    frozen = None
    if cfg.learning and not alone:
        from aurora_sim.replay.answer import frozen_twin, twin_dir

        twin = frozen_twin(cfg)
        twin_out = (
            Path("runs") / f"{stem}-{kind}-frozen-s{seed}-{twin.config_hash()[:8]}" if default_out else twin_dir(out)
        )
        if force or not _complete(twin_out):
            run_with_progress(twin, twin_out, f"{stem} (frozen)", force=force)
        frozen = summarize(twin_out)
    if default_out and not force and _complete(out):
        err_console.print(f"{out} already holds this run (deterministic: same numbers); --force replays it again")
        wall = None
    else:
        wall = run_with_progress(cfg, out, stem, force=force)
    summary = summarize(out)
    print_summary(summary, wall)
    if frozen is not None:
        from aurora_sim.replay.answer import answer, print_answer

        summary["vs_frozen"] = answer(summary, frozen)
        print_answer(summary, frozen, summary["vs_frozen"])
    _write_json(json_out, summary)
    err_console.print(f"event log in {out}")


def _complete(run_dir: Path) -> bool:
    from aurora_sim.replay.eventlog import read_table

    try:
        return read_table(run_dir, "runs")["status"][0] == "complete"
    except Exception:  # absent or unreadable: not a finished run
        return False


def _write_json(path: Path | None, data: dict) -> None:
    if path is not None:
        from traces.io import publish

        publish(Path(path), json.dumps(data, indent=1, sort_keys=True).encode())
