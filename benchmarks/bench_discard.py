"""Learning from rejected proposals: the discard-loss variants against the served KL alone, over
paired seeds, with a 95 % interval (issue 17's experiment).

    python3 benchmarks/bench_discard.py [--trace shift-ci] [--seeds 5] [--lam 0.5]
        [--variants none,branch,reject-point,unlikelihood,lk,control] [--temperature 0]
        [--init scratch] [--recipe fast] [--limit N] [--head 200]

Each seed draws its own trace (distinct prompts; the same trace for every variant of that seed,
so variants are paired). Every variant replays the online arm from `--init` with λ = --lam
(`none` ignores λ: the served KL alone, the reference). With --temperature > 0 the trace's
requests sample at that temperature (lossless rejection sampling, so the round-by-round engine
runs them; much slower).

Per variant and seed:
    head AL      AL over the first --head requests of every segment (the first one from the
                 starting draft, the others after each shift): the area under the AL curve
                 there, i.e. sample efficiency;
    recovery     requests after each shift until AL is back at 95 % of its level before (W = 50);
    final AL     AL over the last --head requests;
    rejection    share of proposed tokens rejected (what the variants feed on).
Per variant: mean and 95 % Student-t interval over seeds, of the value and of its paired
difference to `none`. `control` spends reject-point's extra updates on random served states:
a gain of reject-point over none that control also shows is "more updates", not "information
in the rejection". -> benchmarks/results/discard-<trace>-T<temperature>.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl
from bench_seeds import interval

from aurora_sim.replay.config import ReplayConfig
from aurora_sim.replay.eventlog import read_table
from aurora_sim.replay.loop import Replay
from aurora_sim.replay.summary import per_request, summarize

RESULTS = Path(__file__).parent / "results"
VARIANTS = "none,branch,reject-point,unlikelihood,lk,control"


def _trace(name: str, seed: int, temperature: float, out: Path) -> str:
    """The scenario's trace for this seed, at `temperature` (a file; the name itself at T = 0)."""
    if temperature == 0:
        return name
    import traces
    from traces.io import write_trace

    cfg = traces.scenario(name, seed=seed).to_dict()
    cfg["sampling"]["temperature"] = temperature
    path = out / f"{name}-s{seed}-T{temperature:g}.parquet"
    if not path.is_file():
        frame, config = traces.generate_trace(traces.TraceConfig.from_dict(cfg))
        write_trace(frame, path, config)
    return str(path)


def _al(frame: pl.DataFrame) -> float | None:
    r = int(frame["spec_rounds"].sum()) if frame.height else 0
    return float(frame["generated"].sum()) / r if r else None


def measure(run: Path, head: int) -> dict:
    s = summarize(run)
    frame = per_request(run)
    runs = read_table(run, "runs").row(0, named=True)
    starts = [first for first, _ in json.loads(runs["segments_json"])]
    heads = [_al(frame.filter(pl.col("request_index") >= a).head(head)) for a in starts]
    rounds = read_table(run, "rounds")
    proposed = int(rounds["proposed"].sum())
    return {
        "acceptance_length": s["acceptance_length"],
        "head_al": heads,
        "recovery_w50": [sh["recovery_requests"] for sh in s["shifts"]],
        "final_al": _al(frame.tail(head)),
        "rejection_rate": 1 - int(rounds["accepted"].sum()) / proposed if proposed else None,
        "train_steps": s["train_steps"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="shift-ci")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--variants", default=VARIANTS)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--init", default="scratch")
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--head", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("/tmp/aurora-bench-discard"))
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "none" not in variants:
        variants.insert(0, "none")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    per: dict[str, dict[int, dict]] = {v: {} for v in variants}
    for seed in range(args.seeds):
        trace = _trace(args.trace, seed, args.temperature, args.out)
        base = ReplayConfig(trace=trace, limit=args.limit, seed=seed, init=args.init).with_recipe(args.recipe)
        for v in variants:
            cfg = base.with_(learner_lambda_discard=0.0 if v == "none" else args.lam, learner_discard=v)
            run = args.out / f"T{args.temperature:g}" / f"s{seed}" / v
            t = time.perf_counter()
            if not (run / "wall.json").is_file():  # finished runs are kept; an interrupted one resumes
                Replay(cfg, run, resume=run.is_dir()).run()
            per[v][seed] = measure(run, args.head)
            print(
                f"seed {seed} {v:13s} AL {per[v][seed]['acceptance_length']:.3f} "
                f"head {[round(x, 3) for x in per[v][seed]['head_al'] if x]} ({time.perf_counter() - t:.0f}s)",
                flush=True,
            )
    seeds = list(range(args.seeds))
    ref = per["none"]
    table = {}
    for v in variants:
        rows = per[v]
        k_heads = len(rows[0]["head_al"])
        k_shifts = len(rows[0]["recovery_w50"])
        entry = {
            "acceptance_length": interval([rows[s]["acceptance_length"] for s in seeds]),
            "head_al": [interval([rows[s]["head_al"][k] for s in seeds]) for k in range(k_heads)],
            "head_al_mean": interval([_mean(rows[s]["head_al"]) for s in seeds]),
            "final_al": interval([rows[s]["final_al"] for s in seeds]),
            "recovery_w50": [interval([rows[s]["recovery_w50"][k] for s in seeds]) for k in range(k_shifts)],
            "rejection_rate": interval([rows[s]["rejection_rate"] for s in seeds]),
        }
        if v != "none":
            entry["minus_none"] = {
                "head_al_mean": interval([_sub(_mean(rows[s]["head_al"]), _mean(ref[s]["head_al"])) for s in seeds]),
                "final_al": interval([_sub(rows[s]["final_al"], ref[s]["final_al"]) for s in seeds]),
                "acceptance_length": interval(
                    [rows[s]["acceptance_length"] - ref[s]["acceptance_length"] for s in seeds]
                ),
            }
        table[v] = entry
    result = {
        "benchmark": "discard",
        "trace": args.trace,
        "temperature": args.temperature,
        "lambda": args.lam,
        "init": args.init,
        "recipe": args.recipe,
        "limit": args.limit,
        "head": args.head,
        "seeds": seeds,
        "variants": table,
        "per_seed": per,
        "bench_wall_s": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"discard-{Path(args.trace).stem}-T{args.temperature:g}" + (f"-n{args.limit}" if args.limit else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps({v: t.get("minus_none") for v, t in table.items()}, indent=1))


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _sub(a, b):
    return None if a is None or b is None else a - b


if __name__ == "__main__":
    main()
