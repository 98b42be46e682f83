"""The paper's four arms over several seeds, with a 95 % interval: what online learning gains
on distinct traffic, and how sure that is.

    python3 benchmarks/bench_seeds.py [--trace shift-ci] [--seeds 5] [--recipe fast] [--limit N]

Each seed draws its own trace (the scenario's prompts, lengths and order come from the seed:
distinct prompts within a trace, different ones across seeds) and replays the four arms on it
(fast path; same requests in every arm, so arms are paired within a seed). Per arm: AL overall
and per segment, speedup vs no-spec and vs static under the H100 / Llama-3-8B cost model,
recovery after each shift (W = 50); per pair online-static vs static: the AL and speedup
differences. Mean, standard deviation and a two-sided 95 % Student-t interval over seeds.
-> benchmarks/results/seeds-<trace>-<recipe>.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from analysis.paper_numbers import interval  # one definition of the interval, shared with the figures
from aurora_sim.replay.compare import ARMS, run_compare
from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.loop import Replay

RESULTS = Path(__file__).parent / "results"


def one_seed(base: ReplayConfig, seed: int, out: Path) -> dict:
    """The four arms on this seed's trace (replay.compare.run_compare, on the fast path)."""

    def run_one(cfg: ReplayConfig, run_dir: Path, arm: str) -> None:
        t0 = time.perf_counter()
        Replay(cfg.with_(engine="fast"), run_dir, overwrite=True).run()
        print(f"seed {seed} {arm:15s} ({time.perf_counter() - t0:.0f}s)", flush=True)

    return run_compare(base.with_(seed=seed), out / f"s{seed}", run_one)["arms"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="shift-ci")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-seeds"))
    args = ap.parse_args()
    base = ReplayConfig(trace=args.trace, limit=args.limit).with_recipe(args.recipe)
    t0 = time.perf_counter()
    runs = {seed: one_seed(base, seed, args.out) for seed in range(args.seeds)}
    arms = {}
    for arm in ARMS:
        per = [runs[s][arm] for s in runs]
        row = {
            "acceptance_length": interval([p["acceptance_length"] for p in per]),
            "speedup_vs_no-spec": interval([p.get("speedup_vs_no-spec") for p in per]),
            "segments_al": [
                interval([p["segments"][k]["acceptance_length"] for p in per]) for k in range(len(per[0]["segments"]))
            ],
            "recovery_w50": [
                interval([p["shifts"][k]["recovery_requests"] for p in per]) for k in range(len(per[0]["shifts"]))
            ],
            # seeds whose AL never came back to the level before the shift (left out above)
            "recovery_not_reached": [
                sum(p["shifts"][k]["recovery_requests"] is None for p in per) for k in range(len(per[0]["shifts"]))
            ],
            "swaps": interval([p["swaps"] for p in per]),
        }
        if arm != "static":
            row["speedup_vs_static"] = interval([p.get("speedup_vs_static") for p in per])
        arms[arm] = row
    gain = {
        "al_online_static_minus_static": interval(
            [runs[s]["online-static"]["acceptance_length"] - runs[s]["static"]["acceptance_length"] for s in runs]
        ),
        "speedup_online_static_vs_static": interval([runs[s]["online-static"].get("speedup_vs_static") for s in runs]),
        "al_online_scratch_minus_static": interval(
            [runs[s]["online-scratch"]["acceptance_length"] - runs[s]["static"]["acceptance_length"] for s in runs]
        ),
    }
    result = {
        "benchmark": "seeds",
        "trace": args.trace,
        "recipe": args.recipe,
        "limit": args.limit,
        "seeds": sorted(runs),
        "arms": arms,
        "online_vs_static": gain,
        "per_seed": {
            s: {
                a: {
                    "acceptance_length": runs[s][a]["acceptance_length"],
                    "speedup_vs_no-spec": runs[s][a].get("speedup_vs_no-spec"),
                    "swaps": runs[s][a]["swaps"],
                }
                for a in ARMS
            }
            for s in runs
        },
        "bench_wall_s": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"seeds-{Path(args.trace).stem}-{args.recipe}" + (f"-n{args.limit}" if args.limit else "") + ".json"
    (RESULTS / name).write_text(json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps(gain, indent=1))


if __name__ == "__main__":
    main()
