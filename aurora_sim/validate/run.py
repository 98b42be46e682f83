"""`aurora validate`: each arm replayed in virtual time under the profile, then served on the
real clock, and the two compared (layout of OUT: aurora_sim.validate.store).

Arms (aurora_sim.replay.compare.arm_config, as `aurora replay --compare` builds them):
    no-spec         target-only decoding
    static          the offline static draft, frozen
    online-static   the static draft learning online: its trainer thread runs beside serving (the
                    second core), and on the real clock its steps end when they end, so its swaps
                    land at other rounds than in virtual time
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

import polars as pl

from aurora_sim.errors import AuroraError
from aurora_sim.replay.compare import arm_config
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.validate import metrics, store
from aurora_sim.validate.clock import MeasuredReplay, PredictedReplay

ARMS = ("no-spec", "static", "online-static")
GOAL = 0.05  # |relative error| of throughput and mean latency (the goal; stretch 0.02)
STRETCH = 0.02


def check_arms(arms: tuple[str, ...]) -> tuple[str, ...]:
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        raise AuroraError(f"unknown arm {', '.join(bad) or '(none given)'} (choose from {', '.join(ARMS)})")
    return tuple(dict.fromkeys(arms))


def calibrate_for(base: ReplayConfig, arms: tuple[str, ...], target: Path, rounds: int, progress: bool) -> dict:
    """Calibrate over the shapes this trace meets (grid.grid_for) into `target`."""
    from aurora_sim.costs.calibrate import calibrate
    from aurora_sim.validate.grid import grid_for

    grid = grid_for(base, arms)
    calibrate(model=base.model, draft=base.draft, out=target, rounds=rounds, progress=progress, **grid)
    return {"source": "calibrated for this trace", "calibrated_here": True, "grid": grid}


def run_arm(cfg: ReplayConfig, arm_dir: Path, label: str, progress: bool, profile: dict) -> dict:
    """Serve one arm on the wall clock, replay it in virtual time, compare; `profile` says where
    the arm's profile came from (recorded in its summary)."""
    from aurora_sim.replay.cli import replay_progress

    # measured first: as close to the calibration as it gets (the prediction needs no clock)
    load_before = os.getloadavg()
    with replay_progress(f"{label}: measured", quiet=not progress) as update:
        meas = MeasuredReplay(cfg.with_(engine="exact"), arm_dir / "measured", overwrite=True, on_progress=update)
        wall = meas.run()
    load_after = os.getloadavg()
    with replay_progress(f"{label}: predicted", quiet=not progress) as update:
        pred = PredictedReplay(cfg, arm_dir / "predicted", overwrite=True, on_progress=update)
        pred.run()
    pred_dir, meas_dir = arm_dir / "predicted", arm_dir / "measured"
    p = metrics.clock_metrics(pred_dir, pred.records)
    m = metrics.clock_metrics(meas_dir, meas.records)
    pred_span = round(p["makespan_s"] * 1e9)
    meas_span = round(m["makespan_s"] * 1e9)
    rel = metrics.errors(p, m)
    summary = {
        "arm": label,
        "trace": cfg.trace,
        "limit": cfg.limit,
        "batch": cfg.batch,
        "gamma": cfg.gamma if cfg.speculative else 0,
        "predicted": p,
        "measured": m,
        "relative_error": rel,
        "goal": {
            "limit": GOAL,
            "stretch": STRETCH,
            "throughput_ok": _within(rel["throughput_tok_s"], GOAL),
            "latency_mean_ok": _within(rel["latency_ms.mean"], GOAL),
        },
        "breakdown": metrics.wall_breakdown(pred.records, meas.records, pred_span, meas_span),
        "per_request": metrics.per_request(pred_dir, meas_dir),
        "lookups_outside": {"predicted": pred.profile.coverage(), "measured_shapes": meas.profile.coverage()},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "reference": meas.reference,
        },
        "trainer": {
            "thread_busy_s": wall.get("trainer_thread_s"),
            "serving_waited_s": wall.get("waited_for_trainer_s"),
            "rounds_s": sum(r.dur_ns for r in meas.records) / 1e9,
            # the round-by-round engine's learner takes each finished request's teacher (one target
            # pass) on the serving thread, between rounds: part of the measured server loop
            "teacher_passes_s": max(0.0, wall.get("forward_s", 0.0) - sum(r.dur_ns for r in meas.records) / 1e9),
        }
        if cfg.learning
        else None,
        "runs": {"predicted": str(pred_dir), "measured": str(meas_dir)},
        "profile": profile,
    }
    clocks = (("predicted", pred_dir, pred.records), ("measured", meas_dir, meas.records))
    store.write_arm(
        meas_dir,
        summary,
        pl.concat([metrics.records_frame(records, c) for c, _, records in clocks]),
        pl.concat([metrics.request_frame(d).with_columns(clock=pl.lit(c)) for c, d, _ in clocks]),
    )
    return summary


def _within(x: float | None, limit: float) -> bool | None:
    return None if x is None else abs(x) <= limit


def validate(
    base: ReplayConfig,
    out: Path,
    arms: tuple[str, ...] = ARMS,
    profile: Path | None = None,
    calibrate_rounds: int = 12,
    progress: bool = True,
    static: str = "static",
) -> dict:
    """Validate `base` (its batch, γ, trace, limit, seed) arm by arm; writes OUT (store.py) and
    returns validate.json's content. `static`: the static arms' draft ("static" = the offline
    recipe's, or a draft directory)."""
    import shutil

    arms = check_arms(arms)
    out = Path(out)
    store.check_out(out)
    profile_table = None
    if profile is not None:  # read before OUT is replaced: the profile may live inside it
        from aurora_sim.costs.profiled import ProfiledCost

        profile_table = ProfiledCost.from_file(profile).table
    from aurora_sim.replay.workload import load_trace

    load_trace(base.trace, base.seed, base.limit)  # a bad trace or limit stops here, before OUT is touched
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    doc = {
        "status": "running",
        "started_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "trace": base.trace,
        "limit": base.limit,
        "batch": base.batch,
        "gamma": base.gamma,
        "seed": base.seed,
        "arms": {},
    }
    store.write_json(out / store.SUMMARY, doc)
    for arm in arms:
        # each arm's profile sits beside its runs: a copy of --profile, or a calibration of this
        # arm's shapes taken just before it is measured (a shared machine's speed drifts)
        target = out / arm / store.PROFILE
        if profile_table is not None:
            store.write_json(target, profile_table)
            source = {"source": str(profile), "calibrated_here": False}
        else:
            source = calibrate_for(base, (arm,), target, calibrate_rounds, progress)
        source["measured_at"] = json.loads(target.read_text()).get("measured_at")
        cfg = arm_config(base.with_(hardware="profiled", profile=str(target)), arm, static)
        doc["arms"][arm] = run_arm(cfg, out / arm, arm, progress, source)
        store.write_json(out / store.SUMMARY, doc)
    doc["status"] = "complete"
    store.write_json(out / store.SUMMARY, doc)
    return doc
