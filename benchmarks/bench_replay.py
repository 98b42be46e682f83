"""Replay benchmark: what issue 4 asks a replay to show, measured in one run.

On shift-ci (tiny tier, H100 + Llama-3-8B deployment profile) it runs the paper's four arms
(no-spec, static, online-static, online-scratch) with λ_discard = 0, then the two online arms
again with λ_discard > 0, and writes benchmarks/results/replay.json:
  - acceptance length per segment per arm, speedup vs no-spec and vs static (virtual time);
  - recovery requests after each shift and AL over the first requests after it, λ = 0 vs λ > 0;
  - wall time per arm, requests/s, the share of wall time in model forwards (serving) and on
    the trainer thread, and the projected wall time of shift-paper (33,000 requests).

    python3 benchmarks/bench_replay.py [--limit N] [--lambda-discard 0.5] [--out DIR]
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

SHIFT_PAPER_REQUESTS = 33_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--lambda-discard", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-replay"))
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "replay.json")
    args = ap.parse_args()

    base = ReplayConfig(trace="shift-ci", limit=args.limit)
    runs = [(arm, arm_config(base, arm)) for arm in ARMS]
    lam = args.lambda_discard
    runs += [(f"{arm}-lambda{lam:g}", arm_config(base, arm).with_(learner_lambda_discard=lam))
             for arm in ("online-static", "online-scratch")]
    summaries, walls = {}, {}
    for name, cfg in runs:
        t0 = time.perf_counter()
        wall = Replay(cfg, args.out / name, overwrite=True).run()
        wall["total_s"] = round(time.perf_counter() - t0, 2)
        walls[name] = wall
        summaries[name] = summarize(args.out / name)
        s = summaries[name]
        print(f"{name:28s} AL {s['acceptance_length']}  segs {[g['acceptance_length'] for g in s['segments']]}  "
              f"recovery {[h['recovery_requests'] for h in s['shifts']]}  wall {wall['wall_s']:.0f}s", flush=True)
    add_speedups(summaries)

    checks = {}
    st, on, sc = summaries["static"], summaries["online-static"], summaries["online-scratch"]
    checks["online_static_above_static_every_segment"] = all(
        a["acceptance_length"] > b["acceptance_length"] for a, b in zip(on["segments"], st["segments"]))
    first = (sc["segments"][0]["acceptance_length"], sc["shifts"] and sc["shifts"][0]["level_before"])
    checks["online_scratch_first_segment_al_and_level_before_first_shift"] = first
    per_shift = {}
    for arm in ("online-static", "online-scratch"):
        a0, a1 = summaries[arm], summaries[f"{arm}-lambda{lam:g}"]
        per_shift[arm] = [{"shift_at": x["shift_at"], "recovery_lambda0": x["recovery_requests"],
                           f"recovery_lambda{lam:g}": y["recovery_requests"],
                           "al_after_head_lambda0": x["al_after_head"], f"al_after_head_lambda{lam:g}": y["al_after_head"]}
                          for x, y in zip(a0["shifts"], a1["shifts"])]
    checks["discard_vs_aurora_per_shift"] = per_shift

    import traces

    paper, _ = traces.generate_trace(traces.scenario("shift-paper", seed=0))
    paper_tokens = int(paper["max_new_tokens"].sum())  # an upper bound: stop tokens end some early
    speed = {}
    for name, w in walls.items():
        tok_per_s = summaries[name]["output_tokens"] / w["wall_s"]
        speed[name] = {"wall_s": w["wall_s"], "requests_per_s": w["requests_per_s"],
                       "forward_share": round(w["forward_s"] / w["wall_s"], 3),
                       "trainer_thread_share": round(w["trainer_thread_s"] / w["wall_s"], 3),
                       "waited_for_trainer_s": w["waited_for_trainer_s"],
                       "wall_tokens_per_s": round(tok_per_s, 1),
                       "projected_shift_paper_min_by_requests": round(SHIFT_PAPER_REQUESTS / w["requests_per_s"] / 60, 1),
                       "projected_shift_paper_h_by_tokens": round(paper_tokens / tok_per_s / 3600, 1)}
    result = {
        "benchmark": "replay", "trace": "shift-ci", "limit": args.limit, "lambda_discard": lam,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads_per_role": 1},
        "note": "shift-paper asks for up to %d output tokens (shift-ci: 76,800) after prompts of up to ~480 "
                "tokens (shift-ci: ~30-50): the projection by tokens is the realistic one, and still a lower "
                "bound (longer contexts cost more per token)" % paper_tokens,
        "summaries": summaries, "checks": checks, "speed": speed,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps({"checks": checks, "speed": speed}, indent=1))


if __name__ == "__main__":
    main()
