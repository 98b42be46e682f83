"""Trainer-step benchmark: what one online optimizer step costs at the paper's scale, and where.

    python3 benchmarks/bench_trainer.py [--limit 240] [--arm online-static] [--recipe paper]
        [--draft-vocab N] [--name NAME]

Replays the first N requests of `shift-paper-c8` (shift-paper's requests as a closed loop of 8,
as `bench_replay.py paper` does) on the fast path, records every training batch's samples the
trainer thread was handed, then re-runs those steps alone on one thread, from the same initial
draft, in order: seconds per step (batch build and the step apart), loss positions and tokens
per step, and a torch.profiler table of the ops that take the time. A step's loss is recorded so
that two versions of the trainer can be compared for equality on the same batches.
-> benchmarks/results/trainer[-NAME].json

This is the number issue 14's online arms depend on: at the paper recipe a step trains 8
requests, so a 33,000-request arm runs ≈4,100 of them on the trainer's core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from aurora_sim.replay.compare import arm_config
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.loop import Replay

RESULTS = Path(__file__).parent / "results"


def record_batches(cfg: ReplayConfig, out: Path) -> list:
    """Replay `cfg` and keep the sample lists handed to the trainer, in order."""
    recorded = []
    original = Replay._train_job

    def spy(self, samples):
        recorded.append(list(samples))
        return original(self, samples)

    Replay._train_job = spy
    try:
        Replay(cfg, out, overwrite=True).run()
    finally:
        Replay._train_job = original
    return recorded


def fresh_learner(cfg: ReplayConfig):
    """An OnlineLearner as the replay built it: the same target, initial draft and settings."""
    import random
    from dataclasses import replace

    from aurora_sim.learner.online import OnlineLearner
    from aurora_sim.models.registry import load_target
    from aurora_sim.replay.initial import initial_draft

    target = load_target(cfg.model)
    target.requires_grad_(False)
    draft0 = initial_draft(cfg, target)
    return OnlineLearner(target, draft0, replace(cfg.learner, lr=cfg.learner_lr), random.Random(0), cfg.gamma)


def time_steps(learner, batches: list) -> list[dict]:
    rows = []
    for samples in batches:
        t0 = time.perf_counter()
        b = learner.batch(samples)
        t1 = time.perf_counter()
        res = learner.compute(b)
        t2 = time.perf_counter()
        rows.append(
            {
                "build_s": round(t1 - t0, 4),
                "step_s": round(t2 - t1, 4),
                "positions": b.accepted_positions + b.discard_positions,
                "tokens": b.tokens_total,
                "loss": res.loss,
                "status": res.status,
            }
        )
    return rows


def profile_steps(learner, batches: list, top: int = 20) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for samples in batches:
            learner.compute(learner.batch(samples))
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {
            "op": e.key,
            "self_ms": round(e.self_cpu_time_total / 1e3, 1),
            "share": round(e.self_cpu_time_total / total, 3),
        }
        for e in events[:top]
    ]


def step_flops(learner, samples) -> tuple[int, dict]:
    """Floating-point operations of one step (forward and backward), as torch counts them
    (matrix products and attention; elementwise work is not counted), and per op."""
    from torch.utils.flop_counter import FlopCounterMode

    b = learner.batch(samples)
    with FlopCounterMode(display=False) as counter:
        learner.compute(b)
    per_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()), per_op


def matmul_gflops(dtype=torch.float32, repeat: int = 20) -> float:
    """This core's matrix-product rate at the LM head's shape: the yardstick for a step's rate."""
    a, w = torch.randn(2400, 192, dtype=dtype), torch.randn(4096, 192, dtype=dtype)
    for _ in range(3):
        a @ w.T
    t0 = time.perf_counter()
    for _ in range(repeat):
        a @ w.T
    return 2 * 2400 * 192 * 4096 * repeat / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=240, help="first N requests of shift-paper-c8")
    ap.add_argument("--arm", default="online-static", choices=["online-static", "online-scratch"])
    ap.add_argument("--recipe", default="paper")
    ap.add_argument(
        "--draft-vocab",
        type=int,
        default=0,
        help="online-scratch: the head's hot vocabulary (0 = the whole vocabulary)",
    )
    ap.add_argument("--profile-steps", type=int, default=3, help="steps under torch.profiler (0 = none)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-trainer"))
    ap.add_argument("--name", default=None, help="results file suffix: trainer-NAME.json")
    args = ap.parse_args()

    from bench_replay import _machine, _paper_trace

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    trace = _paper_trace(args.out)
    base = ReplayConfig(trace=str(trace), limit=args.limit).with_recipe(args.recipe)
    cfg = arm_config(base, args.arm).with_(engine="fast", draft_vocab=args.draft_vocab)
    t0 = time.perf_counter()
    batches = record_batches(cfg, args.out / "run")
    replay_s = time.perf_counter() - t0
    print(f"recorded {len(batches)} trainer batches from {args.limit} requests ({replay_s:.0f}s)", flush=True)
    rows = time_steps(fresh_learner(cfg), batches)
    ops = profile_steps(fresh_learner(cfg), batches[: args.profile_steps]) if args.profile_steps else []
    counter = fresh_learner(cfg)  # a step's FLOPs depend on its batch's shapes, not the weights
    counted = [step_flops(counter, b) for b in batches[:3]]
    flops = [c[0] for c in counted]
    flops_by_op = {op: round(sum(c[1].get(op, 0) for c in counted) / len(counted) / 1e9, 2) for op in counted[0][1]}
    peak = matmul_gflops()
    steps = [r["step_s"] for r in rows]
    builds = [r["build_s"] for r in rows]
    positions = [r["positions"] for r in rows]
    result = {
        "benchmark": "trainer-step",
        "trace": "shift-paper-c8",
        "limit": args.limit,
        "arm": args.arm,
        "recipe": args.recipe,
        "draft_vocab": args.draft_vocab or None,
        "machine": _machine(),
        "steps": len(rows),
        "step_s_mean": round(statistics.fmean(steps), 4),
        "step_s_median": round(statistics.median(steps), 4),
        "build_s_mean": round(statistics.fmean(builds), 4),
        "positions_mean": round(statistics.fmean(positions), 1),
        "us_per_position": round(1e6 * sum(steps) / max(1, sum(positions)), 1),
        "gflop_per_step": round(statistics.fmean(flops) / 1e9, 2),
        "gflop_per_step_by_op": flops_by_op,
        "achieved_gflops": round(statistics.fmean(flops) / 1e9 / statistics.fmean(steps[:3]), 1),
        "matmul_peak_gflops": round(peak, 1),
        "projected_trainer_min_33k": round((statistics.fmean(steps) + statistics.fmean(builds)) * 33_000 / 8 / 60, 1),
        "per_step": rows,
        "top_ops": ops,
    }
    name = f"trainer-{args.name}.json" if args.name else "trainer.json"
    (RESULTS / name).write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{len(rows)} steps: {result['step_s_mean']:.3f}s per step (median {result['step_s_median']:.3f}), "
        f"build {result['build_s_mean']:.3f}s, {result['positions_mean']:.0f} positions, "
        f"{result['us_per_position']} µs per position; {result['gflop_per_step']} GFLOP per step at "
        f"{result['achieved_gflops']} GFLOP/s (matmul peak {result['matmul_peak_gflops']}); trainer alone for 33k requests "
        f"≈{result['projected_trainer_min_33k']} min -> {RESULTS / name}"
    )
    for o in ops[:12]:
        print(f"  {o['share'] * 100:5.1f}%  {o['self_ms']:9.1f} ms  {o['op']}")


if __name__ == "__main__":
    main()
