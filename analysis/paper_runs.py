"""Making the figure set's replays: traces written once, runs skipped when already complete.

DIR/traces/KEY.json + KEY.parquet   a generator config and its trace (rewritten only if the bytes
                                    would change, so a resumed `figures` leaves them untouched)
DIR/runs/KEY/VARIANT/               one replay's event log (aurora_sim.replay)

A run is skipped when its runs.parquet says `complete` and its config_json equals the config this
plan would run, trace digest included (aurora_sim.replay.complete): an interrupted `figures`
resumes with the runs that are missing, unfinished or made with other settings (those are
replaced). The runs themselves go through the sweep machinery (aurora_sim.sweep.execute).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from analysis.paper_plan import Plan, RunSpec, Trace
from aurora_sim.replay.compare import arm_config
from aurora_sim.replay.config import ReplayConfig


@dataclass
class RunResult:
    spec: RunSpec
    dir: Path
    config: ReplayConfig
    skipped: bool
    wall: dict | None  # wall.json of the run (from the run that made it)


def trace_path(out: Path, trace: Trace) -> Path:
    return out / "traces" / f"{trace.key}.parquet"


def trace_spec(out: Path, trace: Trace) -> str:
    """What ReplayConfig.trace holds: the scenario name, or the trace file's absolute path (so the
    config, and the skip check, do not depend on the directory `figures` was started from)."""
    return trace.scenario or str(trace_path(out, trace).resolve())


def write_trace(out: Path, trace: Trace) -> None:
    if trace.scenario:
        return
    import traces
    from traces.io import canonical, publish, to_parquet_bytes
    from traces.io import write_trace as write_checked

    cfg = traces.TraceConfig.from_dict(trace.config, where=trace.key)
    path = trace_path(out, trace)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(cfg.to_dict(), indent=1, sort_keys=True) + "\n"
    jpath = path.with_suffix(".json")
    if not jpath.is_file() or jpath.read_text() != text:
        publish(jpath, text.encode())
    frame, stored = traces.generate_trace(cfg)
    if path.is_file() and path.read_bytes() == to_parquet_bytes(canonical(frame), stored):
        return
    write_checked(frame, path, stored)


def run_config(p: Plan, out: Path, spec: RunSpec) -> ReplayConfig:
    base = p.base.with_(trace=trace_spec(out, spec.trace), limit=spec.trace.limit)
    return arm_config(base, spec.arm, p.static).with_(**dict(spec.changes))


def run_dir(out: Path, spec: RunSpec) -> Path:
    return out / "runs" / spec.trace.key / spec.variant


def wall_of(run_dir: Path) -> dict | None:
    f = run_dir / "wall.json"
    return json.loads(f.read_text()) if f.is_file() else None


# ---- the commands that reproduce a run -----------------------------------------------------------

_FLAGS = [  # (config path, CLI flag, kind): the replay options `aurora replay` exposes
    ("limit", "--limit", "value"),
    ("model", "--model", "value"),
    ("draft", "--draft", "value"),
    ("init", "--init", "value"),
    ("learner.enabled", "--no-learn", "false_flag"),
    ("controller.policy", "--policy", "value"),
    ("controller.every", "--every", "value"),
    ("controller.rollback", "--rollback", "true_flag"),
    ("learner.lambda_discard", "--lambda-discard", "value"),
    ("learner.discard", "--discard", "value"),
    ("draft_width", "--draft-width", "value"),
    ("learner.lr", "--lr", "value"),
    ("learner.unroll", "--unroll", "value"),
    ("batch", "--batch", "value"),
    ("gamma", "--gamma", "value"),
    ("hardware", "--hardware", "value"),
    ("deployment", "--deployment", "value"),
    ("profile", "--profile", "value"),
    ("seed", "--seed", "value"),
]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def replay_command(cfg: ReplayConfig, run_dir: Path) -> tuple[str, list[str]]:
    """(the `aurora replay` command line, config fields it cannot express). Flags are given where
    the config differs from its recipe's settings (--recipe, given unless it is the CLI's default),
    plus --init and --no-learn always, so the arm reads off the line."""
    now, default = _flat(cfg.to_dict()), _flat(ReplayConfig().with_recipe(cfg.recipe).to_dict())
    args = ["aurora", "replay", cfg.trace] + (["--recipe", cfg.recipe] if cfg.recipe != "fast" else [])
    used = {"trace", "trace_sha256", "recipe"}
    if now["learner.lr_finetune"] is None or now["learner.lr_finetune"] == default["learner.lr_finetune"]:
        used.add("learner.lr_finetune")  # the recipe's, or none: --lr gives one rate for every start
        if now["learner.lr_finetune"] != default["learner.lr_finetune"]:
            default["learner.lr"] = None  # so --lr is written
    for path, flag, kind in _FLAGS:
        used.add(path)
        if path not in now:  # a key a config leaves out at its default (discard, draft width)
            continue
        v = now[path]
        if kind == "false_flag":
            if not v:
                args.append(flag)
        elif kind == "true_flag":
            if v:
                args.append(flag)
        elif v != default.get(path) or path == "init":
            args += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    if cfg.learning:
        args.append("--alone")  # one figure run: its frozen arm, where it has one, is its own run
    args += ["-o", str(run_dir), "--force"]
    extra = [f"{k}={now[k]!r}" for k in sorted(now) if k not in used and now[k] != default[k]]
    return shlex.join(args), extra


def trace_command(out: Path, trace: Trace) -> str | None:
    if trace.scenario:
        return None
    path = trace_path(out, trace)
    return shlex.join(["aurora", "trace", "gen", "--config", str(path.with_suffix(".json")), "-o", str(path)])
