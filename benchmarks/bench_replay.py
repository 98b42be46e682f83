"""Replay benchmark: the fast path against the round-by-round engine, and the paper's scale.

    python3 benchmarks/bench_replay.py ci [--limit N]
        shift-ci, the four arms (no-spec, static, online-static, online-scratch), each replayed
        with --engine exact and --engine fast: wall time of the replay itself (trainer thread
        included; model loading and the one-time trajectory cache apart), the ratio, AL per
        segment and swaps of both. -> benchmarks/results/replay.json

    python3 benchmarks/bench_replay.py paper [--limit N] [--arms a,b] [--name FILE.json] [--draft-vocab N]
        shift-paper's 33,000 requests as a closed loop of 8 (the full figure set's
        `shift-paper-c8`: at its Poisson 10 req/s a batch of 8 falls behind and refuses requests),
        each arm on the fast path: the trajectory cache's one-time build, then per arm where the
        time goes (target passes, draft chains, bookkeeping, trainer thread, waits). With
        --limit the first N requests are replayed and the full trace projected by requests.
        Then the full `aurora figures --paper` set projected from the measured per-request cost
        of each kind of run. -> benchmarks/results/replay_paper.json

One thread per role (serving, trainer), as every replay. Results are measured in one run on
one machine and quoted as ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from aurora_sim.replay.compare import ARMS, add_speedups, arm_config
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.loop import Replay
from aurora_sim.replay.summary import summarize

RESULTS = Path(__file__).parent / "results"


def _machine() -> dict:
    from aurora_sim.models.tiny import native_bf16

    return {
        "platform": platform.platform(),
        "torch": torch.__version__,
        "threads_per_role": 1,
        "native_bf16": native_bf16(),
    }


def _run(cfg: ReplayConfig, out: Path) -> tuple[dict, dict]:
    wall = Replay(cfg, out, overwrite=True).run()
    return wall, summarize(out)


def _segments(s: dict) -> list:
    return [round(g["acceptance_length"], 4) for g in s["segments"]]


def bench_ci(args) -> dict:
    base = ReplayConfig(trace="shift-ci", limit=args.limit)
    arms = {}
    for arm in ARMS:
        row = {}
        for engine in ("exact", "fast"):
            wall, s = _run(arm_config(base, arm).with_(engine=engine), args.out / "ci" / arm / engine)
            row[engine] = {
                "replay_s": wall["replay_s"],
                "setup_s": wall["setup_s"],
                "trajectory_cache_s": wall["trajectory_cache_s"],
                "trainer_thread_s": wall["trainer_thread_s"],
                "waited_for_trainer_s": wall["waited_for_trainer_s"],
                "forward_s": wall["forward_s"],
                "engine_timings": wall["engine_timings"],
                "acceptance_length": s["acceptance_length"],
                "segments_al": _segments(s),
                "swaps": s["swaps"],
                "summary": s,
            }
            print(
                f"ci {arm:15s} {engine:5s} replay {wall['replay_s']:7.1f}s  AL {s['acceptance_length']:.4f} "
                f"swaps {s['swaps']}",
                flush=True,
            )
        ex, fa = row["exact"], row["fast"]
        row["speedup_fast_vs_exact"] = round(ex["replay_s"] / fa["replay_s"], 2)
        row["max_segment_al_diff"] = round(max(abs(a - b) for a, b in zip(ex["segments_al"], fa["segments_al"])), 4)
        row["swaps_equal"] = ex["swaps"] == fa["swaps"]
        arms[arm] = row
    for engine in ("exact", "fast"):
        add_speedups({a: arms[a][engine]["summary"] for a in ARMS})
    for a in ARMS:
        for engine in ("exact", "fast"):
            s = arms[a][engine].pop("summary")
            arms[a][engine]["speedup_vs_no-spec"] = s.get("speedup_vs_no-spec")
    goals = {"static": 5.0, "online-static": 3.0, "online-scratch": 3.0}
    return {
        "benchmark": "replay-ci",
        "trace": "shift-ci",
        "limit": args.limit,
        "machine": _machine(),
        "arms": arms,
        "goals": {
            a: {
                "goal": f">= {g}x",
                "measured": arms[a]["speedup_fast_vs_exact"],
                "met": arms[a]["speedup_fast_vs_exact"] >= g,
            }
            for a, g in goals.items()
        },
    }


def _paper_trace(out: Path) -> Path:
    """shift-paper's requests (seed 0) as a closed loop of 8, as the full figure set replays them."""
    import traces
    from analysis.paper_plan import _closed_scenario
    from traces.io import write_trace

    t = _closed_scenario("shift-paper", 0)
    path = out / f"{t.key}.parquet"
    if not path.is_file():
        frame, config = traces.generate_trace(traces.TraceConfig.from_dict(t.config))
        write_trace(frame, path, config.to_dict() if hasattr(config, "to_dict") else config)
    return path


