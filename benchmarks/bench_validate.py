"""The simulator against this machine's clock (`aurora validate`), the issue's acceptance runs.

    python3 benchmarks/bench_validate.py [--limit 48] [--batches 1,8] [--gamma 4] [--every 2]
        [--out runs/bench-validate]

For each batch and arm (no-spec, static, online-static): a calibration of the shapes the arm
meets on the slice, taken just before it is measured (the machine as close as it gets to its
state when serving), the arm served on the wall clock, then replayed in virtual time under that
profile (aurora_sim.validate). The online arm proposes a candidate every --every trainer steps, so a
short slice sees swaps. -> benchmarks/results/validate.json: per batch and arm the predicted and
measured numbers, their relative errors, where the makespan error comes from, the look-ups
outside the table, and the contention indicators (load average, the serving thread's CPU share,
a reference round before and after serving against its profile value). A report with the
predicted-vs-measured figure is written to OUT/report.

Wall-clock numbers move with other load on the machine: quote them with the contention
indicators beside them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
KEYS = ("throughput_tok_s", "makespan_s", "latency_ms.mean", "latency_ms.p50", "latency_ms.p99", "ttft_ms.mean")


def _arm_result(s: dict) -> dict:
    p, m, e = s["predicted"], s["measured"], s["relative_error"]
    return {
        "predicted": {
            "throughput_tok_s": p["throughput_tok_s"],
            "latency_ms": p["latency_ms"],
            "ttft_ms": p["ttft_ms"],
            "round_ms": p["round_ms"],
            "rounds": p["rounds"],
            "acceptance_length": p["acceptance_length"],
            "swaps": p["swaps"],
        },
        "measured": {
            "throughput_tok_s": m["throughput_tok_s"],
            "latency_ms": m["latency_ms"],
            "ttft_ms": m["ttft_ms"],
            "round_ms": m["round_ms"],
            "rounds": m["rounds"],
            "acceptance_length": m["acceptance_length"],
            "swaps": m["swaps"],
        },
        "relative_error": e,
        "goal_5pct": s["goal"],
        "breakdown": s["breakdown"],
        "per_request": s["per_request"],
        "lookups_outside": {k: s["lookups_outside"]["predicted"][k] for k in ("lookups", "outside", "by_axis")},
        "machine": s["machine"],
        "trainer": s["trainer"],
        "profile": s["profile"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="shift-ci")
    ap.add_argument("--limit", type=int, default=48)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=12, help="measured rounds per calibration cell")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-validate"))
    ap.add_argument("--json", type=Path, default=RESULTS / "validate.json")
    args = ap.parse_args()

    from analysis.report import write_report
    from aurora_sim.replay.config import ReplayConfig
    from aurora_sim.validate.run import ARMS, validate

    batches = [int(b) for b in args.batches.split(",")]
    result = {
        "what": "aurora validate: predicted (virtual time, profiled cost model calibrated just before) vs measured "
        "(wall clock, round-by-round torch engine), same requests, arrivals, batch and γ",
        "command": f"python3 benchmarks/bench_validate.py --trace {args.trace} --limit {args.limit} "
        f"--batches {args.batches} --gamma {args.gamma} --every {args.every}",
        "trace": args.trace,
        "limit": args.limit,
        "gamma": args.gamma,
        "online_every": args.every,
        "measured_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "torch": torch.__version__,
        "batches": {},
    }
    t0 = time.perf_counter()
    for b in batches:
        base = ReplayConfig(trace=args.trace, limit=args.limit, batch=b).with_recipe(
            "fast", gamma=args.gamma, controller_every=args.every, learner_enabled=True
        )
        out = args.out / f"b{b}"
        doc = validate(base, out, ARMS, calibrate_rounds=args.rounds)
        result["batches"][str(b)] = {"arms": {arm: _arm_result(s) for arm, s in doc["arms"].items()}}
        for arm, s in doc["arms"].items():
            e = s["relative_error"]
            print(
                f"batch {b} {arm:14s} throughput {100 * e['throughput_tok_s']:+6.1f} %  latency mean "
                f"{100 * e['latency_ms.mean']:+6.1f} %  p99 {100 * e['latency_ms.p99']:+6.1f} %  TTFT mean "
                f"{100 * e['ttft_ms.mean']:+6.1f} %  drift {100 * (s['machine']['reference']['drift'] or 0):+5.1f} %  "
                f"cpu share {100 * (s['breakdown']['serving_cpu_share'] or 0):3.0f} %",
                flush=True,
            )
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    report = write_report([args.out / f"b{b}" / arm / "measured" for b in batches for arm in ARMS], args.out / "report")
    result["report"] = str(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"-> {args.json} (report in {report})")


if __name__ == "__main__":
    main()