def bench_paper(args) -> dict:
    args.out.mkdir(parents=True, exist_ok=True)
    trace = _paper_trace(args.out)
    base = ReplayConfig(trace=str(trace), limit=args.limit).with_recipe(args.recipe)
    arms = [a for a in (args.arms.split(",") if args.arms else ARMS)]
    rows, cache = {}, None
    # arms measured by an earlier invocation on the same slice and recipe are kept (one arm of
    # 33k requests is an hour or more: the four are run one at a time)
    earlier = json.loads((RESULTS / args.name).read_text()) if (RESULTS / args.name).is_file() else {}
    if (earlier.get("limit"), earlier.get("recipe"), earlier.get("draft_vocab")) == (
        args.limit,
        args.recipe,
        args.draft_vocab or None,
    ):
        rows, cache = (
            {a: r for a, r in earlier.get("arms", {}).items() if a not in arms},
            earlier.get("trajectory_cache"),
        )
    for arm in arms:
        cfg = arm_config(base, arm).with_(engine="fast")
        if arm == "online-scratch" and args.draft_vocab:
            cfg = cfg.with_(draft_vocab=args.draft_vocab)
        wall, s = _run(cfg, args.out / "paper" / arm)
        n = s["requests"]
        t = wall["engine_timings"]
        model_s = t.get("target_s", 0.0) + t.get("draft_s", 0.0)
        row = {
            "requests": n,
            "replay_s": wall["replay_s"],
            "setup_s": wall["setup_s"],
            "trajectory_cache_s": wall["trajectory_cache_s"],
            "trajectory_cache": wall["trajectory_cache"],
            "where": {
                "target_passes_s": t.get("target_s"),
                "draft_chains_s": t.get("draft_s"),
                "serving_bookkeeping_s": round(wall["forward_s"] - model_s, 3),
                "event_loop_and_log_s": round(wall["replay_s"] - wall["forward_s"] - wall["waited_for_trainer_s"], 3),
                "trainer_thread_s": wall["trainer_thread_s"],
                "waited_for_trainer_s": wall["waited_for_trainer_s"],
            },
            "per_request_ms": round(1e3 * wall["replay_s"] / n, 2),
            "projected_full_min": round(wall["replay_s"] * 33_000 / n / 60, 1),
            "acceptance_length": s["acceptance_length"],
            "segments_al": _segments(s),
            "swaps": s["swaps"],
            "train_steps": s["train_steps"],
        }
        if cache is None or not wall["trajectory_cache"].get("hit", True):
            cache = {"first_arm": arm, "build_s": wall["trajectory_cache_s"], **wall["trajectory_cache"]}
        rows[arm] = row
        print(
            f"paper {arm:15s} {n} requests replay {wall['replay_s']:.0f}s (projected full {row['projected_full_min']} min) "
            f"AL {s['acceptance_length']:.3f} cache {wall['trajectory_cache_s']:.0f}s",
            flush=True,
        )
    return {
        "benchmark": "replay-paper",
        "trace": "shift-paper-c8",
        "limit": args.limit,
        "recipe": args.recipe,
        "draft_vocab": args.draft_vocab or None,  # online-scratch's hot vocabulary (None: the whole)
        "machine": _machine(),
        "trajectory_cache": cache,
        "arms": rows,
        "figures_paper_projection": project_figures(rows),
        "goal": "<= 45 min per arm (stretch 15)",
        "met": {a: r["projected_full_min"] <= 45 for a, r in rows.items()},
    }


def project_figures(rows: dict) -> dict | None:
    """The full `aurora figures --paper` set: each run's requests x the measured per-request
    cost of its kind on shift-paper-scale requests (no-spec, static, or online: policies and λ
    are counted as online, which the lazy/shadow scoring and λ > 0's full chains make a lower
    bound for those runs)."""
    from analysis.paper_plan import all_runs, parse_only, plan

    if not {"no-spec", "static", "online-static"} <= set(rows):
        return None
    per = {
        "no-spec": rows["no-spec"]["per_request_ms"],
        "static": rows["static"]["per_request_ms"],
        "online": max(
            rows["online-static"]["per_request_ms"], rows.get("online-scratch", rows["online-static"])["per_request_ms"]
        ),
    }
    total_s, runs = 0.0, []
    for r in all_runs(plan("full", 0), parse_only(None)):
        kind = (
            "no-spec" if r.variant.startswith("no-spec") else "static" if r.variant.startswith("static") else "online"
        )
        n = _requests(r.trace)
        sec = n * per[kind] / 1e3
        total_s += sec
        runs.append(
            {"run": f"{r.trace.key}/{r.variant}", "kind": kind, "requests": n, "projected_min": round(sec / 60, 1)}
        )
    return {"runs": runs, "total_h_sequential": round(total_s / 3600, 2), "per_request_ms": per}


def _requests(trace) -> int:
    import traces

    if trace.limit:
        return trace.limit
    if trace.scenario:
        frame, _ = traces.generate_trace(traces.scenario(trace.scenario, seed=0))
    else:
        frame, _ = traces.generate_trace(traces.TraceConfig.from_dict(trace.config))
    return len(frame)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["ci", "paper"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--arms", default=None, help="paper: comma-separated arms (default all four)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-replay"))
    ap.add_argument("--recipe", default="paper", help="paper: the learner recipe (fast or paper)")
    ap.add_argument("--draft-vocab", type=int, default=0, help="paper: online-scratch's hot vocabulary (0 = all)")
    ap.add_argument("--name", default=None, help="results file under benchmarks/results (default replay[_paper].json)")
    args = ap.parse_args()
    args.name = args.name or ("replay.json" if args.what == "ci" else "replay_paper.json")
    t0 = time.perf_counter()
    result = bench_ci(args) if args.what == "ci" else bench_paper(args)
    result["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.name).write_text(json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps(result.get("goals") or result.get("met"), indent=1))


if __name__ == "__main__":
    main()
